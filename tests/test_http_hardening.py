"""Issue 9, what a hostile client found in the query options and string values.

* A forged but well-formed ``$skiptoken`` (a position whose shape does not fit the order) is the
  same ``400`` as every other bad skip token — never the ``503`` of an unavailable store.
* ``$expand`` of anything graphdir does not expand answers a Graph-shaped ``400`` instead of being
  silently ignored (what it expands: tests/test_http_expand.py).
* Numbers in query options are ASCII digits only (``$top=５``, ``$top= 5``, ``$top=1_0`` are
  refused), and so are ``$filter`` literals.
* Control characters Graph refuses (``\\u0000`` and every other non-XML character) are refused
  in string properties on create and update of users and groups, and nothing is written.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from http_helpers import DOMAIN, PASSWORD, Api, assert_error, assert_no_content, assert_odata_json

pytestmark = pytest.mark.anyio

VERSIONS = ["v1.0", "beta"]
MSG_SKIPTOKEN = "Invalid skip token: the $skiptoken value is not valid for this request."


def forged(keys: list[Any], order: str = "") -> str:
    """A well-formed token as graphdir makes them (base64url JSON), holding any position."""
    raw = json.dumps({"a": keys, "o": order}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def _listings(api: Api, version: str) -> list[str]:
    """The three kinds of listing the issue names: /groups, a group's members, a user's memberOf."""
    user = await api.create_user()
    group = await api.create_group(version=version)
    assert (await api.add_member(group["id"], user["id"], version=version)).status_code == 204
    return [f"/{version}/groups", f"/{version}/groups/{group['id']}/members", f"/{version}/users/{user['id']}/memberOf"]


# -- item 1: forged $skiptoken ------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
async def test_forged_skiptoken_with_the_wrong_shape_is_400(api: Api, version: str) -> None:
    """The issue's token ({"a": ["x", "y", "z"], "o": ""}) and its siblings: the number of keys must
    be the order's (1 by id, 2 by displayName); strings only; the order must be the request's."""
    bad = [
        forged(["x", "y", "z"]),  # the token: 3 keys where id order has 1
        forged(["x", "y"]),  # 2 keys without an order
        forged([]),  # no position at all
        forged([1]),  # not a string
        forged(["x"], "displayName"),  # another order than the request's
        forged({"k": "v"}),  # not a list
        base64.urlsafe_b64encode(b'["a"]').decode(),  # JSON, but not an object
    ]
    for path in await _listings(api, version):
        for token in bad:
            resp = await api.get(path, params={"$skiptoken": token})
            assert_error(resp, 400, "Request_BadRequest", MSG_SKIPTOKEN)
            assert "retry-after" not in resp.headers


@pytest.mark.parametrize("version", VERSIONS)
async def test_forged_skiptoken_under_displayname_order(api: Api, version: str) -> None:
    """Ordered by displayName a position is (displayName, id): one key or three are refused."""
    for keys in (["x"], ["x", "y", "z"]):
        resp = await api.get(f"/{version}/groups", params={"$orderby": "displayName", "$skiptoken": forged(keys, "displayName")})
        assert_error(resp, 400, "Request_BadRequest", MSG_SKIPTOKEN)
    resp = await api.get(f"/{version}/groups", params={"$orderby": "displayName", "$skiptoken": forged(["x", "y"], "displayName")})
    assert_odata_json(resp)  # the right shape is a position like any other


async def test_real_nextlinks_still_page(api: Api) -> None:
    """The check refuses forgeries only: genuine nextLinks walk every page, in both orders."""
    ids = set(api.bulk_users(7))
    assert set(await api.ids("/v1.0/users?$top=3")) == ids
    assert set(await api.ids("/v1.0/users?$top=3&$orderby=displayName")) == ids


# -- item 2: $expand ---------------------------------------------------------------------------------------
def expand_not_supported(prop: str) -> tuple[int, str, str]:
    return 400, "ExpandNotSupported", f"Expand is not allowed for property '{prop}' according to the entity schema."


def not_found(name: str, type_name: str) -> tuple[int, str, str]:
    return 400, "BadRequest", f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."


def not_navigation(name: str, type_name: str) -> tuple[int, str, str]:
    return (
        400,
        "BadRequest",
        f"Property '{name}' on type 'microsoft.graph.{type_name}' is not a navigation property or complex property. "
        "Only navigation properties can be expanded.",
    )


@pytest.mark.parametrize("version", VERSIONS)
async def test_expand_is_refused_where_not_served(api: Api, version: str) -> None:
    user = await api.create_user()
    group = await api.create_group(version=version)
    assert (await api.add_member(group["id"], user["id"], version=version)).status_code == 204
    me = api.token(user_id=user["id"], scopes=["User.Read", "GroupMember.Read.All"])
    v, uid, gid = version, user["id"], group["id"]
    cases: list[tuple[str, str, tuple[int, str, str], str | None]] = [
        (f"/{v}/users/{uid}", "photo", expand_not_supported("Photo"), None),  # query-parameters.md's own example
        # relationships graphdir serves but does not expand (members/owners of groups and memberOf
        # of users are expanded: tests/test_http_expand.py)
        (f"/{v}/groups", "MEMBEROF", expand_not_supported("MemberOf"), None),
        (f"/{v}/groups/{gid}", "memberOf($select=id)", expand_not_supported("MemberOf"), None),
        (f"/{v}/users/{uid}", "manager", expand_not_supported("Manager"), None),
        (f"/{v}/me", "manager", expand_not_supported("Manager"), me),
        (f"/{v}/users", "*", expand_not_supported("*"), None),
        (f"/{v}/users/{uid}", "identities", expand_not_supported("Identities"), None),  # a complex property
        # members listings: items are directoryObjects, or the cast's type
        (f"/{v}/groups/{gid}/members", "memberOf", not_found("memberOf", "directoryObject"), None),
        (f"/{v}/groups/{gid}/members/microsoft.graph.user", "manager", expand_not_supported("Manager"), None),
        (f"/{v}/groups/{gid}/owners", "nope", not_found("nope", "directoryObject"), None),
        (f"/{v}/users/{uid}/memberOf", "members", not_found("members", "directoryObject"), None),
        (f"/{v}/directoryObjects/{gid}", "members", not_found("members", "directoryObject"), None),
        # names that are not relationships
        (f"/{v}/users/{uid}", "nope", not_found("nope", "user"), None),
        (f"/{v}/groups", "shoeSize", not_found("shoeSize", "group"), None),
        (f"/{v}/users", "displayName", not_navigation("displayName", "user"), None),
        (f"/{v}/groups/{gid}", "description,members", not_navigation("description", "group"), None),
        # a members listing cast to groups does not expand its items' relationships
        (f"/{v}/groups/{gid}/members/microsoft.graph.group", "members", expand_not_supported("Members"), None),
    ]
    for path, expand, (status, code, message), token in cases:
        resp = await api.get(path, params={"$expand": expand}, token=token)
        assert_error(resp, status, code, message)


async def test_empty_expand_is_no_expansion(api: Api) -> None:
    group = await api.create_group()
    assert assert_odata_json(await api.get(f"/v1.0/groups/{group['id']}", params={"$expand": ""}))["id"] == group["id"]


# -- item 6: numbers are ASCII digits --------------------------------------------------------------------------
MSG_TOP = "Invalid value '{}' for $top query option found. The $top query option requires a non-negative integer value."


@pytest.mark.parametrize("version", VERSIONS)
async def test_top_takes_ascii_digits_only(api: Api, version: str) -> None:
    for path in await _listings(api, version):
        for value in ("５", " 5", "5 ", "1_0", "+5", "٣", "5.0", ""):
            assert_error(await api.get(path, params={"$top": value}), 400, "BadRequest", MSG_TOP.format(value))
        assert assert_odata_json(await api.get(path, params={"$top": "05"}))["value"] is not None


async def test_count_takes_true_or_false_only(api: Api) -> None:
    for value in ("ｔrue", " true", "1", "yes"):
        resp = await api.get("/v1.0/groups", params={"$count": value})
        assert_error(resp, 400, "BadRequest", f"Invalid value '{value}' for $count query option found. Valid values are 'true' and 'false'.")
    assert assert_odata_json(await api.get("/v1.0/groups", params={"$count": "TRUE"}, headers={"ConsistencyLevel": "eventual"}))["@odata.count"] == 0


async def test_filter_literals_are_ascii(api: Api) -> None:
    """The lexer's ``\\d``/``\\s`` take Unicode digits and spaces; outside string literals only ASCII passes."""
    cases = {
        "id eq ０0000000-0000-0000-0000-000000000000": ("０", 6),
        "displayName eq ５": ("５", 15),
        "displayName\u3000eq 'x'": ("\u3000", 11),
    }
    for text, (char, pos) in cases.items():
        resp = await api.get("/v1.0/users", params={"$filter": text})
        assert_error(resp, 400, "BadRequest", f"Invalid filter clause: Syntax error: character '{char}' is not valid at position {pos} in '{text}'.")
    user = await api.create_user("Zoë")
    body = assert_odata_json(await api.get("/v1.0/users", params={"$filter": "displayName eq 'Zoë'"}))  # inside strings: anything
    assert [u["id"] for u in body["value"]] == [user["id"]]


