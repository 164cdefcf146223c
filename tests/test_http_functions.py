"""The membership functions and getByIds over HTTP (docs/behaviour.md#membership-functions).

``checkMemberGroups``, ``checkMemberObjects``, ``getMemberGroups`` and ``getMemberObjects`` on
``users/{id}``, ``users/{upn}``, ``me``, ``groups/{id}`` and ``directoryObjects/{id}``, over
hand-built graphs (a chain, a diamond, Microsoft 365 / distribution / mail-enabled security groups,
a soft-deleted Microsoft 365 group), after each add and remove; ``POST /directoryObjects/getByIds``;
limits, bad bodies and permissions with Graph's exact answers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from graphdir.store.base import StoredObject
from http_helpers import (
    DOMAIN,
    MSG_BAD_JSON,
    MSG_FORBIDDEN,
    MSG_INVALID_ID,
    MSG_NOT_FOUND,
    MSG_REQUIRED,
    Api,
    assert_error,
    assert_no_content,
    assert_odata_json,
    ctx,
    off_loop,
)

pytestmark = pytest.mark.anyio

VERSIONS = ["v1.0", "beta"]
FUNCTIONS = ["checkMemberGroups", "checkMemberObjects", "getMemberGroups", "getMemberObjects"]
MSG_ME = "/me request is only valid with delegated authentication flow."
MSG_TOO_MANY = "Number of included identifiers cannot exceed '{}'."
MSG_QUERY_OPTIONS = (
    "The following query options are not supported by this request method or cannot be applied to the requested resource: "
    "$filter,$expand,$orderby,$count,$inlinecount,$select,$skiptoken,$skip,$top"
)
MSG_RESULT_SIZE = "The result exceeds the maximum of 11000 groups for this function. Use the transitiveMemberOf relationship instead."
MSG_NOT_PARAMETER = "The parameter '{}' in the request payload is not a valid parameter for the operation '{}'."
MSG_NODE = "An unexpected '{}' node was found when reading from the JSON reader. A '{}' node was expected."
MSG_CONVERT = "Cannot convert a primitive value to the expected type '{}'. See the inner exception for more details."
MSG_NULL_BOOL = (
    "A null value was found for the property named 'securityEnabledOnly', which has the expected type 'Edm.Boolean[Nullable=False]'. "
    "The expected type 'Edm.Boolean[Nullable=False]' does not allow null values."
)
MSG_TYPES = "Invalid value specified for property 'types' of resource 'DirectoryObject'."
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"  # Global Administrator's role template id
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
#: the delegated scopes the doc pages' scenario table gives for the signed-in user
ME_SCOPES = ["User.Read", "GroupMember.Read.All"]


def strings(version: str) -> str:
    return ctx(version, "Collection(Edm.String)")


# -- calling the functions ---------------------------------------------------------------------------
async def call(api: Api, anchor: str, fn: str, body: Any, version: str = "v1.0", token: str | None = None) -> list[str]:
    """``POST /{version}{anchor}/{fn}`` → its ``value`` (asserting Graph's framing)."""
    resp = await api.post(f"/{version}{anchor}/{fn}", json=body, token=token)
    out = assert_odata_json(resp)
    assert list(out) == ["@odata.context", "value"], out
    assert out["@odata.context"] == strings(version)
    assert all(isinstance(v, str) for v in out["value"])
    value: list[str] = out["value"]
    return value


@dataclass
class Anchor:
    """A path naming an object, and the token to call it with (``me`` needs a delegated one)."""

    path: str
    token: str | None = None


def user_anchors(api: Api, user: dict[str, Any]) -> list[Anchor]:
    me = api.token(user_id=user["id"], scopes=ME_SCOPES)
    return [
        Anchor(f"/users/{user['id']}"),
        Anchor(f"/users/{user['userPrincipalName']}"),
        Anchor("/me", me),
        Anchor(f"/directoryObjects/{user['id']}"),
    ]


def group_anchors(group: dict[str, Any]) -> list[Anchor]:
    return [Anchor(f"/groups/{group['id']}"), Anchor(f"/directoryObjects/{group['id']}")]


async def assert_memberships(api: Api, anchors: list[Anchor], everything: set[str], security: set[str], probe: list[str]) -> None:
    """Every function on every anchor, on both versions: the groups are exactly ``everything``
    (``security`` with ``securityEnabledOnly``), and checking ``probe`` returns the probe's ids among
    them in the probe's order."""
    assert len(probe) <= 20
    checked = [i for i in probe if i in everything]
    for version in VERSIONS:
        for a in anchors:
            for fn in ("getMemberGroups", "getMemberObjects"):
                assert await call(api, a.path, fn, {"securityEnabledOnly": False}, version, a.token) == sorted(everything), (a.path, fn)
                assert await call(api, a.path, fn, {"securityEnabledOnly": True}, version, a.token) == sorted(security), (a.path, fn)
            assert await call(api, a.path, "checkMemberGroups", {"groupIds": probe}, version, a.token) == checked, a.path
            assert await call(api, a.path, "checkMemberObjects", {"ids": probe}, version, a.token) == checked, a.path


# -- the graph ---------------------------------------------------------------------------------------
@dataclass
class World:
    user: dict[str, Any]
    other: dict[str, Any]
    g: dict[str, dict[str, Any]]

    def ids(self, *names: str) -> set[str]:
        return {self.g[n]["id"] for n in names}

    def probe(self) -> list[str]:
        """Every group, the users, an unknown id (none are groups of theirs) — 20 ids at most."""
        return [g["id"] for g in self.g.values()] + [self.user["id"], self.other["id"], str(uuid.uuid4())]


async def build(api: Api) -> World:
    """``chainA ⊃ chainB ⊃ chainC ∋ user``; ``top ⊃ left, right``, ``left ∋ user``, ``right ∋ user`` (a diamond);
    the user in a Microsoft 365 group, a distribution group, a mail-enabled security group and a
    Microsoft 365 group that is then deleted (soft); ``lonely`` holds only ``other``."""
    user = await api.create_user("Ursula")
    other = await api.create_user("Otto")
    g: dict[str, dict[str, Any]] = {}
    for name in ("chainA", "chainB", "chainC", "top", "left", "right", "lonely"):
        g[name] = await api.create_group(name)
    g["m365"] = await api.create_group("m365", kind="unified")
    g["gone365"] = await api.create_group("gone365", kind="unified")
    g["dist"] = await api.seed_group("distribution", "dist", members=[user["id"]])
    g["mailsec"] = await api.seed_group("mailSecurity", "mailsec", members=[user["id"]])
    for parent, child in [
        ("chainA", "chainB"), ("chainB", "chainC"), ("top", "left"), ("top", "right"),
    ]:  # fmt: skip
        assert_no_content(await api.add_member(g[parent]["id"], g[child]["id"]))
    for group in ("chainC", "left", "right", "m365", "gone365"):
        assert_no_content(await api.add_member(g[group]["id"], user["id"]))
    assert_no_content(await api.add_member(g["lonely"]["id"], other["id"]))
    assert_no_content(await api.delete(f"/v1.0/groups/{g['gone365']['id']}"))  # Microsoft 365: soft-deleted
    return World(user, other, g)


SECURITY = ("chainA", "chainB", "chainC", "top", "left", "right", "mailsec")
ALL = SECURITY + ("m365", "dist")


async def test_exact_results_on_every_anchor(api: Api) -> None:
    w = await build(api)
    await assert_memberships(api, user_anchors(api, w.user), w.ids(*ALL), w.ids(*SECURITY), w.probe())
    # a nested group's own memberships: its ancestors only, never itself
    await assert_memberships(api, group_anchors(w.g["chainC"]), w.ids("chainA", "chainB"), w.ids("chainA", "chainB"), w.probe())
    await assert_memberships(api, group_anchors(w.g["left"]), w.ids("top"), w.ids("top"), w.probe())
    await assert_memberships(api, group_anchors(w.g["chainA"]), set(), set(), w.probe())
    await assert_memberships(api, user_anchors(api, w.other), w.ids("lonely"), w.ids("lonely"), w.probe())


async def test_results_follow_every_add_and_remove(api: Api) -> None:
    w = await build(api)
    anchors, probe = user_anchors(api, w.user), w.probe()
    g = w.g

    async def expect(*groups: str) -> None:
        security = tuple(n for n in groups if n not in ("m365", "dist"))
        await assert_memberships(api, anchors, w.ids(*groups), w.ids(*security), probe)

    # a diamond: leaving one side keeps the top, leaving both loses it
    assert_no_content(await api.delete(f"/v1.0/groups/{g['left']['id']}/members/{w.user['id']}/$ref"))
    await expect("chainA", "chainB", "chainC", "top", "right", "mailsec", "m365", "dist")
    assert_no_content(await api.delete(f"/v1.0/groups/{g['right']['id']}/members/{w.user['id']}/$ref"))
    await expect("chainA", "chainB", "chainC", "mailsec", "m365", "dist")
    # removing a nested group takes its ancestors away from its members
    assert_no_content(await api.delete(f"/v1.0/groups/{g['chainA']['id']}/members/{g['chainB']['id']}/$ref"))
    await expect("chainB", "chainC", "mailsec", "m365", "dist")
    # adding it back (and the user to a new parent of the chain) brings them back
    assert_no_content(await api.add_member(g["chainA"]["id"], g["chainB"]["id"]))
    assert_no_content(await api.add_member(g["lonely"]["id"], g["chainA"]["id"]))
    await expect("lonely", "chainA", "chainB", "chainC", "mailsec", "m365", "dist")
    # deleting a group in the middle of the chain (security, v1.0: permanent) cuts the chain above it
    assert_no_content(await api.delete(f"/v1.0/groups/{g['chainB']['id']}"))
    await expect("chainC", "mailsec", "m365", "dist")
    # deleting the Microsoft 365 group (soft) removes it at once
    assert_no_content(await api.delete(f"/v1.0/groups/{g['m365']['id']}"))
    await expect("chainC", "mailsec", "dist")


async def test_soft_deleted_security_group_on_beta_is_left_out(api: Api) -> None:
    """On /beta a security group is soft-deleted (docs/behaviour.md#groups-and-users): its members
    are no longer reached through it, and its id is never returned."""
    w = await build(api)
    assert_no_content(await api.delete(f"/beta/groups/{w.g['chainB']['id']}"))
    await assert_memberships(
        api, user_anchors(api, w.user), w.ids("chainC", "top", "left", "right", "mailsec", "m365", "dist"),
        w.ids("chainC", "top", "left", "right", "mailsec"), w.probe(),
    )  # fmt: skip


async def test_check_member_objects_answers_directory_roles(api: Api) -> None:
    """checkMemberObjects takes directory role template ids as well (the page's example checks Global Administrator's)."""
    admin = await api.seed("user", "Ada", userPrincipalName=f"ada@{DOMAIN}", roles=["Global Administrator"])
    group = await api.create_group()
    assert_no_content(await api.add_member(group["id"], admin["id"]))
    probe = [group["id"], GLOBAL_ADMIN.upper(), USER_ADMIN]
    for version in VERSIONS:
        assert await call(api, f"/users/{admin['id']}", "checkMemberObjects", {"ids": probe}, version) == [group["id"], GLOBAL_ADMIN]
        assert await call(api, f"/users/{admin['id']}", "checkMemberGroups", {"groupIds": probe}, version) == [group["id"]]
        assert await call(api, f"/users/{admin['id']}", "getMemberObjects", {"securityEnabledOnly": False}, version) == [group["id"]]


async def test_seeded_object_types_through_directory_objects(api: Api) -> None:
    """Devices, service principals and contacts have no routes of their own: directoryObjects/{id} answers for them."""
    device = await api.seed("device", "Dev", deviceId=str(uuid.uuid4()), accountEnabled=True, operatingSystem="Windows")
    sp = await api.seed("servicePrincipal", "App", appId=str(uuid.uuid4()), servicePrincipalType="Application")
    contact = await api.seed("orgContact", "Carl", mail="carl@fabrikam.com")
    inner, outer = await api.create_group(), await api.create_group()
    assert_no_content(await api.add_member(outer["id"], inner["id"]))
    for obj in (device, sp, contact):
        assert_no_content(await api.add_member(inner["id"], obj["id"]))
        path = f"/directoryObjects/{obj['id']}"
        assert await call(api, path, "getMemberGroups", {"securityEnabledOnly": True}) == sorted([inner["id"], outer["id"]])
        assert await call(api, path, "checkMemberGroups", {"groupIds": [outer["id"]]}) == [outer["id"]]
        resp = await api.post(f"/v1.0/users/{obj['id']}/checkMemberGroups", json={"groupIds": []})
        assert_error(resp, 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(obj["id"]))


# -- the request: limits and bodies ------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
async def test_check_limits_20_ids(api: Api, version: str) -> None:
    user = await api.create_user()
    groups = [await api.create_group() for _ in range(2)]
    for g in groups:
        assert_no_content(await api.add_member(g["id"], user["id"]))
    twenty = [g["id"] for g in groups] + [str(uuid.uuid4()) for _ in range(18)]
    for fn, key in (("checkMemberGroups", "groupIds"), ("checkMemberObjects", "ids")):
        assert await call(api, f"/users/{user['id']}", fn, {key: twenty}, version) == [g["id"] for g in groups]
        resp = await api.post(f"/{version}/users/{user['id']}/{fn}", json={key: [*twenty, str(uuid.uuid4())]})
        assert_error(resp, 400, "Request_BadRequest", MSG_TOO_MANY.format(20))
        # the limit counts ids as sent, duplicates included; the answer names each once
        assert await call(api, f"/users/{user['id']}", fn, {key: [groups[0]["id"]] * 20}, version) == [groups[0]["id"]]
        resp = await api.post(f"/{version}/users/{user['id']}/{fn}", json={key: [groups[0]["id"]] * 21})
        assert_error(resp, 400, "Request_BadRequest", MSG_TOO_MANY.format(20))
        assert await call(api, f"/users/{user['id']}", fn, {key: []}, version) == []


async def test_ids_are_answered_canonical_in_the_order_asked(api: Api) -> None:
    user = await api.create_user()
    a, b = await api.create_group(), await api.create_group()
    for g in (a, b):
        assert_no_content(await api.add_member(g["id"], user["id"]))
    asked = [b["id"].upper(), str(uuid.uuid4()), a["id"]]
    assert await call(api, f"/users/{user['id']}", "checkMemberGroups", {"groupIds": asked}) == [b["id"], a["id"]]


@pytest.mark.parametrize("fn", FUNCTIONS)
async def test_bad_bodies(api: Api, fn: str) -> None:
    user = await api.create_user()
    path = f"/v1.0/users/{user['id']}/{fn}"
    key, good = {"checkMemberGroups": ("groupIds", []), "checkMemberObjects": ("ids", []),
                 "getMemberGroups": ("securityEnabledOnly", True), "getMemberObjects": ("securityEnabledOnly", True)}[fn]  # fmt: skip
    # not JSON, not an object, empty
    for raw in (b"{not json", b"[]", b"", b'"x"'):
        resp = await api.request("POST", path, content=raw, headers={"Content-Type": "application/json"})
        assert_error(resp, 400, "BadRequest", MSG_BAD_JSON)
    # missing parameter
    assert_error(await api.post(path, json={}), 400, "Request_BadRequest", MSG_REQUIRED.format(key))
    # a member that is not a parameter of the action
    assert_error(await api.post(path, json={key: good, "extra": 1}), 400, "BadRequest", MSG_NOT_PARAMETER.format("extra", fn))
    # names without regard to case; annotations ignored
    assert (await api.post(path, json={key.upper(): good, "@odata.type": "#microsoft.graph.x"})).status_code == 200
    if key == "securityEnabledOnly":
        assert_error(await api.post(path, json={key: "true"}), 400, "BadRequest", MSG_CONVERT.format("Edm.Boolean"))
        assert_error(await api.post(path, json={key: 1}), 400, "BadRequest", MSG_CONVERT.format("Edm.Boolean"))
        assert_error(await api.post(path, json={key: [True]}), 400, "BadRequest", MSG_NODE.format("StartArray", "PrimitiveValue"))
        assert_error(await api.post(path, json={key: {}}), 400, "BadRequest", MSG_NODE.format("StartObject", "PrimitiveValue"))
        assert_error(await api.post(path, json={key: None}), 400, "BadRequest", MSG_NULL_BOOL)
    else:
        assert_error(await api.post(path, json={key: None}), 400, "Request_BadRequest", MSG_REQUIRED.format(key))
        assert_error(await api.post(path, json={key: str(uuid.uuid4())}), 400, "BadRequest", MSG_NODE.format("PrimitiveValue", "StartArray"))
        assert_error(await api.post(path, json={key: {"a": 1}}), 400, "BadRequest", MSG_NODE.format("StartObject", "StartArray"))
        assert_error(await api.post(path, json={key: [1]}), 400, "BadRequest", MSG_CONVERT.format("Edm.String"))
        assert_error(await api.post(path, json={key: [None]}), 400, "BadRequest", MSG_CONVERT.format("Edm.String"))
        assert_error(await api.post(path, json={key: [[str(uuid.uuid4())]]}), 400, "BadRequest", MSG_NODE.format("StartArray", "PrimitiveValue"))
        assert_error(await api.post(path, json={key: [str(uuid.uuid4()), "not-a-guid"]}), 400, "Request_BadRequest", MSG_INVALID_ID.format("not-a-guid"))
        assert_error(await api.post(path, json={key: [str(uuid.uuid4())[:-1]]}), 400, "Request_BadRequest")


@pytest.mark.parametrize("fn", FUNCTIONS)
async def test_unknown_or_wrong_anchor_is_404(api: Api, fn: str) -> None:
    user, group = await api.create_user(), await api.create_group()
    body = {"securityEnabledOnly": True} if fn.startswith("get") else {("groupIds" if fn == "checkMemberGroups" else "ids"): []}
    unknown = str(uuid.uuid4())
    cases = [
        (f"/users/{unknown}", unknown), (f"/groups/{unknown}", unknown), (f"/directoryObjects/{unknown}", unknown),
        (f"/users/{group['id']}", group["id"]), (f"/groups/{user['id']}", user["id"]),
        (f"/users/nobody@{DOMAIN}", f"nobody@{DOMAIN}"),
    ]  # fmt: skip
    for path, key in cases:
        assert_error(await api.post(f"/v1.0{path}/{fn}", json=body), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(key))
    for path in ("/users/not-a-guid", "/groups/not-a-guid", "/directoryObjects/not-a-guid"):
        assert_error(await api.post(f"/v1.0{path}/{fn}", json=body), 400, "Request_BadRequest", MSG_INVALID_ID.format("not-a-guid"))
    # a deleted user
    assert_no_content(await api.delete(f"/v1.0/users/{user['id']}"))
    for path in (f"/users/{user['id']}", f"/directoryObjects/{user['id']}"):
        assert_error(await api.post(f"/v1.0{path}/{fn}", json=body), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(user["id"]))


async def test_get_member_groups_result_limit(api: Api) -> None:
    """Up to 11,000 group ids are returned; one more → 400 Directory_ResultSizeLimitExceeded (directoryobject-getmembergroups)."""
    user = await api.create_user()
    created = "2024-01-01T00:00:00Z"

    def groups(n: int) -> list[StoredObject]:
        out = []
        for _ in range(n):
            gid = str(uuid.uuid4())
            nick = f"g{gid[:8]}"
            props = {"id": gid, "displayName": nick, "mailNickname": nick, "mailEnabled": False, "securityEnabled": True, "groupTypes": [],
                     "createdDateTime": created, "deletedDateTime": None}  # fmt: skip
            out.append(StoredObject(api.tenant_id, gid, "group", props, created))
        return out

    first = groups(11_000)
    off_loop(api.graph.store.bulk_load, api.tenant_id, first, [(g.id, user["id"], "user") for g in first])
    path = f"/users/{user['id']}"
    for only in (True, False):
        assert await call(api, path, "getMemberGroups", {"securityEnabledOnly": only}) == sorted(g.id for g in first)
    one_more = groups(1)
    off_loop(api.graph.store.bulk_load, api.tenant_id, one_more, [(one_more[0].id, user["id"], "user")])
    for fn in ("getMemberGroups", "getMemberObjects"):
        for only in (True, False):
            resp = await api.post(f"/v1.0{path}/{fn}", json={"securityEnabledOnly": only})
            assert_error(resp, 400, "Directory_ResultSizeLimitExceeded", MSG_RESULT_SIZE)
    # checking a few of them is unaffected
    assert await call(api, path, "checkMemberGroups", {"groupIds": [one_more[0].id, first[0].id]}) == [one_more[0].id, first[0].id]


# -- permissions -------------------------------------------------------------------------------------
async def test_permissions(api: Api) -> None:
    user, group = await api.create_user(), await api.create_group()
    assert_no_content(await api.add_member(group["id"], user["id"]))
    check = {"groupIds": [group["id"]]}
    objects = {"ids": [group["id"]]}

    async def status(path: str, body: Any, roles: list[str] | None = None, **delegated: Any) -> int:
        token = api.token(**delegated) if delegated else api.token(roles)
        resp = await api.post(f"/v1.0{path}", json=body, token=token)
        if resp.status_code == 403:
            assert_error(resp, 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
        return resp.status_code

    u, g, d = f"/users/{user['id']}", f"/groups/{group['id']}", f"/directoryObjects/{user['id']}"
    # users: a user-read permission and a group-read one ("User.Read.All and GroupMember.Read.All", …) or Directory.Read.All
    for fn, body in (("checkMemberGroups", check), ("getMemberGroups", {"securityEnabledOnly": False})):
        assert await status(f"{u}/{fn}", body, ["User.Read.All"]) == 403
        assert await status(f"{u}/{fn}", body, ["GroupMember.Read.All"]) == 403
        assert await status(f"{u}/{fn}", body, ["User.Read.All", "GroupMember.Read.All"]) == 200
        assert await status(f"{u}/{fn}", body, ["User.Read.All", "Group.Read.All"]) == 200
        assert await status(f"{u}/{fn}", body, ["Directory.Read.All"]) == 200
        assert await status(f"{u}/{fn}", body, user_id=user["id"], scopes=["User.ReadBasic.All"]) == 403
        assert await status(f"{u}/{fn}", body, user_id=user["id"], scopes=["User.ReadBasic.All", "GroupMember.Read.All"]) == 200
        # the signed-in user: User.Read and GroupMember.Read.All
        assert await status(f"/me/{fn}", body, user_id=user["id"], scopes=["User.Read"]) == 403
        assert await status(f"/me/{fn}", body, user_id=user["id"], scopes=ME_SCOPES) == 200
    # checkMemberObjects / getMemberObjects on users: a user-read permission alone (their pages' tables)
    for fn, body in (("checkMemberObjects", objects), ("getMemberObjects", {"securityEnabledOnly": False})):
        assert await status(f"{u}/{fn}", body, ["User.Read.All"]) == 200
        assert await status(f"{u}/{fn}", body, ["GroupMember.Read.All"]) == 403
        assert await status(f"/me/{fn}", body, user_id=user["id"], scopes=["User.Read"]) == 200
    # groups: a group-read permission; directoryObjects: Directory.Read.All
    for fn in FUNCTIONS:
        body = {"securityEnabledOnly": False} if fn.startswith("get") else ({"groupIds": []} if fn == "checkMemberGroups" else {"ids": []})
        assert await status(f"{g}/{fn}", body, ["GroupMember.Read.All"]) == 200
        assert await status(f"{g}/{fn}", body, ["User.Read.All"]) == 403
        assert await status(f"{d}/{fn}", body, ["Directory.Read.All"]) == 200
        assert await status(f"{d}/{fn}", body, ["User.Read.All", "GroupMember.Read.All"]) == 403
        # /me with an application token: as every /me route answers
        resp = await api.post(f"/v1.0/me/{fn}", json=body, token=api.token(["Directory.Read.All"]))
        assert_error(resp, 400, "BadRequest", MSG_ME)
    # getByIds: Directory.Read.All
    assert await status("/directoryObjects/getByIds", {"ids": [user["id"]]}, ["User.Read.All", "Group.Read.All"]) == 403
    assert await status("/directoryObjects/getByIds", {"ids": [user["id"]]}, ["Directory.Read.All"]) == 200
    assert await status("/directoryObjects/getByIds", {"ids": [user["id"]]}, user_id=user["id"], scopes=["Directory.Read.All"]) == 200
    assert await status("/directoryObjects/getByIds", {"ids": [user["id"]]}, user_id=user["id"], scopes=["User.Read"]) == 403


# -- getByIds ----------------------------------------------------------------------------------------
async def by_ids(api: Api, body: Any, version: str = "v1.0") -> list[dict[str, Any]]:
    out = assert_odata_json(await api.post(f"/{version}/directoryObjects/getByIds", json=body))
    assert list(out) == ["@odata.context", "value"], out
    assert out["@odata.context"] == ctx(version, "directoryObjects")
    value: list[dict[str, Any]] = out["value"]
    return value


@pytest.mark.parametrize("version", VERSIONS)
async def test_get_by_ids_objects_as_directory_objects_get(api: Api, version: str) -> None:
    user, group = await api.create_user("Ursula"), await api.create_group("Team")
    device = await api.seed("device", "Dev", deviceId=str(uuid.uuid4()), accountEnabled=True, operatingSystem="Windows")
    sp = await api.seed("servicePrincipal", "App", appId=str(uuid.uuid4()), servicePrincipalType="Application")
    contact = await api.seed("orgContact", "Carl", mail="carl@fabrikam.com")
    objs = [group, user, device, sp, contact]
    expected = []
    for o in objs:
        one = assert_odata_json(await api.get(f"/{version}/directoryObjects/{o['id']}"))
        del one["@odata.context"]
        expected.append(one)
    got = await by_ids(api, {"ids": [o["id"] for o in objs]}, version)
    assert got == expected  # the order asked, each as GET /directoryObjects/{id} answers it
    assert [o["@odata.type"] for o in got] == [
        "#microsoft.graph.group", "#microsoft.graph.user", "#microsoft.graph.device", "#microsoft.graph.servicePrincipal", "#microsoft.graph.orgContact",
    ]  # fmt: skip


async def test_get_by_ids_types_unknown_and_deleted(api: Api) -> None:
    u1, u2, gone = await api.create_user("One"), await api.create_user("Two"), await api.create_user("Gone")
    g1 = await api.create_group("G1")
    m365 = await api.create_group("M", kind="unified")
    assert_no_content(await api.delete(f"/v1.0/users/{gone['id']}"))
    assert_no_content(await api.delete(f"/v1.0/groups/{m365['id']}"))
    unknown = str(uuid.uuid4())
    asked = [g1["id"], unknown, u2["id"], gone["id"], u1["id"].upper(), m365["id"], u2["id"]]

    async def listed(types: Any = None) -> list[str]:
        body: dict[str, Any] = {"ids": asked}
        if types is not None:
            body["types"] = types
        return [o["id"] for o in await by_ids(api, body)]

    everything = [g1["id"], u2["id"], u1["id"]]  # unknown and deleted left out, duplicates once, asked order
    assert await listed() == everything
    assert await listed([]) == everything
    assert await listed(None) == everything
    assert await listed(["directoryObject"]) == everything
    assert await listed(["user"]) == [u2["id"], u1["id"]]
    assert await listed(["USER"]) == [u2["id"], u1["id"]]
    assert await listed(["microsoft.graph.Group"]) == [g1["id"]]
    assert await listed(["Group", "user"]) == everything
    assert await listed(["device", "application", "administrativeUnit"]) == []
    assert_error(await api.post("/v1.0/directoryObjects/getByIds", json={"ids": asked, "types": ["widget"]}), 400, "Request_BadRequest", MSG_TYPES)
    assert await listed() == everything


async def test_get_by_ids_limits_and_bodies(api: Api) -> None:
    user = await api.create_user()
    path = "/v1.0/directoryObjects/getByIds"
    thousand = [str(uuid.uuid4()) for _ in range(999)] + [user["id"]]
    assert [o["id"] for o in await by_ids(api, {"ids": thousand})] == [user["id"]]
    assert_error(await api.post(path, json={"ids": [*thousand, str(uuid.uuid4())]}), 400, "Request_BadRequest", MSG_TOO_MANY.format(1000))
    assert await by_ids(api, {"ids": []}) == []
    assert_error(await api.post(path, json={}), 400, "Request_BadRequest", MSG_REQUIRED.format("ids"))
    assert_error(await api.post(path, json={"types": ["user"]}), 400, "Request_BadRequest", MSG_REQUIRED.format("ids"))
    assert_error(await api.post(path, json={"ids": [user["id"], "x"]}), 400, "Request_BadRequest", MSG_INVALID_ID.format("x"))
    assert_error(await api.post(path, json={"ids": user["id"]}), 400, "BadRequest", MSG_NODE.format("PrimitiveValue", "StartArray"))
    assert_error(await api.post(path, json={"ids": [user["id"]], "types": "user"}), 400, "BadRequest", MSG_NODE.format("PrimitiveValue", "StartArray"))
    assert_error(await api.post(path, json={"ids": [user["id"]], "types": [1]}), 400, "BadRequest", MSG_CONVERT.format("Edm.String"))
    assert_error(await api.post(path, json={"ids": [user["id"]], "top": 1}), 400, "BadRequest", MSG_NOT_PARAMETER.format("top", "getByIds"))
    resp = await api.request("POST", path, content=b"ids=1", headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "BadRequest", MSG_BAD_JSON)
    # query options are refused (as Graph answers them)
    for query in ("$top=1", "$select=id", "$filter=id eq 'x'"):
        assert_error(await api.post(f"{path}?{query}", json={"ids": [user["id"]]}), 400, "Request_BadRequest", MSG_QUERY_OPTIONS)
