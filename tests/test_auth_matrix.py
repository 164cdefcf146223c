"""Every route × every kind of caller: status, ``error.code`` and message of each cell (issue 3).

Columns (``CELLS``): no token, malformed, expired, not yet valid, bad signature,
``alg: none``, HS256 keyed with the public key, wrong audience, wrong issuer, another
tenant's object, app token without permission, app token with the route's
least-privileged permission, delegated non-owner member, delegated owner, delegated
Groups Administrator, personal Microsoft account. Rows are the route table itself
(:data:`graphdir.web.routes.ROUTES` + the admin seed route), on ``/v1.0`` and ``/beta``:
a route added later is walked automatically.

Expectations (docs/identity.md#authorization): authentication failures are ``401
InvalidAuthenticationToken`` with the messages of docs/behaviour.md#authentication-errors and ``WWW-Authenticate``; a valid
token without one of the route's permissions is ``403 Authorization_RequestDenied``;
delegated writes on a group need ownership or a role (docs/identity.md#authorization), user writes need User
Administrator; app tokens on ``/me`` are ``400`` ("/me request is only valid with
delegated authentication flow."); personal accounts are refused on every directory
route ("Not supported" on the doc pages → 403) except their own profile (``/me``);
tenant A's token never reaches tenant B's objects (their ids are 404 like unknown ids).

Cells that succeed on a write get fresh objects, so every cell sees the same world.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from graphdir.auth.permissions import Perms
from graphdir.auth.tokens import KeyRing
from graphdir.web.router import Anonymous, Route
from graphdir.web.routes import ADMIN_ROUTES, ROUTES
from identity_helpers import (
    ADMIN_ROLES,
    CONSUMER_TENANT,
    DOMAIN_A,
    DOMAIN_B,
    GRAPH,
    GROUPS_ADMIN,
    MSG_AUDIENCE,
    MSG_EMPTY,
    MSG_EXPIRED,
    MSG_FORBIDDEN,
    MSG_ISSUER,
    MSG_ME,
    MSG_NO_DOTS,
    MSG_NOT_FOUND,
    MSG_NOT_YET,
    MSG_SIGNATURE,
    PASSWORD,
    World,
    alg_none,
    app_token,
    assert_graph_error,
    graph_claims,
    hs256_with_public_key,
    open_world,
    other_rsa_key,
    signed_by,
    user_token,
)

MSG_DOMAIN = "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization."

CELLS = [
    "no_token", "malformed", "expired", "not_yet_valid", "bad_signature", "alg_none", "hs256_public_key", "wrong_audience",
    "wrong_issuer", "other_tenant", "app_without_permission", "app_least_privileged", "delegated_member", "delegated_owner",
    "delegated_groups_admin", "personal_account",
]  # fmt: skip
AUTH_FAILURES = {
    "no_token": MSG_EMPTY, "malformed": MSG_NO_DOTS, "expired": MSG_EXPIRED, "not_yet_valid": MSG_NOT_YET,
    "bad_signature": MSG_SIGNATURE, "alg_none": MSG_SIGNATURE, "hs256_public_key": MSG_SIGNATURE,
    "wrong_audience": MSG_AUDIENCE, "wrong_issuer": MSG_ISSUER,
}  # fmt: skip
ALL_ROUTES: list[Route] = list(ROUTES) + list(ADMIN_ROUTES)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("matrix") / "g.db") as w:
        yield w


# -- building a cell's request -------------------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str
    token: str | None
    body: Any = None
    params: dict[str, str] | None = None


#: POST routes that only read: the membership functions and getByIds (200, and they change nothing).
READ_ACTIONS = {"checkMemberGroups", "checkMemberObjects", "getMemberGroups", "getMemberObjects", "getByIds"}


def _is_read_action(route: Route) -> bool:
    return route.method == "POST" and route.pattern[-1] in READ_ACTIONS


def _success(route: Route) -> int:
    if route.method == "GET" or _is_read_action(route):
        return 200
    if route.method == "POST":
        return 204 if route.pattern[-1] == "$ref" else 201
    return 204


def _is_group_write(route: Route) -> bool:
    return route.method != "GET" and route.pattern[0] == "groups" and len(route.pattern) > 1


def _is_user_write(route: Route) -> bool:
    return route.method != "GET" and route.pattern[0] == "users"


def _is_delete_member_object(route: Route) -> bool:
    return route.method == "DELETE" and route.pattern == ("groups", "{gid}", "members", "{mid}")


def _path(route: Route, version: str, ids: dict[str, str]) -> str:
    out = []
    for seg in route.pattern:
        if seg == "{cast}":
            member_of = "memberOf" in route.pattern or "transitiveMemberOf" in route.pattern
            out.append("microsoft.graph.group" if member_of else "microsoft.graph.user")
        elif seg.startswith("{"):
            out.append(ids[seg[1:-1]])
        else:
            out.append(seg)
    prefix = "/graphdir/admin" if route in ADMIN_ROUTES else f"/{version}"
    return prefix + "/" + "/".join(out)


def _body(w: World, route: Route, extra_id: str) -> Any:
    pat, m = route.pattern, route.method
    if m == "PATCH":
        return {"description": "changed"} if pat[0] == "groups" else {"jobTitle": "Tester"}
    if m != "POST":
        return None
    if _is_read_action(route):
        ids = [w.ids["group"], w.ids["extra"]]
        return {"checkMemberGroups": {"groupIds": ids}, "checkMemberObjects": {"ids": ids}, "getByIds": {"ids": ids}}.get(
            pat[-1], {"securityEnabledOnly": False}
        )
    if pat == ("users",):
        nick = w.unique("new")
        return {"accountEnabled": True, "displayName": nick, "mailNickname": nick, "userPrincipalName": f"{nick}@{DOMAIN_A}",
                "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": PASSWORD}}  # fmt: skip
    if pat == ("groups",):
        nick = w.unique("new")
        return {"displayName": nick, "mailNickname": nick, "mailEnabled": False, "securityEnabled": True}
    if pat[-2:] == ("members", "$ref"):
        return {"@odata.id": f"{GRAPH}/v1.0/directoryObjects/{extra_id}"}
    if pat[-2:] == ("owners", "$ref"):
        return {"@odata.id": f"{GRAPH}/v1.0/users/{extra_id}"}
    if route in ADMIN_ROUTES:
        return {"type": "device", "displayName": w.unique("device")}
    return {}


def _ids_for(w: World, route: Route, fresh: bool) -> dict[str, str]:
    """Placeholder values: the shared world, or fresh objects for a cell that will change them."""
    ids = w.ids
    gid, uid = ids["group"], ids["target"]
    if fresh and route.method != "GET":
        if route.pattern[0] == "groups" and len(route.pattern) > 1:
            gid = w.new_group([ids["owner"], ids["owner2"]], [ids["target"]])
        if route.pattern[0] == "users" and len(route.pattern) > 1:
            uid = w.new_user()
    return {"gid": gid, "uid": uid, "id": uid, "mid": ids["target"], "oid": ids["owner2"]}


def _at_id(route: Route, ids: dict[str, str]) -> dict[str, str] | None:
    if route.method == "DELETE" and route.pattern[-1] == "$ref" and "{mid}" not in route.pattern and "{oid}" not in route.pattern:
        target = ids["mid"] if "members" in route.pattern else ids["oid"]
        return {"@id": f"{GRAPH}/v1.0/directoryObjects/{target}"}
    return None


def _token(w: World, route: Route, cell: str) -> str | None:
    ring, ids, a = w.ring, w.ids, w.tid_a
    kid = ring.active.kid
    # an anonymous route ($metadata) gets the tokens any read would carry: none of them matters
    perms = route.perms if isinstance(route.perms, Perms) else Perms(("User.Read",), ("User.Read.All",))
    least_app, least_del = perms.application[0], perms.delegated[0]
    also = [perms.also[0]] if perms.also else []  # "User.Read.All and GroupMember.Read.All": both least privileged
    me = route.pattern[0] == "me"
    base = graph_claims(a, "11111111-2222-3333-4444-555555555555", roles=[least_app, *also]) if not me else \
        graph_claims(a, "11111111-2222-3333-4444-555555555555", user_id=ids["member"], scopes=[least_del, *also])  # fmt: skip
    now = int(time.time())
    return {
        "no_token": lambda: None,
        "malformed": lambda: "not-a-jwt",
        "expired": lambda: signed_with_ring(ring, {**base, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
        "not_yet_valid": lambda: signed_with_ring(ring, {**base, "nbf": now + 3600, "exp": now + 7200}),
        "bad_signature": lambda: signed_by(other_rsa_key(), kid, base),
        "alg_none": lambda: alg_none(kid, base),
        "hs256_public_key": lambda: hs256_with_public_key(ring, base),
        "wrong_audience": lambda: signed_with_ring(ring, {**base, "aud": "https://graph.windows.net"}),
        "wrong_issuer": lambda: signed_with_ring(ring, {**base, "iss": f"https://sts.windows.net/{w.tid_b}/"}),
        "other_tenant": lambda: user_token(ring, a, ids["b_user"], list(perms.delegated)) if me else app_token(ring, a, ADMIN_ROLES),
        "app_without_permission": lambda: app_token(ring, a, ["Mail.Read"]),
        "app_least_privileged": lambda: app_token(ring, a, [least_app, *also]),
        "delegated_member": lambda: user_token(ring, a, ids["member"], [least_del, *also]),
        "delegated_owner": lambda: user_token(ring, a, ids["owner"], [least_del, *also]),
        "delegated_groups_admin": lambda: user_token(ring, a, ids["gadmin"], [least_del, *also], wids=[GROUPS_ADMIN]),
        "personal_account": lambda: user_token(ring, CONSUMER_TENANT, ids["msa"], sorted({least_del, *also, "User.Read", "User.ReadWrite"})),
    }[cell]()


def signed_with_ring(ring: KeyRing, claims: dict[str, Any]) -> str:
    return ring.sign(claims)


# -- expectations -----------------------------------------------------------------------------------------
Expect = tuple[int, str, str] | int  # an error (status, code, message) or a success status
FORBIDDEN: Expect = (403, "Authorization_RequestDenied", MSG_FORBIDDEN)
ME_APP: Expect = (400, "BadRequest", MSG_ME)


def expected(route: Route, cell: str) -> Expect:
    """The answer of each cell, from docs/identity.md#authorization (see the module docstring)."""
    if isinstance(route.perms, Anonymous):
        return 200  # anonymous, as Graph's $metadata: whatever token comes, or none, is not read
    if cell in AUTH_FAILURES:
        return (401, "InvalidAuthenticationToken", AUTH_FAILURES[cell])
    ok = _success(route)
    me = route.pattern[0] == "me"
    if cell in ("app_without_permission", "app_least_privileged"):
        if me:
            return ME_APP
        if cell == "app_without_permission" or _is_delete_member_object(route):
            return FORBIDDEN  # without /$ref the member object is deleted: that needs User.ReadWrite.All
        return ok
    if cell == "personal_account":
        own_profile = me and route.method in ("GET", "PATCH") and len(route.pattern) == 1
        return ok if own_profile else FORBIDDEN
    # delegated work accounts
    if route.method == "GET" or _is_read_action(route) or route.pattern in (("groups",), ("me",), ("seed",)):
        return ok  # members may read; any member user may create groups; the signed-in user may edit themself
    if _is_user_write(route) or _is_delete_member_object(route):
        return FORBIDDEN  # User Administrator needed; least-privileged group scopes cannot delete a user either
    if _is_group_write(route):
        return FORBIDDEN if cell == "delegated_member" else ok
    return ok