async def test_content_length_takes_ascii_digits_only(api: Api) -> None:
    """A Content-Length that ``int()`` would read (``1_0``, `` 2``) is refused before the body is read."""
    group = await api.create_group()
    user = await api.create_user()
    body = json.dumps({"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user['id']}"}).encode()
    for value in ("1_0", " 2", "٣"):
        status, answer = await _raw_post(api, f"/v1.0/groups/{group['id']}/members/$ref", body, value)
        assert status == 400 and answer["error"]["message"] == "Invalid Content-Length header.", answer
    assert await api.member_ids(group["id"]) == set()


async def _raw_post(api: Api, path: str, body: bytes, content_length: str) -> tuple[int, dict[str, Any]]:
    """Drive the ASGI app directly: an HTTP client would not send such a header."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http", "path": path,
        "raw_path": path.encode(), "query_string": b"", "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 1),
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {api.default_token}".encode()),
                    (b"content-type", b"application/json"), (b"content-length", content_length.encode())],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await api.app(scope, receive, send)
    status = sent[0]["status"]
    return status, json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


# -- item 6: characters a directory string cannot hold ------------------------------------------------------------------------
BAD_CHARS = ["\u0000", "\u0001", "\u0008", "\u000b", "\u000c", "\u001f", "\ufffe", "\uffff"]


def user_body(nick: str, **extra: Any) -> dict[str, Any]:
    body = {
        "accountEnabled": True,
        "displayName": nick,
        "mailNickname": nick,
        "userPrincipalName": f"{nick}@{DOMAIN}",
        "passwordProfile": {"password": PASSWORD},
    }
    body.update(extra)
    return body


def group_body(nick: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"displayName": nick, "mailNickname": nick, "mailEnabled": False, "securityEnabled": True}
    body.update(extra)
    return body


@pytest.mark.parametrize("version", VERSIONS)
async def test_control_characters_refused_on_create(api: Api, version: str) -> None:
    before_users = set(await api.ids(f"/{version}/users"))
    before_groups = set(await api.ids(f"/{version}/groups"))
    for i, ch in enumerate(BAD_CHARS):
        nick = f"cc{i}"
        for prop, value in (("displayName", f"Bad{ch}Name"), ("jobTitle", f"x{ch}"), ("businessPhones", [f"1{ch}"])):
            resp = await api.post(f"/{version}/users", json=user_body(nick, **{prop: value}))
            assert_error(resp, 400, "Request_BadRequest", f"Invalid value specified for property '{prop}' of resource 'User'.")
        identity = {"signInType": "emailAddress", "issuer": f"x{ch}", "issuerAssignedId": "a"}
        resp = await api.post(f"/{version}/users", json=user_body(nick, identities=[identity]))
        assert_error(resp, 400, "Request_BadRequest", "Invalid value specified for property 'identities' of resource 'User'.")
        for prop in ("displayName", "description", "mailNickname"):
            resp = await api.post(f"/{version}/groups", json=group_body(nick, **{prop: f"a{ch}b"}))
            assert_error(resp, 400, "Request_BadRequest", f"Invalid value specified for property '{prop}' of resource 'Group'.")
    assert set(await api.ids(f"/{version}/users")) == before_users
    assert set(await api.ids(f"/{version}/groups")) == before_groups


@pytest.mark.parametrize("version", VERSIONS)
async def test_control_characters_refused_on_update(api: Api, version: str) -> None:
    user = await api.create_user("Kept User")
    group = await api.create_group("Kept Group", version=version, description="kept")
    for ch in BAD_CHARS:
        for prop in ("displayName", "surname", "city"):
            resp = await api.patch(f"/{version}/users/{user['id']}", json={"jobTitle": "never", prop: f"a{ch}"})
            assert_error(resp, 400, "Request_BadRequest", f"Invalid value specified for property '{prop}' of resource 'User'.")
        for prop in ("displayName", "description"):
            resp = await api.patch(f"/{version}/groups/{group['id']}", json={"theme": "Red", prop: f"a{ch}"})
            assert_error(resp, 400, "Request_BadRequest", f"Invalid value specified for property '{prop}' of resource 'Group'.")
    got_user = assert_odata_json(await api.get(f"/{version}/users/{user['id']}", params={"$select": "displayName,jobTitle"}))
    assert got_user["displayName"] == "Kept User" and got_user["jobTitle"] is None
    got_group = assert_odata_json(await api.get(f"/{version}/groups/{group['id']}"))
    assert (got_group["displayName"], got_group["description"], got_group["theme"]) == ("Kept Group", "kept", None)


async def test_tab_and_newlines_are_text(api: Api) -> None:
    """XML 1.0 allows tab, line feed and carriage return: a multi-line description is kept."""
    group = await api.create_group(description="line one\nline two\ttabbed\r\n")
    assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json={"description": "a\nb"}))
    assert assert_odata_json(await api.get(f"/v1.0/groups/{group['id']}"))["description"] == "a\nb"
