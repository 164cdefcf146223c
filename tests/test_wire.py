"""The wire layer's fast paths agree with their slow references.

* ``Router.match``'s straight walk gives the same route, arguments or 405/400 as the full
  best-first backtracking search ``router._find`` (a hypothesis property), plus a few examples;
* ``GraphRequest`` decodes headers (first occurrence wins), the query string (like
  ``parse_qsl(keep_blank_values=True)``; a repeated parameter's last value, like Starlette) and
  streams the body until ``more_body`` is false, refusing a body cut short by a disconnect;
* ``GraphApp._actor``'s token cache (keyed by the header's last 32 characters) only answers for
  the very same header and only until the token expires (plus clock skew).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from graphdir import errors
from graphdir.auth import tokens as tokens_module
from graphdir.auth.tokens import MSG_EMPTY, MSG_EXPIRED, MSG_INVALID, MSG_SIGNATURE, mint
from graphdir.web import router as router_module
from graphdir.web.app import GraphApp
from graphdir.web.request import ClientDisconnect, GraphRequest
from graphdir.web.router import CASTS, KeySegment, Router
from graphdir.web.routes import ROUTES
from http_helpers import DEFAULT_ROLES, assert_error

ROUTER = Router(ROUTES)
METHODS = ("GET", "POST", "PATCH", "DELETE", "PUT")
LITERALS = sorted({p for r in ROUTES for p in r.pattern if not p.startswith("{")})
CAST_USER = "microsoft.graph.user"
GID, MID = "6f0c1a52-3b9e-4c1d-9a57-2f3e8d1b0c44", "0b8e2d6a-1f47-4a3c-8e25-9d6c3b7a1e50"

# -- the router ------------------------------------------------------------------------------------
Outcome = tuple[str, dict[str, str]] | tuple[int, str, str]


@dataclass(frozen=True)
class Key:
    """Stands for ``KeySegment(text)`` in generated data (hypothesis' shrinker mishandles str subclasses)."""

    text: str


Seg = str | Key


def _flip_case(word: str, flips: list[bool]) -> str:
    return "".join(c.swapcase() if f else c for c, f in zip(word, flips, strict=True))


literal_seg = st.sampled_from(LITERALS)
cased_literal = literal_seg.flatmap(lambda w: st.lists(st.booleans(), min_size=len(w), max_size=len(w)).map(lambda f: _flip_case(w, f)))
cast_seg = st.sampled_from(sorted(CASTS)).flatmap(lambda c: st.sampled_from([c, c.upper(), c.title()]))
dollar_seg = st.from_regex(r"\$[a-zA-Z]{0,5}", fullmatch=True)
value_seg = st.one_of(st.uuids().map(str), st.text(max_size=6), dollar_seg)
key_seg = st.builds(Key, st.one_of(value_seg, cased_literal, cast_seg))
any_seg: st.SearchStrategy[Seg] = st.one_of(literal_seg, cased_literal, cast_seg, dollar_seg, value_seg, key_seg)


def _filled(pat: str) -> st.SearchStrategy[Seg]:
    """Mostly a value the pattern element accepts; sometimes any segment at all."""
    fit: st.SearchStrategy[Seg]
    if pat == "{cast}":
        fit = st.one_of(cast_seg, cast_seg, cast_seg, key_seg)  # a cast in parentheses is a key, not a cast
    elif pat.startswith("{"):
        fit = st.one_of(st.uuids().map(str), key_seg, cased_literal, cast_seg)
    else:
        fit = st.sampled_from([pat, pat.upper(), pat.swapcase()])
    return st.integers(0, 7).flatmap(lambda n: any_seg if n == 0 else fit)


@st.composite
def route_like(draw: st.DrawFn) -> tuple[str, list[Seg]]:
    """A route's pattern filled in, left whole, cut short or extended; mostly with the route's method."""
    route = draw(st.sampled_from(ROUTES))
    method = draw(st.one_of(st.just(route.method), st.just(route.method), st.sampled_from(METHODS)))
    segs = [draw(_filled(p)) for p in route.pattern]
    shape = draw(st.integers(0, 3))
    if shape == 1:
        return method, segs[: draw(st.integers(0, len(segs)))]
    return method, (segs + draw(st.lists(any_seg, min_size=1, max_size=2)) if shape == 2 else segs)


requests = st.one_of(st.tuples(st.sampled_from(METHODS), st.lists(any_seg, max_size=6)), route_like(), route_like())


def _match(method: str, segs: list[str]) -> Outcome:
    try:
        m = ROUTER.match(method, segs)
    except errors.GraphError as exc:
        return exc.status, exc.code, exc.message
    return m.route.name, m.args


@settings(max_examples=1500, deadline=None)
@given(req=requests)
@example(req=("GET", ["groups", GID, "members", CAST_USER]))
@example(req=("GET", ["groups", GID, "members", Key(CAST_USER)]))
@example(req=("GET", ["users", Key("$count")]))
@example(req=("DELETE", ["groups", GID, "members", "$ref", "$ref"]))
@example(req=("GET", ["ME", "memberof", "GRAPH.GROUP", "$count"]))
def test_match_agrees_with_the_backtracking_search(req: tuple[str, list[Seg]]) -> None:
    method, raw = req
    segs = [KeySegment(s.text) if isinstance(s, Key) else s for s in raw]
    got = _match(method, segs)
    seen = [False]
    hit = router_module._find(ROUTER._root, segs, 0, method, seen)
    if hit is not None:
        assert got == (hit[0].name, hit[1])
    elif seen[0]:
        method_error = errors.method_not_allowed()
        assert got == (405, method_error.code, method_error.message)
    else:
        assert got[0] == 400 and got[1] == "BadRequest", got


@pytest.mark.parametrize(
    ("method", "segs", "expected"),
    [
        ("DELETE", ["groups", GID, "members", MID, "$ref"], ("DELETE /groups/{gid}/members/{mid}/$ref", {"gid": GID, "mid": MID})),
        ("DELETE", ["Groups", GID, "MEMBERS", "$REF"], ("DELETE /groups/{gid}/members/$ref", {"gid": GID})),
        ("GET", ["groups", GID, "members", "microsoft.graph.user"], ("GET /groups/{gid}/members/{cast}", {"gid": GID, "cast": "user"})),
        ("GET", ["groups", GID, "owners", "graph.servicePrincipal"], ("GET /groups/{gid}/owners/{cast}", {"gid": GID, "cast": "servicePrincipal"})),
        ("GET", ["groups", GID, "members", MID], ("GET /groups/{gid}/members/{mid}", {"gid": GID, "mid": MID})),
        ("GET", ["groups", GID, "members", KeySegment(CAST_USER)], ("GET /groups/{gid}/members/{mid}", {"gid": GID, "mid": CAST_USER})),
        ("GET", ["users", KeySegment("$x@y.com")], ("GET /users/{uid}", {"uid": "$x@y.com"})),
        ("GET", ["users", KeySegment("$count")], ("GET /users/{uid}", {"uid": "$count"})),
        ("GET", ["users", "$count"], ("GET /users/$count", {})),
        ("PUT", ["groups", GID], (405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")),
        ("GET", ["users", "$x@y.com"], (400, "BadRequest", "Resource not found for the segment '$x@y.com'.")),
    ],
)
def test_match_examples(method: str, segs: list[str], expected: Outcome) -> None:
    assert _match(method, segs) == expected


# -- the request --------------------------------------------------------------------------------
def _scope(query: bytes | None = None, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/v1.0/users", "headers": headers or []}
    if query is not None:
        scope["query_string"] = query
    return scope


async def _never() -> dict[str, Any]:
    raise AssertionError("receive must not be called")


def _receiver(messages: list[dict[str, Any]]) -> tuple[Callable[[], Any], list[int]]:
    calls = [0]

    async def receive() -> dict[str, Any]:
        calls[0] += 1
        return messages.pop(0)

    return receive, calls


def _body(request: GraphRequest) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [chunk async for chunk in request.stream()]

    return asyncio.run(collect())


def test_headers_are_decoded_and_the_first_repeated_header_wins() -> None:
    headers = [(b"authorization", b"Bearer one"), (b"x-name", b"caf\xe9"), (b"authorization", b"Bearer two"), (b"accept", b"*/*")]
    req = GraphRequest(_scope(headers=headers), _never)
    assert req.headers == {"authorization": "Bearer one", "x-name": "café", "accept": "*/*"}
    assert (req.method, req.path) == ("GET", "/v1.0/users")


@pytest.mark.parametrize(
    "raw",
    [b"a=1&b=x+y&c=%2F%20z&d=&a=2&e", b"%24filter=displayName+eq+%27A%26B%27&%24top=5", b"$select=id,displayName&&$count=true&x=%E2%82%AC"],
)
def test_query_items_decode_like_parse_qsl_keeping_blanks_and_order(raw: bytes) -> None:
    req = GraphRequest(_scope(raw), _never)
    expected = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    assert req.query_items == expected
    assert all(req.query(k) == [v for kk, v in expected if kk == k][-1] for k, _ in expected)
    assert req.query("missing") is None


def test_query_last_value_blank_values_and_empty_query() -> None:
    req = GraphRequest(_scope(b"a=1&b=x+y&c=%2F&d=&a=2"), _never)
    assert req.query_items == [("a", "1"), ("b", "x y"), ("c", "/"), ("d", ""), ("a", "2")]
    assert (req.query("a"), req.query("d"), req.query("A")) == ("2", "", None)
    assert GraphRequest(_scope(b""), _never).query_items == []
    assert GraphRequest(_scope(None), _never).query_items == []


def test_stream_yields_chunks_until_more_body_is_false_and_refuses_a_disconnect() -> None:
    bodies = [(b"ab", True), (b"", True), (b"cd", True), (b"e", False), (b"never", False)]
    receive, calls = _receiver([{"type": "http.request", "body": b, "more_body": more} for b, more in bodies])
    assert (_body(GraphRequest(_scope(), receive)), calls[0]) == ([b"ab", b"cd", b"e"], 4)
    receive, calls = _receiver([{"type": "http.request", "body": b"x", "more_body": True}, {"type": "http.disconnect"}, {"type": "http.request", "body": b"y"}])
    with pytest.raises(ClientDisconnect):
        _body(GraphRequest(_scope(), receive))
    assert calls[0] == 2
    receive, calls = _receiver([{"type": "http.request", "body": b"only"}, {"type": "http.request", "body": b"never"}])  # no more_body: last
    assert (_body(GraphRequest(_scope(), receive)), calls[0]) == ([b"only"], 1)


# -- the actor cache ----------------------------------------------------------------------------
async def _groups(client: httpx.AsyncClient, authorization: str) -> httpx.Response:
    return await client.get("/v1.0/groups", headers={"Authorization": authorization})


@pytest.mark.anyio
async def test_a_valid_token_is_served_from_the_cache(
    client: httpx.AsyncClient, graph: GraphApp, token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = token()
    assert (await _groups(client, f"Bearer {tok}")).status_code == 200
    assert graph.validator is not None

    def refuse(_: str | None) -> dict[str, Any]:
        raise AssertionError("a cached token must not be validated again")

    monkeypatch.setattr(graph.validator, "validate", refuse)
    second = await _groups(client, f"Bearer {tok}")
    assert second.status_code == 200, second.text
    assert "value" in second.json()


@pytest.mark.anyio
async def test_a_header_sharing_the_cached_suffix_is_not_a_hit(client: httpx.AsyncClient, token: Callable[..., str]) -> None:
    tok = token()
    assert (await _groups(client, f"Bearer {tok}")).status_code == 200
    head, payload, sig = tok.split(".")
    assert len(sig) > 32  # the cache key lies inside the signature
    mid = len(payload) // 2
    forged = ".".join([head, payload[:mid] + ("A" if payload[mid] != "A" else "B") + payload[mid + 1 :], sig])
    assert forged[-32:] == tok[-32:] and forged != tok
    err = assert_error(await _groups(client, f"Bearer {forged}"), 401, "InvalidAuthenticationToken")
    assert err["message"] in (MSG_INVALID, MSG_SIGNATURE)
    assert_error(await _groups(client, f"Basic {tok}"), 401, "InvalidAuthenticationToken", MSG_EMPTY)
    assert (await _groups(client, f"Bearer {tok}")).status_code == 200  # the forgery did not evict the good token


@pytest.mark.anyio
async def test_a_cached_token_is_refused_once_it_expires(client: httpx.AsyncClient, graph: GraphApp, monkeypatch: pytest.MonkeyPatch) -> None:
    assert graph.ring is not None and graph.validator is not None
    lifetime, skew = 60, graph.validator.skew
    real = time.time()
    tok = mint(graph.ring, graph.tenant["id"], app_id=graph.app_id, roles=list(DEFAULT_ROLES), lifetime=lifetime)
    assert (await _groups(client, f"Bearer {tok}")).status_code == 200
    # within the skew after expiry: still accepted (from the cache)
    monkeypatch.setattr("graphdir.web.app.time.time", lambda: real + lifetime + skew - 30)
    assert (await _groups(client, f"Bearer {tok}")).status_code == 200
    # app.py and tokens.py both ``import time``: this one patch moves the clock for both
    monkeypatch.setattr("graphdir.web.app.time.time", lambda: real + lifetime + skew + 10)
    assert tokens_module.time.time() == real + lifetime + skew + 10
    assert_error(await _groups(client, f"Bearer {tok}"), 401, "InvalidAuthenticationToken", MSG_EXPIRED)


@pytest.mark.anyio
async def test_a_body_cut_short_by_a_disconnect_writes_nothing(api: Any) -> None:
    """The client sends a complete-looking reference, then disconnects before its body ends: the
    prefix is valid JSON, but it is not the body, so no membership may be added."""
    uid = (await api.create_user())["id"]
    gid = (await api.create_group())["id"]
    part = f'{{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/{uid}"}}'.encode()
    messages = [{"type": "http.request", "body": part, "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path = f"/v1.0/groups/{gid}/members/$ref"
    headers = [(b"host", b"testserver"), (b"authorization", f"Bearer {api.default_token}".encode()), (b"content-type", b"application/json")]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers, "server": ("testserver", 80)}  # fmt: skip
    await api.app(scope, receive, send)
    assert sent[0]["status"] == 400
    members = (await api.get(f"/v1.0/groups/{gid}/members")).json()["value"]
    assert members == []