def _cell_changes_world(route: Route, cell: str) -> bool:
    exp = expected(route, cell)
    return isinstance(exp, int) and route.method != "GET" and not _is_read_action(route)


# -- the matrix ---------------------------------------------------------------------------------------------
def _cases() -> list[Any]:
    out = []
    for route in ALL_ROUTES:
        versions = ["-"] if route in ADMIN_ROUTES else ["v1.0", "beta"]
        for version in versions:
            for cell in CELLS:
                if cell == "other_tenant":
                    continue  # its own test below
                out.append(pytest.param(route, version, cell, id=f"{version} {route.name} [{cell}]"))
    return out


@pytest.mark.parametrize(("route", "version", "cell"), _cases())
def test_matrix(world: World, route: Route, version: str, cell: str) -> None:
    w = world
    ids = _ids_for(w, route, fresh=_cell_changes_world(route, cell))
    token = _token(w, route, cell)
    body = _body(w, route, w.ids["extra"])
    resp = w.call(route.method, _path(route, version, ids), token, json=body, params=_at_id(route, ids))
    exp = expected(route, cell)
    if isinstance(exp, int):
        assert resp.status_code == exp, (resp.status_code, resp.text)
    else:
        assert_graph_error(resp, *exp)


# -- another tenant's objects -----------------------------------------------------------------------------------
def _b_ids(w: World) -> dict[str, str]:
    return {"gid": w.ids["b_group"], "uid": w.ids["b_user"], "id": w.ids["b_user"], "mid": w.ids["b_user"], "oid": w.ids["b_user"]}


