"""Storage failures over HTTP: a 503 only when the store is really unavailable.

A request the store cannot answer as asked (a forged but well-formed ``$skiptoken`` whose keyset
position does not fit the order, a value SQLite cannot bind) is the client's fault: 400, never a
503 with ``Retry-After`` (the SDKs would retry it for ever). A storage failure that is neither the
client's fault nor the store being unavailable is a bug: 500, logged.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from graphdir.query import ListQuery
from graphdir.store import sqlite as sqlite_store
from graphdir.store.base import Gone, InvalidInput, InvalidPosition, StoredObject, StoreError, Unavailable
from graphdir.web.app import store_error
from http_helpers import BASE_URL, EVENTUAL, Api, assert_error, assert_no_content

MSG_SKIPTOKEN = "Invalid skip token: the $skiptoken value is not valid for this request."
ADVANCED = {"$count": "true"}


def forged(after: list[Any], order: str = "") -> str:
    """A well-formed skip token as graphdir encodes them (base64url of ``{"a": [...], "o": order}``)."""
    return base64.urlsafe_b64encode(orjson.dumps({"a": after, "o": order})).rstrip(b"=").decode()


# -- forged skip tokens -------------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("version", ["v1.0", "beta"])
async def test_forged_skiptoken_is_a_400_on_every_list(api: Api, version: str) -> None:
    user = await api.create_user()
    group = await api.create_group()
    assert_no_content(await api.add_member(group["id"], user["id"]))
    lists = [
        ("/groups", {}, {}),
        (f"/groups/{group['id']}/members", {}, {}),
        (f"/groups/{group['id']}/members/$ref", {}, {}),
        (f"/groups/{group['id']}/owners", {}, {}),
        (f"/users/{user['id']}/memberOf", {}, {}),
        (f"/groups/{group['id']}/memberOf", {}, {}),
        ("/users", {}, {}),
    ]
    for path, params, headers in lists:
        for after in (["x", "y", "z"], ["x", "y"], []):
            resp = await api.get(f"/{version}{path}", params={**params, "$skiptoken": forged(after)}, headers=headers)
            # no position at all is not a token graphdir issues either (options.py: 1 key ordered by id)
            assert_error(resp, 400, "Request_BadRequest", MSG_SKIPTOKEN)
            assert "Retry-After" not in resp.headers


@pytest.mark.anyio
async def test_orderby_skiptoken_of_the_wrong_arity_is_a_400(api: Api) -> None:
    """With ``$orderby=displayName`` a position is (displayName, id); one or three values do not fit."""
    user = await api.create_user()
    group = await api.create_group()
    assert_no_content(await api.add_member(group["id"], user["id"]))
    cases = [
        ("/v1.0/groups", {"$orderby": "displayName"}, {}),
        ("/v1.0/users", {"$orderby": "displayName desc"}, {}),
        (f"/v1.0/groups/{group['id']}/members", {"$orderby": "displayName", **ADVANCED}, EVENTUAL),
        (f"/v1.0/users/{user['id']}/memberOf", {"$orderby": "displayName", **ADVANCED}, EVENTUAL),
    ]
    for path, params, headers in cases:
        ok = await api.get(path, params=params, headers=headers)
        assert ok.status_code == 200, (path, ok.text)
        for after in (["only"], ["a", "b", "c"]):
            resp = await api.get(path, params={**params, "$skiptoken": forged(after, "displayName")}, headers=headers)
            assert_error(resp, 400, "Request_BadRequest", MSG_SKIPTOKEN)
        # the right arity is a position like any other
        resp = await api.get(path, params={**params, "$skiptoken": forged(["m", "0"], "displayName")}, headers=headers)
        assert resp.status_code == 200, (path, resp.text)


# -- the mapping of storage failures --------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (Unavailable("database is locked"), 503, "ServiceNotAvailable"),
        (StoreError("a bug in the store"), 500, "InternalServerError"),
        (InvalidPosition("the position does not fit the order"), 400, "Request_BadRequest"),
        (InvalidInput("a value is too large"), 400, "Request_BadRequest"),
    ],
)
async def test_storage_failures_map_to_their_status(api: Api, monkeypatch: pytest.MonkeyPatch, exc: StoreError, status: int, code: str) -> None:
    def fail(*_args: Any, **_kw: Any) -> None:
        raise exc

    monkeypatch.setattr(api.graph.store, "list_objects", fail)
    resp = await api.get("/v1.0/groups")
    assert_error(resp, status, code)
    assert ("Retry-After" in resp.headers) == (status == 503)


def _operational(code: int, message: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (_operational(sqlite3.SQLITE_BUSY, "database is locked"), Unavailable),
        (_operational(sqlite3.SQLITE_LOCKED, "database table is locked"), Unavailable),
        (_operational(sqlite3.SQLITE_IOERR_SHORT_READ, "disk I/O error"), Unavailable),
        (_operational(sqlite3.SQLITE_FULL, "database or disk is full"), Unavailable),
        (_operational(sqlite3.SQLITE_CANTOPEN, "unable to open database file"), Unavailable),
        (sqlite3.ProgrammingError("Cannot operate on a closed database."), Unavailable),
        (sqlite3.DataError("string or blob too big"), InvalidInput),
        (_operational(sqlite3.SQLITE_TOOBIG, "string or blob too big"), InvalidInput),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), InvalidInput),
        (sqlite3.InterfaceError("bad parameter or other API misuse"), StoreError),
        (_operational(sqlite3.SQLITE_ERROR, 'near "SELEC": syntax error'), StoreError),
        (_operational(sqlite3.SQLITE_CORRUPT, "database disk image is malformed"), StoreError),
    ],
)
def test_sqlite_errors_are_translated_by_cause(exc: Exception, kind: type[StoreError]) -> None:
    out = sqlite_store.translate(exc)
    assert type(out) is kind, (exc, out)


def test_a_value_sqlite_cannot_bind_is_invalid_input(tmp_path: Any) -> None:
    """A number beyond SQLite's 64-bit integers, bound from a query, is the client's fault (not a 503)."""
    store = sqlite_store.SqliteStore(tmp_path / "q.db")
    store.open()
    try:
        with pytest.raises(InvalidInput):
            store._q("SELECT ?", [2**70])
        with pytest.raises(InvalidPosition):
            store.sync(store.list_objects("t", ("group",), ListQuery(after=("a", "b", "c"))))
    finally:
        store.close()


# -- no query option value makes a list answer 5xx ---------------------------------------------------------
_OPTIONS = ["$filter", "$search", "$orderby", "$top", "$select", "$count", "$skiptoken", "$expand", "$skip"]
_ORDERS = st.sampled_from(["", "displayName", "displayName desc", "displayName asc", "id"])
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)
_FILTERS = st.one_of(
    _TEXT,
    st.builds(
        "{} {} {}".format,
        st.sampled_from(["displayName", "id", "mail", "userPrincipalName", "createdDateTime", "accountEnabled", "groupTypes/any(c:c", "x"]),
        st.sampled_from(["eq", "ne", "ge", "le", "in", "startsWith"]),
        st.one_of(
            st.integers().map(str),
            st.just("99999999999999999999999999999999"),
            _TEXT.map(lambda s: "'" + s.replace("'", "''") + "'"),
            st.lists(_TEXT.map(lambda s: "'" + s.replace("'", "''") + "'"), max_size=4).map(lambda xs: "(" + ",".join(xs) + ")"),
            st.sampled_from(["null", "true", "2024-01-01T00:00:00Z", "-0", "1e999"]),
        ),
    ),
)
_SKIPTOKENS = st.one_of(
    _TEXT,
    st.builds(forged, st.lists(_TEXT, max_size=4), st.sampled_from(["", "displayName", "x"])),
    st.builds(
        lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode(),
        st.recursive(
            st.none() | st.integers() | _TEXT,
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["a", "o"]), c, max_size=2),
            max_leaves=6,
        ),
    ),
)
_VALUES = {
    "$filter": _FILTERS,
    "$search": st.one_of(_TEXT, _TEXT.map(lambda s: f'"displayName:{s}"')),
    "$orderby": _ORDERS,
    "$top": st.one_of(st.integers(-5, 2000).map(str), _TEXT),
    "$select": st.one_of(_TEXT, st.sampled_from(["id,displayName", "*", "mail,,id"])),
    "$count": st.sampled_from(["true", "false", "TRUE", "1", ""]),
    "$skiptoken": _SKIPTOKENS,
    "$expand": _TEXT,
    "$skip": _TEXT,
}


def test_no_query_option_value_makes_a_list_answer_5xx(make_app: Callable[..., Starlette]) -> None:
    app = make_app()
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
    api = Api(app, client)
    try:
        user = loop.run_until_complete(api.create_user("Ada"))
        group = loop.run_until_complete(api.create_group("Team"))
        assert loop.run_until_complete(api.add_member(group["id"], user["id"])).status_code == 204
        paths = [
            "/v1.0/users", "/beta/users", "/v1.0/groups", "/beta/groups",
            f"/v1.0/groups/{group['id']}/members", f"/beta/groups/{group['id']}/members",
            f"/v1.0/groups/{group['id']}/members/$ref", f"/v1.0/groups/{group['id']}/owners",
            f"/v1.0/users/{user['id']}/memberOf", f"/v1.0/groups/{group['id']}/members/microsoft.graph.user",
            f"/v1.0/groups/{group['id']}/members/$count", "/v1.0/users/$count",
        ]  # fmt: skip

        @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            path=st.sampled_from(paths),
            options=st.dictionaries(st.sampled_from(_OPTIONS), st.none(), max_size=5).flatmap(
                lambda keys: st.fixed_dictionaries({k: _VALUES[k] for k in keys})
            ),
            eventual=st.booleans(),
        )
        def check(path: str, options: dict[str, str], eventual: bool) -> None:
            resp = loop.run_until_complete(api.get(path, params=options, headers=EVENTUAL if eventual else None))
            assert resp.status_code < 500, (path, options, resp.status_code, resp.text)

        check()
    finally:
        loop.run_until_complete(client.aclose())
        close_reads = getattr(app.state.graph.store, "close_reads", None)  # PostgreSQL: this loop's read pool
        if close_reads is not None:
            loop.run_until_complete(close_reads())
        loop.close()


def test_a_write_functions_storage_errors_reach_the_caller_translated(tmp_path: Any) -> None:
    """Raw SQLite errors never leave the store: a write function's duplicate key is a Conflict (400),
    a value too big for SQLite InvalidInput (400), a broken statement a bug (StoreError, 500), never 503."""
    store = sqlite_store.SqliteStore(tmp_path / "w.db")
    store.open()

    def duplicate(tx: sqlite_store.SqliteTxn) -> None:
        tx.conn.execute("INSERT INTO meta VALUES ('k', '1')")
        tx.conn.execute("INSERT INTO meta VALUES ('k', '2')")

    def too_big(tx: sqlite_store.SqliteTxn) -> None:
        tx.conn.execute("INSERT INTO meta VALUES ('big', ?)", (2**70,))

    def broken(tx: sqlite_store.SqliteTxn) -> None:
        tx.conn.execute("SELEC 1")

    try:

        async def run() -> list[object]:
            futs = [store.write("t", fn) for fn in (duplicate, too_big, broken)]
            return await asyncio.gather(*futs, return_exceptions=True)

        results = asyncio.run(run())
        with pytest.raises(StoreError) as raised:
            store.write_sync("t", broken)
    finally:
        store.close()
    assert [type(r) for r in results] == [sqlite_store.Conflict, InvalidInput, StoreError], results
    assert type(raised.value) is StoreError


def test_a_conflict_names_the_duplicated_property_never_the_databases_text(tmp_path: Any) -> None:
    """A uniqueness violation reaches the client as Graph's message naming the property: SQLite's
    "UNIQUE constraint failed: objects.tenant_id, objects.upn" never leaves the store."""
    store = sqlite_store.SqliteStore(tmp_path / "u.db")
    store.open()
    user = {"userPrincipalName": "a@x.example", "displayName": "A"}

    def twice(tx: sqlite_store.SqliteTxn) -> None:
        tx.insert(StoredObject("t", "00000000-0000-0000-0000-00000000000a", "user", dict(user), "2026-01-01T00:00:00Z"))
        tx.insert(StoredObject("t", "00000000-0000-0000-0000-00000000000b", "user", dict(user), "2026-01-01T00:00:00Z"))

    try:
        with pytest.raises(sqlite_store.Conflict) as raised:
            store.write_sync("t", twice)
    finally:
        store.close()
    assert raised.value.what == "userPrincipalName"
    err = store_error(raised.value, "POST", "/v1.0/users")
    assert (err.status, err.code) == (400, "Request_BadRequest")
    assert err.message == "Another object with the same value for property userPrincipalName already exists."


def test_a_write_whose_object_was_deleted_meanwhile_is_a_404_without_the_stores_text() -> None:
    err = store_error(Gone("the object was deleted meanwhile"), "POST", "/v1.0/groups/x/members/$ref")
    assert (err.status, err.code) == (404, "Request_ResourceNotFound")
    assert "meanwhile" not in err.message and err.message.startswith("Resource does not exist")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("exc", "status", "code"), [(Unavailable("disk I/O error"), 503, "ServiceNotAvailable"), (StoreError("a bug"), 500, "InternalServerError")]
)
async def test_the_token_endpoints_storage_failures_are_graph_json(api: Api, monkeypatch: pytest.MonkeyPatch, exc: StoreError, status: int, code: str) -> None:
    """The token authority is served beside Graph's routes: its storage failures are JSON too, not a bare 500 page."""

    def fail(*_args: Any, **_kw: Any) -> None:
        raise exc

    monkeypatch.setattr(api.graph.store, "get_application", fail)
    form = {
        "grant_type": "client_credentials",
        "client_id": "7d1f4c1e-0000-4000-8000-000000000001",
        "client_secret": "s",
        "scope": "https://graph.microsoft.com/.default",
    }
    resp = await api.client.post(f"/{api.graph.tenant['id']}/oauth2/v2.0/token", data=form)
    assert_error(resp, status, code)
    assert ("Retry-After" in resp.headers) == (status == 503)
