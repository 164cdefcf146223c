"""Remove member, in full: who may remove a member from which kind of group (issue 3).

``DELETE /groups/{id}/members/{id}/$ref`` (group-delete-members.md), the SDK's
``DELETE /groups/{id}/members/$ref?@id=…`` and the 2015 seed page's
``DELETE /groups/{id}/members/$ref/{id}``, on ``/v1.0`` and ``/beta``, for a security
group, a Microsoft 365 group and a role-assignable group, by every kind of caller:

* application permissions: ``GroupMember.ReadWrite.All`` (least), ``Group.ReadWrite.All``,
  ``Directory.ReadWrite.All``; role-assignable groups also need
  ``RoleManagement.ReadWrite.Directory``; read-only or unrelated permissions are refused;
* delegated: the scope **and** ``microsoft.directory/groups/members/update`` — group owners,
  Directory Writers, Groups Administrator, Identity Governance Administrator, User
  Administrator; Exchange/SharePoint/Teams/Yammer Administrator on Microsoft 365 groups
  only; Intune Administrator on security groups only; role-assignable groups need
  Privileged Role Administrator (least) with ``RoleManagement.ReadWrite.Directory`` and
  owners do not qualify (group-delete-members.md, docs/identity.md#authorization);
* personal Microsoft accounts: "Not supported" → 403.

Each case gets a fresh group; a 204 must really remove the member and a refusal must
leave it in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from graphdir.directory import rights
from identity_helpers import (
    CONSUMER_TENANT,
    GLOBAL_ADMIN,
    GRAPH,
    GROUPS_ADMIN,
    MSG_FORBIDDEN,
    MSG_NOT_FOUND,
    PRIVILEGED_ROLE_ADMIN,
    World,
    app_token,
    assert_graph_error,
    open_world,
    user_token,
)

GM_RW, G_RW, D_RW, RM = "GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All", "RoleManagement.ReadWrite.Directory"
KINDS = ("security", "unified", "roleAssignable")


@dataclass(frozen=True)
class Caller:
    name: str
    kind: str  # "app" | "user" | "owner" | "personal"
    perms: tuple[str, ...]
    roles: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()  # group kinds on which the removal succeeds


CALLERS = [
    Caller("app GroupMember.ReadWrite.All", "app", (GM_RW,), allowed=("security", "unified")),
    Caller("app Group.ReadWrite.All", "app", (G_RW,), allowed=("security", "unified")),
    Caller("app Directory.ReadWrite.All", "app", (D_RW,), allowed=("security", "unified")),
    Caller("app GroupMember.ReadWrite.All + RoleManagement", "app", (GM_RW, RM), allowed=KINDS),
    Caller("app RoleManagement only", "app", (RM,)),
    Caller("app GroupMember.Read.All", "app", ("GroupMember.Read.All",)),
    Caller("app Group.Read.All + Directory.Read.All", "app", ("Group.Read.All", "Directory.Read.All")),
    Caller("app User.ReadWrite.All", "app", ("User.ReadWrite.All",)),
    Caller("owner", "owner", (GM_RW,), allowed=("security", "unified")),
    Caller("owner + RoleManagement scope", "owner", (GM_RW, RM), allowed=("security", "unified")),
    Caller("owner with Group.ReadWrite.All", "owner", (G_RW,), allowed=("security", "unified")),
    Caller("owner with Directory.AccessAsUser.All", "owner", ("Directory.AccessAsUser.All",), allowed=("security", "unified")),
    Caller("owner with GroupMember.Read.All", "owner", ("GroupMember.Read.All",)),
    Caller("member without role", "user", (GM_RW,)),
    Caller("member without role, Directory.ReadWrite.All", "user", (D_RW,)),
    Caller("Groups Administrator", "user", (GM_RW,), (GROUPS_ADMIN,), ("security", "unified")),
    Caller("Directory Writers", "user", (GM_RW,), (rights.DIRECTORY_WRITERS,), ("security", "unified")),
    Caller("User Administrator", "user", (GM_RW,), (rights.USER_ADMIN,), ("security", "unified")),
    Caller("Identity Governance Administrator", "user", (GM_RW,), (rights.IDENTITY_GOVERNANCE_ADMIN,), ("security", "unified")),
    Caller("Exchange Administrator", "user", (GM_RW,), (rights.EXCHANGE_ADMIN,), ("unified",)),
    Caller("SharePoint Administrator", "user", (GM_RW,), (rights.SHAREPOINT_ADMIN,), ("unified",)),
    Caller("Teams Administrator", "user", (GM_RW,), (rights.TEAMS_ADMIN,), ("unified",)),
    Caller("Yammer Administrator", "user", (GM_RW,), (rights.YAMMER_ADMIN,), ("unified",)),
    Caller("Intune Administrator", "user", (GM_RW,), (rights.INTUNE_ADMIN,), ("security",)),
    Caller("Directory Readers", "user", (GM_RW,), (rights.DIRECTORY_READERS,)),
    Caller("Global Reader", "user", (GM_RW,), (rights.GLOBAL_READER,)),
    Caller("Privileged Role Administrator without RoleManagement", "user", (GM_RW,), (PRIVILEGED_ROLE_ADMIN,)),
    Caller("Privileged Role Administrator + RoleManagement", "user", (GM_RW, RM), (PRIVILEGED_ROLE_ADMIN,), ("roleAssignable",)),
    Caller("Groups Administrator + RoleManagement", "user", (GM_RW, RM), (GROUPS_ADMIN,), ("security", "unified")),
    Caller("Global Administrator", "user", (GM_RW,), (GLOBAL_ADMIN,), ("security", "unified")),
    Caller("Global Administrator + RoleManagement", "user", (GM_RW, RM), (GLOBAL_ADMIN,), KINDS),
    Caller("Groups Administrator with GroupMember.Read.All", "user", ("GroupMember.Read.All",), (GROUPS_ADMIN,)),
    Caller("personal Microsoft account", "personal", (GM_RW, G_RW, D_RW)),
]
FORMS = {
    "{m}/$ref": lambda v, g, m: (f"/{v}/groups/{g}/members/{m}/$ref", None),
    "$ref?@id": lambda v, g, m: (f"/{v}/groups/{g}/members/$ref", {"@id": f"{GRAPH}/{v}/directoryObjects/{m}"}),
    "$ref/{m} (2015 seed)": lambda v, g, m: (f"/{v}/groups/{g}/members/$ref/{m}", None),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("remove") / "g.db") as w:
        yield w


def _group(w: World, kind: str) -> str:
    """A fresh group of ``kind``, owned by ``owner``, with ``target`` as its member."""
    owner, target = w.ids["owner"], w.ids["target"]
    if kind == "roleAssignable":
        token = app_token(w.ring, w.tid_a, ["Group.ReadWrite.All", RM])
        return w.new_group([owner], [target], token, isAssignableToRole=True)
    return w.new_group([owner], [target], kind=kind)


def _token(w: World, c: Caller) -> str:
    if c.kind == "app":
        return app_token(w.ring, w.tid_a, list(c.perms))
    if c.kind == "personal":
        return user_token(w.ring, CONSUMER_TENANT, w.ids["msa"], list(c.perms))
    who = w.ids["owner"] if c.kind == "owner" else w.ids["gadmin"] if c.roles else w.ids["member"]
    return user_token(w.ring, w.tid_a, who, list(c.perms), wids=list(c.roles))


@pytest.mark.parametrize("version", ["v1.0", "beta"])
@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.name)
def test_remove_member(world: World, caller: Caller, kind: str, form: str, version: str) -> None:
    w = world
    gid, target = _group(w, kind), w.ids["target"]
    path, params = FORMS[form](version, gid, target)
    resp = w.call("DELETE", path, _token(w, caller), params=params)
    if kind in caller.allowed:
        assert resp.status_code == 204 and resp.content == b"", (resp.status_code, resp.text)
        assert target not in w.member_ids(gid)
    else:
        assert_graph_error(resp, 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
        assert target in w.member_ids(gid)


@pytest.mark.parametrize("version", ["v1.0", "beta"])
@pytest.mark.parametrize("form", list(FORMS))
def test_remove_member_resource_errors(world: World, form: str, version: str) -> None:
    """With the right to remove: not a member → 404 naming the member; unknown group → 404; bad id → 400."""
    w = world
    gid = _group(w, "security")
    owner = user_token(w.ring, w.tid_a, w.ids["owner"], [GM_RW])
    stranger = w.ids["extra"]
    path, params = FORMS[form](version, gid, stranger)
    assert_graph_error(w.call("DELETE", path, owner, params=params), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(stranger))
    unknown = "00000000-0000-4000-8000-000000000000"
    path, params = FORMS[form](version, unknown, w.ids["target"])
    assert_graph_error(w.call("DELETE", path, w.admin_a, params=params), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(unknown))
    path, params = FORMS[form](version, gid, "not-a-guid")
    assert_graph_error(w.call("DELETE", path, w.admin_a, params=params), 400, "Request_BadRequest", "Invalid object identifier 'not-a-guid'.")
    # removing twice: the second answer is 404, the member stays removed
    path, params = FORMS[form](version, gid, w.ids["target"])
    assert w.call("DELETE", path, owner, params=params).status_code == 204
    assert_graph_error(w.call("DELETE", path, owner, params=params), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(w.ids["target"]))


def test_owner_of_another_group_may_not_remove(world: World) -> None:
    """Ownership is per group: owning one group gives no right on another."""
    w = world
    theirs = w.new_group([w.ids["owner2"]], [w.ids["target"]])
    token = user_token(w.ring, w.tid_a, w.ids["owner"], [GM_RW])
    assert_graph_error(w.call("DELETE", f"/v1.0/groups/{theirs}/members/{w.ids['target']}/$ref", token), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert w.ids["target"] in w.member_ids(theirs)


def test_other_tenants_token_cannot_remove(world: World) -> None:
    """Tenant B's administrator addressing tenant A's group and member: 404, nothing changes."""
    w = world
    gid = _group(w, "security")
    resp = w.call("DELETE", f"/v1.0/groups/{gid}/members/{w.ids['target']}/$ref", w.admin_b)
    assert_graph_error(resp, 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(gid))
    assert w.ids["target"] in w.member_ids(gid)