def _first_key(route: Route, ids: dict[str, str]) -> str:
    return next(ids[s[1:-1]] for s in route.pattern if s.startswith("{") and s != "{cast}")


def _other_tenant_case(w: World, route: Route, version: str) -> tuple[httpx.Response, Callable[[httpx.Response], None]]:
    """Tenant A's token, tenant B's ids: 404 like an unknown id; listings never show B; creations never reach B."""
    token = _token(w, route, "other_tenant")
    pat = route.pattern
    b_user, b_group = w.ids["b_user"], w.ids["b_group"]
    if isinstance(route.perms, Anonymous):  # $metadata holds no tenant's data

        def served(r: httpx.Response) -> None:
            assert r.status_code == 200 and r.headers["content-type"] == "application/xml", r.text

        return w.call(route.method, _path(route, version, {}), token), served
    if pat[0] == "me":  # a token of A whose signed-in user is B's user
        resp = w.call(route.method, _path(route, version, {}), token, json=_body(w, route, b_user))
        return resp, lambda r: assert_graph_error(r, 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(b_user))
    if any(s.startswith("{") and s != "{cast}" for s in pat):
        ids = {**_ids_for(w, route, fresh=False), **_b_ids(w)}
        resp = w.call(route.method, _path(route, version, ids), token, json=_body(w, route, b_user), params=_at_id(route, ids))
        key = _first_key(route, ids)
        return resp, lambda r: assert_graph_error(r, 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(key))
    if pat == ("directoryObjects", "getByIds"):  # B's ids are unknown ids to A: left out
        resp = w.call("POST", _path(route, version, {}), token, json={"ids": [b_user, b_group, w.ids["target"]]})

        def only_a(r: httpx.Response) -> None:
            assert r.status_code == 200, r.text
            assert [o["id"] for o in r.json()["value"]] == [w.ids["target"]]

        return resp, only_a
    if route.method == "GET" and pat[-1] == "$count":
        listing = w.call("GET", _path(route, version, {}).rsplit("/", 1)[0] + "?$top=999", token).json()["value"]
        resp = w.call("GET", _path(route, version, {}), token)

        def same_count(r: httpx.Response) -> None:
            assert r.status_code == 200 and int(r.text) == len(listing), (r.text, len(listing))

        return resp, same_count
    if route.method == "GET":
        resp = w.call("GET", _path(route, version, {}) + "?$top=999", token)

        def b_absent(r: httpx.Response) -> None:
            assert r.status_code == 200, r.text
            seen = {o["id"] for o in r.json()["value"]}
            assert w.ids["target"] in seen or w.ids["group"] in seen
            assert b_user not in seen and b_group not in seen

        return resp, b_absent
    if pat == ("users",):  # a user in B's domain cannot be created with A's token
        body = _body(w, route, b_user)
        body["userPrincipalName"] = body["userPrincipalName"].replace(DOMAIN_A, DOMAIN_B)
        resp = w.call("POST", _path(route, version, {}), token, json=body)
        return resp, lambda r: assert_graph_error(r, 400, "Request_BadRequest", MSG_DOMAIN)
    if pat == ("groups",):  # B's user cannot be bound into a new group of A
        body = {**_body(w, route, b_user), "members@odata.bind": [f"{GRAPH}/v1.0/directoryObjects/{b_user}"]}
        resp = w.call("POST", _path(route, version, {}), token, json=body)
        return resp, lambda r: assert_graph_error(r, 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(b_user))
    if route in ADMIN_ROUTES:  # seeding into A cannot reference B's objects
        resp = w.call("POST", _path(route, version, {}), token, json={**_body(w, route, b_user), "type": "group", "members": [b_user]})
        return resp, lambda r: assert_graph_error(r, 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(b_user))
    raise AssertionError(f"no other-tenant case for {route.name}")


