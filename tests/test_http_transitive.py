"""The transitive relationships over HTTP (docs/behaviour.md#transitive-membership).

``GET /groups/{id}/transitiveMembers``, ``GET /users/{id}/transitiveMemberOf``,
``GET /me/transitiveMemberOf`` and ``GET /groups/{id}/transitiveMemberOf``, with their casts and
``$count`` segments, on hand-built graphs. A :class:`Model` holds the direct memberships the test
made and computes, independently of graphdir, what each endpoint must answer; after every add,
remove and delete :meth:`World.check` asserts the exact body of every endpoint for every live
group and user (items as ``GET /directoryObjects/{id}`` serialises them, ``@odata.context``,
``@odata.count``, casts, ``/$count`` and every page of a ``$top`` listing through its absolute
``@odata.nextLink``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from http_helpers import (
    BASE_URL,
    DOMAIN,
    EVENTUAL,
    MSG_ALREADY,
    MSG_COUNT,
    MSG_CYCLE,
    MSG_FORBIDDEN,
    MSG_INVALID_ID,
    MSG_METHOD,
    MSG_NOT_FOUND,
    MSG_SEARCH,
    Api,
    assert_error,
    assert_no_content,
    assert_odata_json,
    ctx,
    ref,
)

pytestmark = pytest.mark.anyio

VERSIONS = ["v1.0", "beta"]
MSG_ME = "/me request is only valid with delegated authentication flow."
MSG_FILTER = "The specified filter to the reference property query is currently not supported."
MSG_SORT = "Sorting not supported for current query."
SETS = {"user": "users", "group": "groups", "device": "devices", "servicePrincipal": "servicePrincipals", "orgContact": "contacts"}


def cast_error(type_: str) -> str:
    return f"The group cannot contain members of type '{type_}'; the type cast is not supported."


# -- the model ---------------------------------------------------------------------------------
@dataclass
class Model:
    """What the test made: objects (type, displayName, kind), direct memberships, deletions."""

    types: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    unified: set[str] = field(default_factory=set)
    edges: dict[str, set[str]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def live(self, oid: str) -> bool:
        return oid not in self.deleted

    def transitive_members(self, gid: str) -> list[str]:
        """Members of the group and of its live nested groups, each once, in id order."""
        seen: set[str] = set()
        todo = [gid]
        walked: set[str] = set()
        while todo:
            g = todo.pop()
            if g in walked:
                continue
            walked.add(g)
            for m in self.edges.get(g, set()):
                if not self.live(m):
                    continue
                seen.add(m)
                if self.types[m] == "group":
                    todo.append(m)
        return sorted(seen)

    def transitive_member_of(self, oid: str) -> list[str]:
        """Every live group holding the object directly or through live groups, in id order."""
        out: set[str] = set()
        todo = [oid]
        while todo:
            x = todo.pop()
            for g, ms in self.edges.items():
                if x in ms and self.live(g) and g not in out:
                    out.add(g)
                    todo.append(g)
        return sorted(out)


class World:
    """The app, the model and the checks of every endpoint."""

    def __init__(self, api: Api, version: str) -> None:
        self.api = api
        self.v = version
        self.m = Model()
        self._items: dict[str, dict[str, Any]] = {}

    # -- building ------------------------------------------------------------------------------
    async def user(self, name: str) -> str:
        u = await self.api.seed("user", name, userPrincipalName=f"{self.api.unique('t')}@{DOMAIN}")
        self.m.types[u["id"]], self.m.names[u["id"]] = "user", name
        return str(u["id"])

    async def group(self, name: str, kind: str = "security") -> str:
        g = await self.api.create_group(name, kind=kind)
        self.m.types[g["id"]], self.m.names[g["id"]] = "group", name
        if kind == "unified":
            self.m.unified.add(g["id"])
        return str(g["id"])

    def seeded(self, obj: dict[str, Any], members: list[str] | None = None) -> str:
        """An object made by ``POST /graphdir/admin/seed`` (with the members it was seeded with)."""
        entity_set = obj["@odata.context"].split("#", 1)[1].split("/")[0]
        self.m.types[obj["id"]] = next(t for t, es in SETS.items() if es == entity_set)
        self.m.names[obj["id"]] = obj["displayName"]
        self.m.edges.setdefault(obj["id"], set()).update(members or [])
        return str(obj["id"])

    async def add(self, gid: str, mid: str) -> None:
        assert_no_content(await self.api.add_member(gid, mid, version=self.v))
        self.m.edges.setdefault(gid, set()).add(mid)

    async def remove(self, gid: str, mid: str) -> None:
        assert_no_content(await self.api.delete(f"/{self.v}/groups/{gid}/members/{mid}/$ref"))
        self.m.edges[gid].discard(mid)

    async def delete(self, oid: str, version: str | None = None) -> None:
        path = "users" if self.m.types[oid] == "user" else "groups"
        assert_no_content(await self.api.delete(f"/{version or self.v}/{path}/{oid}"))
        self.m.deleted.add(oid)

    # -- expectations --------------------------------------------------------------------------
    async def item(self, oid: str) -> dict[str, Any]:
        """The item as every directoryObject listing serialises it: ``GET /directoryObjects/{id}``."""
        if oid not in self._items:
            body = assert_odata_json(await self.api.get(f"/{self.v}/directoryObjects/{oid}"))
            assert body.pop("@odata.context") == ctx(self.v, "directoryObjects/$entity")
            self._items[oid] = body
        return self._items[oid]

    async def items(self, ids: list[str]) -> list[dict[str, Any]]:
        return [await self.item(i) for i in ids]

    async def expect_list(self, path: str, ids: list[str], entity_set: str = "directoryObjects", token: str | None = None) -> None:
        """The exact body of ``path`` plain, with ``$count=true``, its ``/$count``, and paged by ``$top=2``."""
        api = self.api
        body = assert_odata_json(await api.get(path, token=token))
        assert body == {"@odata.context": ctx(self.v, entity_set), "value": await self.items(ids)}, path
        counted = assert_odata_json(await api.get(path, params={"$count": "true"}, headers=EVENTUAL, token=token))
        assert counted == {"@odata.context": ctx(self.v, entity_set), "@odata.count": len(ids), "value": await self.items(ids)}
        count = await api.get(f"{path}/$count", headers=EVENTUAL, token=token)
        assert (count.status_code, count.headers["content-type"].split(";")[0], count.text) == (200, "text/plain", str(len(ids)))
        url: str | None = f"{path}?$top=2"
        pages: list[list[str]] = []
        while url is not None:
            page = assert_odata_json(await api.get(url, token=token))
            url = page.pop("@odata.nextLink", None)
            chunk = ids[2 * len(pages) : 2 * len(pages) + 2]
            assert page == {"@odata.context": ctx(self.v, entity_set), "value": await self.items(chunk)}, (path, len(pages))
            pages.append(chunk)
            if url is not None:
                assert url.startswith(f"{BASE_URL}{path}?$top=2&$skiptoken="), url
        assert [i for p in pages for i in p] == ids
        assert len(pages) == max(1, (len(ids) + 1) // 2)

    async def check_group(self, gid: str) -> None:
        v, m = self.v, self.m
        members = m.transitive_members(gid)
        base = f"/{v}/groups/{gid}/transitiveMembers"
        await self.expect_list(base, members)
        await self.expect_list(f"{base}/microsoft.graph.user", [i for i in members if m.types[i] == "user"], "users")
        if gid in m.unified:  # a Microsoft 365 group holds users only: the same 400 as on members
            for path in (f"{base}/microsoft.graph.group", f"/{v}/groups/{gid}/members/microsoft.graph.group"):
                assert_error(await self.api.get(path), 400, "Request_UnsupportedQuery", cast_error("group"))
        else:
            await self.expect_list(f"{base}/microsoft.graph.group", [i for i in members if m.types[i] == "group"], "groups")
        parents = m.transitive_member_of(gid)
        await self.expect_list(f"/{v}/groups/{gid}/transitiveMemberOf", parents)
        await self.expect_list(f"/{v}/groups/{gid}/transitiveMemberOf/microsoft.graph.group", parents, "groups")

    async def check_user(self, uid: str) -> None:
        v, m = self.v, self.m
        parents = m.transitive_member_of(uid)
        me = self.api.token(user_id=uid, scopes=["User.Read"])
        for base, token in ((f"/{v}/users/{uid}", None), (f"/{v}/me", me)):
            await self.expect_list(f"{base}/transitiveMemberOf", parents, token=token)
            await self.expect_list(f"{base}/transitiveMemberOf/microsoft.graph.group", parents, "groups", token=token)

    async def check(self) -> None:
        """Every endpoint of every live object; the deleted ones answer 404 on all of theirs."""
        for oid, type_ in sorted(self.m.types.items()):
            if not self.m.live(oid):
                paths = [f"/{self.v}/users/{oid}/transitiveMemberOf"] if type_ == "user" else [
                    f"/{self.v}/groups/{oid}/transitiveMembers", f"/{self.v}/groups/{oid}/transitiveMemberOf"
                ]  # fmt: skip
                for path in paths:
                    assert_error(await self.api.get(path), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(oid))
            elif type_ == "group":
                await self.check_group(oid)
            elif type_ == "user":
                await self.check_user(oid)


# -- hand-built graphs ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
async def test_chain_of_four_groups(api: Api, version: str) -> None:
    """A ⊃ B ⊃ C ⊃ D with a user in each: every level sees everything below and above it."""
    w = World(api, version)
    groups = [await w.group(f"chain {n}") for n in "ABCD"]
    users = [await w.user(f"user {n}") for n in "ABCD"]
    for g, u in zip(groups, users, strict=True):
        await w.add(g, u)
    await w.check()
    for parent, child in zip(groups, groups[1:], strict=False):
        await w.add(parent, child)
        await w.check()
    a, b, c, d = groups
    assert w.m.transitive_members(a) == sorted([b, c, d, *users])
    assert w.m.transitive_member_of(users[3]) == sorted(groups)
    # C leaves B: C, D and their users leave A's and B's lists; C and D no longer reach A or B
    await w.remove(b, c)
    await w.check()
    assert w.m.transitive_members(a) == sorted([b, users[0], users[1]])
    # a deleted user leaves every list
    await w.delete(users[3])
    await w.check()
    # a deleted group (permanent on v1.0, soft-deleted on beta) is neither listed nor walked through
    await w.add(b, c)
    await w.delete(c)
    await w.check()
    assert w.m.transitive_members(a) == sorted([b, users[0], users[1]])
    assert w.m.transitive_member_of(d) == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_diamond(api: Api, version: str) -> None:
    """T ⊃ L, R; L ⊃ u, R ⊃ u, T ⊃ u: u is listed once and stays until the last path is removed."""
    w = World(api, version)
    top, left, right = await w.group("top"), await w.group("left"), await w.group("right")
    u, other = await w.user("diamond user"), await w.user("other user")
    await w.add(top, left)
    await w.add(top, right)
    await w.add(left, u)
    await w.add(right, u)
    await w.add(right, other)
    await w.add(top, u)
    await w.check()
    assert w.m.transitive_members(top) == sorted([left, right, u, other])
    for gid in (top, right, left):  # one path less each time; u stays while any remains
        await w.remove(gid, u)
        await w.check()
        assert (u in w.m.transitive_members(top)) == (gid != left)
    assert w.m.transitive_member_of(u) == []
    # a group reached along two paths is listed once, as is everything under it
    bottom = await w.group("bottom")
    await w.add(left, bottom)
    await w.add(right, bottom)
    await w.add(bottom, u)
    await w.check()
    assert w.m.transitive_member_of(u) == sorted([bottom, left, right, top])


@pytest.mark.parametrize("version", VERSIONS)
async def test_cycle_is_refused(api: Api, version: str) -> None:
    w = World(api, version)
    a, b, c = await w.group("cycle A"), await w.group("cycle B"), await w.group("cycle C")
    u = await w.user("cycle user")
    await w.add(a, b)
    await w.add(b, c)
    await w.add(c, u)
    for gid, mid in ((c, a), (b, a), (a, a), (c, b)):
        assert_error(await api.add_member(gid, mid, version=version), 400, "Request_BadRequest", MSG_CYCLE)
    await w.check()


@pytest.mark.parametrize("version", VERSIONS)
async def test_microsoft_365_group(api: Api, version: str) -> None:
    """A Microsoft 365 group holds users only, is never nested, and when (soft-)deleted leaves every list."""
    w = World(api, version)
    team = await w.group("team", kind="unified")
    sec = await w.group("security")
    u1, u2 = await w.user("team one"), await w.user("team two")
    await w.add(team, u1)
    await w.add(team, u2)
    await w.add(sec, u2)
    assert_error(
        await api.add_member(sec, team, version=version), 400, "Request_BadRequest", "An object of type 'group' is unsupported as a member of this group."
    )
    await w.check()
    await w.delete(team)  # soft-deleted on both versions
    await w.check()
    assert w.m.transitive_member_of(u2) == [sec]


@pytest.mark.parametrize("version", VERSIONS)
async def test_mail_enabled_security_group(api: Api, version: str) -> None:
    """A mail-enabled security group may be nested in a security group (Graph's transitive members
    example lists mail-enabled groups) and holds members (the default ``mail_enabled_security_membership``);
    a distribution group may not be nested."""
    w = World(api, version)
    mail = w.seeded(await api.seed_group("mailSecurity", "mail security"))
    sec = await w.group("inner security")
    u = await w.user("inner user")
    await w.add(sec, u)
    outer = await w.group("outer security")
    await w.add(outer, mail)
    await w.add(mail, sec)  # the mail-enabled security group holds the security group
    await w.check()
    assert w.m.transitive_member_of(u) == sorted([sec, mail, outer])
    assert w.m.transitive_members(outer) == sorted([mail, sec, u])
    assert_error(await api.add_member(sec, outer, version=version), 400, "Request_BadRequest", MSG_CYCLE)
    dl = w.seeded(await api.seed_group("distribution", "distribution list"))
    assert_error(
        await api.add_member(outer, dl, version=version), 400, "Request_BadRequest", "An object of type 'group' is unsupported as a member of this group."
    )
    await w.remove(mail, sec)
    await w.check()
    assert w.m.transitive_member_of(u) == [sec]


async def test_soft_deleted_nested_group_is_not_walked(api: Api) -> None:
    """beta soft-deletes a security group: it leaves every list and its members stop being reached through it."""
    w = World(api, "beta")
    top, mid, low = await w.group("soft top"), await w.group("soft middle"), await w.group("soft low")
    u, kept = await w.user("soft user"), await w.user("kept user")
    await w.add(top, mid)
    await w.add(mid, low)
    await w.add(low, u)
    await w.add(top, kept)
    await w.check()
    await w.delete(mid, "beta")
    await w.check()
    assert w.m.transitive_members(top) == [kept]
    assert w.m.transitive_member_of(u) == [low]
    assert w.m.transitive_member_of(low) == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_other_member_types(api: Api, version: str) -> None:
    """Devices, service principals and org contacts of nested groups are transitive members, with
    their ``@odata.type``; their casts list them; v1.0 hides service principals only when configured."""
    w = World(api, version)
    top, nested = await w.group("types top"), await w.group("types nested")
    device = w.seeded(await api.seed("device", "types device", deviceId="8b2c1c1e-5b8f-4d77-9a3e-2f1e1c9b7a11", accountEnabled=True))
    sp = w.seeded(await api.seed("servicePrincipal", "types app", appId="0c2f2d5e-97d4-4c0f-8f6b-3b1c0f6e9a21"))
    contact = w.seeded(await api.seed("orgContact", "types contact", mail="c@fabrikam.com"))
    await w.add(top, nested)
    for oid in (device, sp, contact):
        await w.add(nested, oid)
    await w.check()
    members = w.m.transitive_members(top)
    for type_, oid in (("device", device), ("servicePrincipal", sp), ("orgContact", contact)):
        body = assert_odata_json(await api.get(f"/{version}/groups/{top}/transitiveMembers/microsoft.graph.{type_}"))
        assert body == {"@odata.context": ctx(version, SETS[type_]), "value": [await w.item(oid)]}
        assert (await w.item(oid))["@odata.type"] == f"#microsoft.graph.{type_}"
    # the default setting lists service principals on v1.0 too (docs/behaviour.md#queries)
    assert sorted(await api.ids(f"/{version}/groups/{top}/transitiveMembers")) == members
    assert sp in members


async def test_v1_hides_service_principals_when_configured(make_api: Any) -> None:
    api = make_api(hide_service_principals_v1=True)
    top = await api.create_group("hide top")
    nested = await api.create_group("hide nested")
    sp = await api.seed("servicePrincipal", "hidden app", appId="5a1d1b0e-97d4-4c0f-8f6b-3b1c0f6e9a22")
    user = await api.seed("user", "shown user", userPrincipalName=f"{api.unique('h')}@{DOMAIN}")
    assert_no_content(await api.add_member(top["id"], nested["id"]))
    assert_no_content(await api.add_member(nested["id"], sp["id"]))
    assert_no_content(await api.add_member(nested["id"], user["id"]))
    assert sorted(await api.ids(f"/v1.0/groups/{top['id']}/transitiveMembers")) == sorted([nested["id"], user["id"]])
    assert sorted(await api.ids(f"/beta/groups/{top['id']}/transitiveMembers")) == sorted([nested["id"], user["id"], sp["id"]])
    body = assert_odata_json(await api.get(f"/v1.0/groups/{top['id']}/transitiveMembers/microsoft.graph.servicePrincipal"))
    assert body == {"@odata.context": ctx("v1.0", "servicePrincipals"), "value": []}
    count = await api.get(f"/v1.0/groups/{top['id']}/transitiveMembers/$count", headers=EVENTUAL)
    assert count.text == "2"


# -- a wide fan-out, paged ---------------------------------------------------------------------------
FAN_GROUPS = 30
FAN_USERS = 3


async def _fan_out(api: Api) -> tuple[str, dict[str, str], dict[str, str]]:
    """A root holding 30 nested groups of 3 users each; every fifth group also holds the next group's
    first user (reached along two arms). Names interleave groups and users, in mixed case."""
    users = api.bulk_users(FAN_GROUPS * FAN_USERS, prefix="fan")
    names = {u: f"fan{i:05d}" for i, u in enumerate(users)}
    groups: dict[str, str] = {}
    for g in range(FAN_GROUPS):
        arm = users[g * FAN_USERS : (g + 1) * FAN_USERS]
        if g % 5 == 0 and g + 1 < FAN_GROUPS:
            arm = [*arm, users[(g + 1) * FAN_USERS]]
        name = f"FAN{g * FAN_USERS + 1:05d} group" if g % 2 else f"fan{g * FAN_USERS + 1:05d} group"
        created = await api.create_group(name, **{"members@odata.bind": [ref(u) for u in arm]})
        groups[created["id"]] = name
    root = await api.create_group("fan root")
    ids = list(groups)
    for chunk in (ids[:20], ids[20:]):
        assert_no_content(await api.patch(f"/v1.0/groups/{root['id']}", json={"members@odata.bind": [ref(g) for g in chunk]}))
    return str(root["id"]), names, groups


async def _pages(api: Api, url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        body = assert_odata_json(await api.get(next_url, headers=headers))
        out.append(body)
        next_url = body.get("@odata.nextLink")
        if next_url is not None:
            assert next_url.startswith(f"{BASE_URL}{url.split('?')[0]}?"), next_url
            assert "$skiptoken=" in next_url
    return out


@pytest.mark.parametrize("version", VERSIONS)
async def test_wide_fan_out_paged(api: Api, version: str) -> None:
    root, users, groups = await _fan_out(api)
    everything = {**users, **groups}
    base = f"/{version}/groups/{root}/transitiveMembers"
    by_id = sorted(everything)
    pages = await _pages(api, f"{base}?$top=7")
    assert [len(p["value"]) for p in pages] == [7] * (len(by_id) // 7) + ([len(by_id) % 7] if len(by_id) % 7 else [])
    assert [i["id"] for p in pages for i in p["value"]] == by_id  # every member exactly once, in id order
    assert all(p["@odata.context"] == ctx(version, "directoryObjects") and "@odata.count" not in p for p in pages)
    assert pages[0]["@odata.nextLink"].startswith(f"{BASE_URL}{base}?$top=7&$skiptoken=")
    # by displayName (ASCII case folded, then id), with $count on the first page only
    by_name = sorted(everything, key=lambda i: (everything[i].lower(), i))
    for descending in (False, True):
        order = "displayName desc" if descending else "displayName"
        pages = await _pages(api, f"{base}?$top=7&$orderby={order}&$count=true", headers=EVENTUAL)
        expected = by_name[::-1] if descending else by_name
        assert [i["id"] for p in pages for i in p["value"]] == expected
        assert pages[0]["@odata.count"] == len(everything)
        assert all("@odata.count" not in p for p in pages[1:])
        assert f"$orderby={order.replace(' ', '%20')}" in pages[0]["@odata.nextLink"]
    # casts, paged
    users_only = sorted(users)
    pages = await _pages(api, f"{base}/microsoft.graph.user?$top=7&$count=true", headers=EVENTUAL)
    assert [i["id"] for p in pages for i in p["value"]] == users_only
    assert pages[0]["@odata.context"] == ctx(version, "users") and pages[0]["@odata.count"] == len(users_only)
    count = await api.get(f"{base}/microsoft.graph.group/$count", headers=EVENTUAL)
    assert count.text == str(FAN_GROUPS)
    # the shared user of arm 0 and arm 1 stays after one arm lets it go
    shared = sorted(users, key=lambda u: users[u])[FAN_USERS]
    first_arm = next(g for g, n in groups.items() if n == "fan00001 group")
    assert_no_content(await api.delete(f"/{version}/groups/{first_arm}/members/{shared}/$ref"))
    assert sorted(await api.ids(f"{base}?$top=7")) == by_id
    # a user of one arm only leaves with it
    alone = sorted(users, key=lambda u: users[u])[0]
    assert_no_content(await api.delete(f"/{version}/groups/{first_arm}/members/{alone}/$ref"))
    assert sorted(await api.ids(f"{base}?$top=7")) == [i for i in by_id if i != alone]


# -- query options ------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
async def test_query_options(api: Api, version: str) -> None:
    w = World(api, version)
    top, nested = await w.group("Query top"), await w.group("Query nested alpha")
    alice, bob, carol = await w.user("alpha Alice"), await w.user("beta Bob"), await w.user("alpha Carol")
    await w.add(top, nested)
    await w.add(top, bob)
    await w.add(nested, alice)
    await w.add(nested, carol)
    base = f"/{version}/groups/{top}/transitiveMembers"
    # $select
    body = assert_odata_json(await api.get(base, params={"$select": "id,displayName"}))
    members = sorted([nested, alice, bob, carol])
    assert body == {
        "@odata.context": ctx(version, "directoryObjects(id,displayName)"),
        "value": [{"@odata.type": f"#microsoft.graph.{w.m.types[i]}", "id": i, "displayName": w.m.names[i]} for i in members],
    }
    # $filter (advanced)
    params = {"$filter": "startswith(displayName,'alpha')", "$count": "true"}
    body = assert_odata_json(await api.get(f"{base}/microsoft.graph.user", params=params, headers=EVENTUAL))
    assert body == {"@odata.context": ctx(version, "users"), "@odata.count": 2, "value": await w.items(sorted([alice, carol]))}
    # $search (the header alone) and $orderby (advanced)
    params = {"$search": '"displayName:alpha"', "$orderby": "displayName", "$count": "true"}
    body = assert_odata_json(await api.get(base, params=params, headers=EVENTUAL))
    alphas = sorted([alice, carol, nested], key=lambda i: (w.m.names[i].lower(), i))
    assert body == {"@odata.context": ctx(version, "directoryObjects"), "@odata.count": 3, "value": await w.items(alphas)}
    # transitiveMemberOf: $filter, $search, $orderby, $select
    of = f"/{version}/users/{alice}/transitiveMemberOf"
    body = assert_odata_json(await api.get(of, params={"$filter": "displayName eq 'Query top'", "$count": "true"}, headers=EVENTUAL))
    assert body == {"@odata.context": ctx(version, "directoryObjects"), "@odata.count": 1, "value": await w.items([top])}
    body = assert_odata_json(await api.get(of, params={"$orderby": "displayName desc", "$count": "true", "$select": "displayName"}, headers=EVENTUAL))
    assert body == {
        "@odata.context": ctx(version, "directoryObjects(displayName)"),
        "@odata.count": 2,
        "value": [{"@odata.type": "#microsoft.graph.group", "displayName": n} for n in ("Query top", "Query nested alpha")],
    }
    body = assert_odata_json(await api.get(of, params={"$search": '"displayName:nested"'}, headers=EVENTUAL))
    assert body == {"@odata.context": ctx(version, "directoryObjects"), "value": await w.items([nested])}
    # the advanced-query rules, as on the direct relationships
    for path in (base, of, f"/{version}/groups/{nested}/transitiveMemberOf"):
        direct = path.replace("transitiveMembers", "members").replace("transitiveMemberOf", "memberOf")
        for p in (path, direct):
            assert_error(await api.get(p, params={"$filter": "displayName eq 'x'"}), 400, "Request_UnsupportedQuery", MSG_FILTER)
            assert_error(await api.get(p, params={"$orderby": "displayName"}), 400, "Request_UnsupportedQuery", MSG_SORT)
            assert_error(await api.get(p, params={"$search": '"displayName:x"'}), 400, "Request_UnsupportedQuery", MSG_SEARCH)
            assert_error(await api.get(f"{p}/$count"), 400, "Request_BadRequest", MSG_COUNT)
            # $count=true without the header is ignored (no @odata.count)
            assert "@odata.count" not in assert_odata_json(await api.get(p, params={"$count": "true"}))
    # a forged skip token
    assert_error(
        await api.get(base, params={"$skiptoken": "nope"}), 400, "Request_BadRequest", "Invalid skip token: the $skiptoken value is not valid for this request."
    )


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
async def test_errors(api: Api, version: str) -> None:
    v = version
    group = await api.create_group("errors group")
    user = await api.seed("user", "errors user", userPrincipalName=f"{api.unique('e')}@{DOMAIN}")
    assert_no_content(await api.add_member(group["id"], user["id"]))
    missing = "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"
    for rel in ("transitiveMembers", "transitiveMemberOf", "transitiveMembers/$count", "transitiveMembers/microsoft.graph.user"):
        headers = EVENTUAL if rel.endswith("$count") else None
        assert_error(await api.get(f"/{v}/groups/{missing}/{rel}", headers=headers), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
        assert_error(await api.get(f"/{v}/groups/not-a-guid/{rel}", headers=headers), 400, "Request_BadRequest", MSG_INVALID_ID.format("not-a-guid"))
    for key in (missing, f"nobody@{DOMAIN}"):
        assert_error(await api.get(f"/{v}/users/{key}/transitiveMemberOf"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(key))
    assert_error(await api.get(f"/{v}/users/not-a-guid/transitiveMemberOf"), 400, "Request_BadRequest", MSG_INVALID_ID.format("not-a-guid"))
    # a user id is not a group, and a group id not a user
    assert_error(await api.get(f"/{v}/groups/{user['id']}/transitiveMembers"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(user["id"]))
    assert_error(await api.get(f"/{v}/users/{group['id']}/transitiveMemberOf"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(group["id"]))
    # userPrincipalName works as the key, as on memberOf
    body = assert_odata_json(await api.get(f"/{v}/users/{user['userPrincipalName']}/transitiveMemberOf"))
    assert [g["id"] for g in body["value"]] == [group["id"]]
    # permissions (the doc pages' tables)
    g, u = group["id"], user["id"]
    forbidden = [
        (f"/{v}/groups/{g}/transitiveMembers", api.token(["User.Read.All"])),
        (f"/{v}/groups/{g}/transitiveMemberOf", api.token(["GroupMember.Read.All"])),  # application: Directory.Read.All least
        (f"/{v}/users/{u}/transitiveMemberOf", api.token(["Mail.Read"])),
        (f"/{v}/users/{u}/transitiveMemberOf", api.token(user_id=u, scopes=["User.Read"])),  # another user's: User.Read.All least
        (f"/{v}/me/transitiveMemberOf", api.token(user_id=u, scopes=["Mail.Read"])),
    ]
    for path, token in forbidden:
        assert_error(await api.get(path, token=token), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    allowed = [
        (f"/{v}/groups/{g}/transitiveMembers", api.token(["GroupMember.Read.All"])),
        (f"/{v}/groups/{g}/transitiveMemberOf", api.token(["Directory.Read.All"])),
        (f"/{v}/groups/{g}/transitiveMemberOf", api.token(user_id=u, scopes=["GroupMember.Read.All"])),
        (f"/{v}/users/{u}/transitiveMemberOf", api.token(["User.Read.All"])),
        (f"/{v}/users/{u}/transitiveMemberOf", api.token(user_id=u, scopes=["User.Read.All"])),
        (f"/{v}/me/transitiveMemberOf", api.token(user_id=u, scopes=["User.Read"])),
    ]
    for path, token in allowed:
        assert assert_odata_json(await api.get(path, token=token))["@odata.context"].startswith(f"{BASE_URL}/{v}/$metadata#")
    # /me with an application token: as /me/memberOf answers
    for rel in ("transitiveMemberOf", "transitiveMemberOf/$count", "transitiveMemberOf/microsoft.graph.group", "memberOf"):
        assert_error(await api.get(f"/{v}/me/{rel}", headers=EVENTUAL), 400, "BadRequest", MSG_ME)
    # casts to a type the group cannot hold, as on members
    team = await api.create_group("errors team", kind="unified")
    for type_ in ("group", "device", "servicePrincipal", "orgContact"):
        for rel in ("transitiveMembers", "members"):
            path = f"/{v}/groups/{team['id']}/{rel}/microsoft.graph.{type_}"
            assert_error(await api.get(path), 400, "Request_UnsupportedQuery", cast_error(type_))
            assert_error(await api.get(f"{path}/$count", headers=EVENTUAL), 400, "Request_UnsupportedQuery", cast_error(type_))
    # writes are not served on the transitive relationships (read-only, as memberOf)
    for method in ("POST", "PATCH", "DELETE"):
        for rel in ("transitiveMembers", "transitiveMemberOf", "memberOf"):
            resp = await api.request(method, f"/{v}/groups/{g}/{rel}", json=None if method == "DELETE" else {})
            assert_error(resp, 405, "Request_BadRequest", MSG_METHOD)


def _ascii_fold(name: str) -> str:
    """The stores' displayName order: ASCII letters folded, every other character as is (docs/behaviour.md#transitive-membership)."""
    return "".join(c.lower() if c.isascii() else c for c in name)


