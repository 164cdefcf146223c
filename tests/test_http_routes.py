"""Every route of :mod:`graphdir.web.routes` answers under ``/v1.0`` and ``/beta``.

The table below must name every route: adding a route without a case here fails
``test_route_table_is_covered``. Each case makes the objects it needs, sends one
request and states the success status Graph documents (docs/behaviour.md#response-bodies).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from graphdir.web.routes import ADMIN_ROUTES, ROUTES
from http_helpers import EVENTUAL, PASSWORD, Api, assert_no_content, assert_odata_json, ref

pytestmark = pytest.mark.anyio


@dataclass
class World:
    user: dict[str, Any]
    group: dict[str, Any]
    parent: dict[str, Any]
    owners: list[dict[str, Any]]


async def make_world(api: Api, version: str) -> World:
    # users are seeded (no password hashing): this module only checks that each route is served
    user, *owners = [await api.seed("user", userPrincipalName=f"{api.unique('r')}@contoso.onmicrosoft.com") for _ in range(3)]
    group = await api.create_group(
        version=version,
        **{"members@odata.bind": [ref(user["id"])], "owners@odata.bind": [ref(o["id"], "users") for o in owners]},
    )
    parent = await api.create_group(**{"members@odata.bind": [ref(group["id"]), ref(user["id"])]})
    return World(user, group, parent, owners)


Case = Callable[[Api, str, World], Awaitable[tuple[httpx.Response, int]]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[name] = fn
        return fn

    return register


def me_token(api: Api, w: World) -> str:
    return api.token(user_id=w.user["id"], scopes=["User.ReadWrite", "GroupMember.Read.All"])


# -- the service document ----------------------------------------------------------------------
@case("GET /$metadata")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/$metadata", auth=False), 200


# -- users -------------------------------------------------------------------------------------
@case("GET /users")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/users"), 200


@case("GET /users/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/users/$count", headers=EVENTUAL), 200


@case("POST /users")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    body = {
        "accountEnabled": True,
        "displayName": "Route",
        "mailNickname": "route",
        "userPrincipalName": "route@contoso.onmicrosoft.com",
        "passwordProfile": {"password": PASSWORD},
    }
    return await api.post(f"/{v}/users", json=body), 201


@case("GET /users/{uid}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/users/{w.user['id']}"), 200


@case("PATCH /users/{uid}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.patch(f"/{v}/users/{w.user['id']}", json={"jobTitle": "x"}), 204


@case("DELETE /users/{uid}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.delete(f"/{v}/users/{w.user['id']}"), 204


@case("GET /me")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/me", token=me_token(api, w)), 200


@case("PATCH /me")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.patch(f"/{v}/me", json={"officeLocation": "1/1"}, token=me_token(api, w)), 204


for _base in ("users/{uid}", "me"):

    def _path(api: Api, v: str, w: World, tail: str, base: str = _base) -> tuple[str, dict[str, str]]:
        prefix = f"/{v}/users/{w.user['id']}" if base != "me" else f"/{v}/me"
        headers = {"Authorization": f"Bearer {me_token(api, w)}"} if base == "me" else {}
        return prefix + tail, headers

    @case(f"GET /{_base}/memberOf")
    async def _(api: Api, v: str, w: World, p: Callable[..., tuple[str, dict[str, str]]] = _path) -> tuple[httpx.Response, int]:
        path, h = p(api, v, w, "/memberOf")
        return await api.get(path, headers=h), 200

    @case(f"GET /{_base}/memberOf/$count")
    async def _(api: Api, v: str, w: World, p: Callable[..., tuple[str, dict[str, str]]] = _path) -> tuple[httpx.Response, int]:
        path, h = p(api, v, w, "/memberOf/$count")
        return await api.get(path, headers={**h, **EVENTUAL}), 200

    @case(f"GET /{_base}/memberOf/{{cast}}")
    async def _(api: Api, v: str, w: World, p: Callable[..., tuple[str, dict[str, str]]] = _path) -> tuple[httpx.Response, int]:
        path, h = p(api, v, w, "/memberOf/microsoft.graph.group")
        return await api.get(path, headers=h), 200

    @case(f"GET /{_base}/memberOf/{{cast}}/$count")
    async def _(api: Api, v: str, w: World, p: Callable[..., tuple[str, dict[str, str]]] = _path) -> tuple[httpx.Response, int]:
        path, h = p(api, v, w, "/memberOf/microsoft.graph.group/$count")
        return await api.get(path, headers={**h, **EVENTUAL}), 200

    @case(f"GET /{_base}/transitiveMemberOf")
    async def _(api: Api, v: str, w: World, p: Callable[..., tuple[str, dict[str, str]]] = _path) -> tuple[httpx.Response, int]:
        path, h = p(api, v, w, "/transitiveMemberOf")
        return await api.get(path, headers=h), 200

    @case(f"GET /{_base}/transitiveMemberOf/$count")
    async def _(api: Api, v: str, w: World, p: Callable[..., tuple[str, dict[str, str]]] = _path) -> tuple[httpx.Response, int]:
        path, h = p(api, v, w, "/transitiveMemberOf/$count")
        return await api.get(path, headers={**h, **EVENTUAL}), 200

    @case(f"GET /{_base}/transitiveMemberOf/{{cast}}")
    async def _(api: Api, v: str, w: World, p: Callable[..., tuple[str, dict[str, str]]] = _path) -> tuple[httpx.Response, int]:
        path, h = p(api, v, w, "/transitiveMemberOf/microsoft.graph.group")
        return await api.get(path, headers=h), 200

    @case(f"GET /{_base}/transitiveMemberOf/{{cast}}/$count")
    async def _(api: Api, v: str, w: World, p: Callable[..., tuple[str, dict[str, str]]] = _path) -> tuple[httpx.Response, int]:
        path, h = p(api, v, w, "/transitiveMemberOf/microsoft.graph.group/$count")
        return await api.get(path, headers={**h, **EVENTUAL}), 200


# -- groups ------------------------------------------------------------------------------------
@case("GET /groups")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups"), 200


@case("GET /groups/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/$count", headers=EVENTUAL), 200


@case("POST /groups")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    body = {"displayName": "R", "mailNickname": "r", "mailEnabled": False, "securityEnabled": True}
    return await api.post(f"/{v}/groups", json=body), 201


@case("GET /groups/{gid}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}"), 200


@case("PATCH /groups/{gid}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.patch(f"/{v}/groups/{w.group['id']}", json={"description": "x"}), 204


@case("DELETE /groups/{gid}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.delete(f"/{v}/groups/{w.group['id']}"), 204


# -- members -----------------------------------------------------------------------------------
@case("GET /groups/{gid}/members")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/members"), 200


@case("GET /groups/{gid}/members/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/members/$count", headers=EVENTUAL), 200


@case("GET /groups/{gid}/members/$ref")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/members/$ref"), 200


@case("POST /groups/{gid}/members/$ref")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.add_member(w.group["id"], w.owners[0]["id"], version=v), 204


@case("DELETE /groups/{gid}/members/$ref")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.delete(f"/{v}/groups/{w.group['id']}/members/$ref?@id={quote(ref(w.user['id'], version=v), safe='')}"), 204


@case("DELETE /groups/{gid}/members/$ref/{mid}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.delete(f"/{v}/groups/{w.group['id']}/members/$ref/{w.user['id']}"), 204


@case("GET /groups/{gid}/members/{cast}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/members/microsoft.graph.user"), 200


@case("GET /groups/{gid}/members/{cast}/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/members/microsoft.graph.user/$count", headers=EVENTUAL), 200


@case("GET /groups/{gid}/members/{mid}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/members/{w.user['id']}"), 200


@case("DELETE /groups/{gid}/members/{mid}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.delete(f"/{v}/groups/{w.group['id']}/members/{w.user['id']}"), 204


@case("DELETE /groups/{gid}/members/{mid}/$ref")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.delete(f"/{v}/groups/{w.group['id']}/members/{w.user['id']}/$ref"), 204


# -- owners ------------------------------------------------------------------------------------
@case("GET /groups/{gid}/owners")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/owners"), 200


@case("GET /groups/{gid}/owners/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/owners/$count", headers=EVENTUAL), 200


@case("GET /groups/{gid}/owners/$ref")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/owners/$ref"), 200


@case("POST /groups/{gid}/owners/$ref")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.add_owner(w.group["id"], w.user["id"], version=v), 204


@case("DELETE /groups/{gid}/owners/$ref")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.delete(f"/{v}/groups/{w.group['id']}/owners/$ref?@id={quote(ref(w.owners[0]['id'], 'users', v), safe='')}"), 204


@case("GET /groups/{gid}/owners/{cast}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/owners/microsoft.graph.user"), 200


@case("GET /groups/{gid}/owners/{cast}/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/owners/microsoft.graph.user/$count", headers=EVENTUAL), 200


@case("DELETE /groups/{gid}/owners/{oid}/$ref")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.delete(f"/{v}/groups/{w.group['id']}/owners/{w.owners[1]['id']}/$ref"), 204


# -- group memberOf, directoryObjects, admin -----------------------------------------------------
@case("GET /groups/{gid}/memberOf")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/memberOf"), 200


@case("GET /groups/{gid}/memberOf/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/memberOf/$count", headers=EVENTUAL), 200


@case("GET /groups/{gid}/memberOf/{cast}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/memberOf/microsoft.graph.group"), 200


@case("GET /groups/{gid}/memberOf/{cast}/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/memberOf/microsoft.graph.group/$count", headers=EVENTUAL), 200


# -- transitive relationships of groups ---------------------------------------------------------
@case("GET /groups/{gid}/transitiveMembers")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.parent['id']}/transitiveMembers"), 200


@case("GET /groups/{gid}/transitiveMembers/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.parent['id']}/transitiveMembers/$count", headers=EVENTUAL), 200


@case("GET /groups/{gid}/transitiveMembers/{cast}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.parent['id']}/transitiveMembers/microsoft.graph.user"), 200


@case("GET /groups/{gid}/transitiveMembers/{cast}/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.parent['id']}/transitiveMembers/microsoft.graph.user/$count", headers=EVENTUAL), 200


@case("GET /groups/{gid}/transitiveMemberOf")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/transitiveMemberOf"), 200


@case("GET /groups/{gid}/transitiveMemberOf/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/transitiveMemberOf/$count", headers=EVENTUAL), 200


@case("GET /groups/{gid}/transitiveMemberOf/{cast}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/transitiveMemberOf/microsoft.graph.group"), 200


@case("GET /groups/{gid}/transitiveMemberOf/{cast}/$count")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/groups/{w.group['id']}/transitiveMemberOf/microsoft.graph.group/$count", headers=EVENTUAL), 200


@case("GET /directoryObjects/{id}")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.get(f"/{v}/directoryObjects/{w.group['id']}"), 200


# -- the membership functions and getByIds ---------------------------------------------------------
@case("POST /directoryObjects/getByIds")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    return await api.post(f"/{v}/directoryObjects/getByIds", json={"ids": [w.user["id"], w.group["id"]]}), 200


def _function_case(anchor: str, fn: str) -> Case:
    """``POST …/{fn}`` on ``anchor``: the user is in the group, the group in the parent (both answers non-empty)."""

    async def run(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
        obj = w.group if anchor == "groups/{gid}" else w.user
        path = anchor.replace("{uid}", obj["id"]).replace("{gid}", obj["id"]).replace("{id}", obj["id"])
        ids = [w.group["id"], w.parent["id"]]
        body = {"checkMemberGroups": {"groupIds": ids}, "checkMemberObjects": {"ids": ids}}.get(fn, {"securityEnabledOnly": True})
        return await api.post(f"/{v}/{path}/{fn}", json=body, token=me_token(api, w) if anchor == "me" else None), 200

    return run


for _fn in ("checkMemberGroups", "checkMemberObjects", "getMemberGroups", "getMemberObjects"):
    for _anchor in ("users/{uid}", "me", "groups/{gid}", "directoryObjects/{id}"):
        case(f"POST /{_anchor}/{_fn}")(_function_case(_anchor, _fn))


@case("POST /graphdir/admin/seed")
async def _(api: Api, v: str, w: World) -> tuple[httpx.Response, int]:
    body = {"type": "group", "displayName": "DL", "mailEnabled": True, "securityEnabled": False, "members": [w.user["id"]]}
    return await api.post("/graphdir/admin/seed", json=body, token=api.admin_token), 201


def test_route_table_is_covered() -> None:
    assert sorted(CASES) == sorted(r.name for r in ROUTES + ADMIN_ROUTES)


#: What the ``$count`` routes answer for :func:`make_world`.
EXPECTED_COUNTS = {
    "GET /users/$count": "3",
    "GET /groups/$count": "2",
    "GET /groups/{gid}/members/$count": "1",
    "GET /groups/{gid}/members/{cast}/$count": "1",
    "GET /groups/{gid}/owners/$count": "2",
    "GET /groups/{gid}/owners/{cast}/$count": "2",
    "GET /groups/{gid}/memberOf/$count": "1",
    "GET /groups/{gid}/memberOf/{cast}/$count": "1",
    "GET /users/{uid}/memberOf/$count": "2",
    "GET /users/{uid}/memberOf/{cast}/$count": "2",
    "GET /me/memberOf/$count": "2",
    "GET /me/memberOf/{cast}/$count": "2",
    # the parent holds the group and the user directly, and the user again through the group: 2
    "GET /groups/{gid}/transitiveMembers/$count": "2",
    "GET /groups/{gid}/transitiveMembers/{cast}/$count": "1",
    "GET /groups/{gid}/transitiveMemberOf/$count": "1",
    "GET /groups/{gid}/transitiveMemberOf/{cast}/$count": "1",
    "GET /users/{uid}/transitiveMemberOf/$count": "2",
    "GET /users/{uid}/transitiveMemberOf/{cast}/$count": "2",
    "GET /me/transitiveMemberOf/$count": "2",
    "GET /me/transitiveMemberOf/{cast}/$count": "2",
}


@pytest.mark.parametrize("version", ["v1.0", "beta"])
@pytest.mark.parametrize("name", sorted(CASES))
async def test_route(api: Api, version: str, name: str) -> None:
    world = await make_world(api, version)
    resp, status = await CASES[name](api, version, world)
    if status == 204:
        assert_no_content(resp)
    elif name == "GET /$metadata":
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "application/xml"
        assert resp.content.startswith(b"<?xml")
    elif name in EXPECTED_COUNTS:
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/plain")
        assert resp.text == EXPECTED_COUNTS[name]
    else:
        body = assert_odata_json(resp, status)
        served = "v1.0" if name.startswith("POST /graphdir") else version
        assert body["@odata.context"].startswith(f"http://testserver/{served}/$metadata#")
        if "value" in body:
            assert body["value"], f"{name} listed nothing"


def test_every_count_route_has_an_expected_value() -> None:
    assert sorted(EXPECTED_COUNTS) == sorted(n for n in CASES if n.endswith("$count"))