@pytest.mark.parametrize(
    ("route", "version"),
    [pytest.param(r, v, id=f"{v} {r.name}") for r in ALL_ROUTES for v in (["-"] if r in ADMIN_ROUTES else ["v1.0", "beta"])],
)
def test_other_tenants_objects(world: World, route: Route, version: str) -> None:
    resp, check = _other_tenant_case(world, route, version)
    check(resp)


def test_other_tenant_changes_nothing(world: World) -> None:
    """After the whole matrix B's objects are as B made them, and B's token sees none of A's."""
    w = world
    b_user, b_group = w.ids["b_user"], w.ids["b_group"]
    members = w.call("GET", f"/v1.0/groups/{b_group}/members", w.admin_b).json()["value"]
    assert [m["id"] for m in members] == [b_user]
    owners = w.call("GET", f"/v1.0/groups/{b_group}/owners", w.admin_b).json()["value"]
    assert [o["id"] for o in owners] == [b_user]
    assert w.call("GET", f"/v1.0/users/{b_user}", w.admin_b).json()["jobTitle"] is None
    seen = {g["id"] for g in w.call("GET", "/v1.0/groups?$top=999", w.admin_b).json()["value"]}
    assert seen == {b_group}
    for a_id in (w.ids["group"], w.ids["target"]):
        assert_graph_error(w.call("GET", f"/v1.0/directoryObjects/{a_id}", w.admin_b), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(a_id))
    # A's group cannot take B's user as a member (the reference resolves in A only)
    r = w.call("POST", f"/v1.0/groups/{w.ids['group']}/members/$ref", w.admin_a, json={"@odata.id": f"{GRAPH}/v1.0/directoryObjects/{b_user}"})
    assert_graph_error(r, 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(b_user))


def test_every_route_is_walked() -> None:
    """The matrix is generated from the route table; make sure nothing is filtered out by accident."""
    walked = {c.values[0].name for c in _cases()}
    assert walked == {r.name for r in ALL_ROUTES}
    assert len(_cases()) == sum(2 if r not in ADMIN_ROUTES else 1 for r in ALL_ROUTES) * (len(CELLS) - 1)