@pytest.mark.parametrize("descending", [False, True])
async def test_display_name_order_across_arms(api: Api, descending: bool) -> None:
    """Names that differ in case and beyond ASCII, spread over several nested groups: the merged
    order is the direct listing's order, and paging by one never skips or repeats a member."""
    names = ["émile", "Emile", "emile", "Zoë", "zoe", "Ärger", "apple", "Apple", "apple", "Zed"]
    users = [await api.seed("user", n, userPrincipalName=f"{api.unique('o')}@{DOMAIN}") for n in names]
    ids = [u["id"] for u in users]
    arms = [await api.create_group(f"arm {i}", **{"members@odata.bind": [ref(u) for u in ids[i::3]]}) for i in range(3)]
    flat = await api.create_group("flat", **{"members@odata.bind": [ref(u) for u in ids]})
    root = await api.create_group("root", **{"members@odata.bind": [ref(a["id"]) for a in arms] + [ref(ids[0])]})
    order = "displayName desc" if descending else "displayName"
    expected = sorted(ids, key=lambda i: (_ascii_fold(names[ids.index(i)]), i), reverse=descending)
    direct = await api.ids(f"/beta/groups/{flat['id']}/members?$orderby={order}&$count=true", headers=EVENTUAL)
    assert direct == expected
    for top in (1, 3, 100):
        got = await api.ids(f"/beta/groups/{root['id']}/transitiveMembers/microsoft.graph.user?$top={top}&$orderby={order}&$count=true", headers=EVENTUAL)
        assert got == expected, top


@pytest.mark.parametrize("version", VERSIONS)
async def test_expand(api: Api, version: str) -> None:
    """The transitive relationships are navigation properties graphdir does not expand; their listings
    expand nothing, as the direct ones (docs/behaviour.md#expand)."""
    group = await api.create_group("expand group")
    user = await api.seed("user", "expand user", userPrincipalName=f"{api.unique('x')}@{DOMAIN}")
    not_expanded = "Expand is not allowed for property '{}' according to the entity schema."
    for path, name in (
        (f"/{version}/groups/{group['id']}", "TransitiveMembers"),
        (f"/{version}/groups/{group['id']}", "TransitiveMemberOf"),
        (f"/{version}/users/{user['id']}", "TransitiveMemberOf"),
        (f"/{version}/groups", "TransitiveMembers"),
    ):
        assert_error(await api.get(path, params={"$expand": name[:1].lower() + name[1:]}), 400, "ExpandNotSupported", not_expanded.format(name))
    for rel in ("transitiveMembers", "transitiveMemberOf"):
        direct = await api.get(f"/{version}/groups/{group['id']}/{rel.replace('transitiveM', 'm')}", params={"$expand": "members"})
        resp = await api.get(f"/{version}/groups/{group['id']}/{rel}", params={"$expand": "members"})
        assert_error(resp, 400, "BadRequest", "Could not find a property named 'members' on type 'microsoft.graph.directoryObject'.")
        assert resp.json()["error"]["message"] == direct.json()["error"]["message"]


# -- random sequences against the model -----------------------------------------------------------------
RANDOM_OPS = st.lists(
    st.tuples(st.sampled_from(["add", "add", "remove", "delete"]), st.integers(0, 3), st.integers(0, 6)), min_size=1, max_size=14
)


def reaches(m: Model, top: str, target: str) -> bool:
    """Is ``target`` under ``top`` along any edges, soft-deleted groups included? The cycle check
    counts those (docs/behaviour.md#transitive-membership): restoring one must not make a cycle."""
    todo, seen = [top], set()
    while todo:
        x = todo.pop()
        for y in m.edges.get(x, set()):
            if y == target:
                return True
            if y not in seen:
                seen.add(y)
                todo.append(y)
    return False


async def test_random_sequences_match_the_model(api: Api) -> None:
    """Random adds, removes and deletes over 4 groups and 3 users, each answered as the model says it
    must be (204, or the duplicate/cycle/not-found error), then every transitive endpoint of every
    object checked exactly (:meth:`World.check`). Hypothesis drives it from a worker thread; every
    request runs on the test's event loop (``anyio.from_thread``)."""

    async def one(ops: list[tuple[str, int, int]]) -> None:
        w = World(api, "v1.0")
        nodes = [await w.group(f"random g{i}") for i in range(4)] + [await w.user(f"random u{i}") for i in range(3)]
        for op, gi, mi in ops:
            g, m = nodes[gi], nodes[mi]
            if op == "delete":
                if w.m.live(m):
                    await w.delete(m, "beta")  # beta soft-deletes groups as well as users
                continue
            if not (w.m.live(g) and w.m.live(m)):
                continue
            edge = m in w.m.edges.get(g, set())
            if op == "remove":
                if edge:
                    await w.remove(g, m)
                else:
                    assert_error(await api.delete(f"/v1.0/groups/{g}/members/{m}/$ref"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(m))
            elif edge:
                assert_error(await api.add_member(g, m), 400, "Request_BadRequest", MSG_ALREADY.format("members"))
            elif m == g or (w.m.types[m] == "group" and reaches(w.m, m, g)):
                assert_error(await api.add_member(g, m), 400, "Request_BadRequest", MSG_CYCLE)
            else:
                await w.add(g, m)
        await w.check()

    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
    @given(ops=RANDOM_OPS)
    def drive(ops: list[tuple[str, int, int]]) -> None:
        anyio.from_thread.run(one, ops)

    await anyio.to_thread.run_sync(drive)
