"""Groups over HTTP: create, get, list, update, delete, memberOf, directoryObjects, seed (docs/behaviour.md#group-kinds, docs/behaviour.md#groups-and-users)."""

from __future__ import annotations

import re
import uuid

import pytest

from http_helpers import (
    DOMAIN,
    GRAPH,
    GUID_RE,
    MSG_FORBIDDEN,
    MSG_INVALID_ID,
    MSG_MAIL_CREATE,
    MSG_MAIL_UPDATE,
    MSG_NOT_FOUND,
    MSG_ONPREM,
    MSG_REQUIRED,
    MSG_TOO_MANY_LINKS,
    Api,
    assert_error,
    assert_no_content,
    assert_odata_json,
    ctx,
    ref,
)

pytestmark = pytest.mark.anyio

#: The default property set of https://learn.microsoft.com/en-us/graph/api/group-get.
GROUP_DEFAULTS = {
    "id", "deletedDateTime", "classification", "createdDateTime", "description", "displayName", "expirationDateTime",
    "groupTypes", "isAssignableToRole", "mail", "mailEnabled", "mailNickname", "membershipRule",
    "membershipRuleProcessingState", "onPremisesDomainName", "onPremisesLastSyncDateTime", "onPremisesNetBiosName",
    "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "preferredDataLocation",
    "preferredLanguage", "proxyAddresses", "renewedDateTime", "resourceBehaviorOptions", "resourceProvisioningOptions",
    "securityEnabled", "securityIdentifier", "theme", "visibility", "onPremisesProvisioningErrors",
}  # fmt: skip
MSG_READ_ONLY = "Property '{}' is read-only and cannot be set."
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"
GROUPS_ADMIN = "fdd7a751-b60b-444a-984c-02652fe8fa1c"


def security_body(nick: str = "golf", **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"displayName": "Golf Assist", "mailNickname": nick, "mailEnabled": False, "securityEnabled": True}
    body.update(extra)
    return body


def unified_body(nick: str = "library", **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "displayName": "Library Assist",
        "description": "Self help community for library",
        "mailNickname": nick,
        "mailEnabled": True,
        "securityEnabled": False,
        "groupTypes": ["Unified"],
    }
    body.update(extra)
    return body


async def group_count(api: Api) -> int:
    return len(await api.ids("/v1.0/groups"))


# -- create ------------------------------------------------------------------------------------
async def test_create_security_group(api: Api) -> None:
    body = assert_odata_json(await api.post("/v1.0/groups", json=security_body(description="d")), 201)
    assert body["@odata.context"] == ctx("v1.0", "groups/$entity")
    assert set(body) - {"@odata.context"} == GROUP_DEFAULTS
    assert GUID_RE.match(body["id"])
    assert body["displayName"] == "Golf Assist" and body["description"] == "d"
    assert body["groupTypes"] == [] and body["mailEnabled"] is False and body["securityEnabled"] is True
    assert body["mail"] is None and body["proxyAddresses"] == []
    assert body["deletedDateTime"] is None
    assert body["visibility"] == "Private"
    assert re.match(r"^S-1-12-1-\d+-\d+-\d+-\d+$", body["securityIdentifier"])
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", body["createdDateTime"])


async def test_create_unified_group(api: Api) -> None:
    body = assert_odata_json(await api.post("/v1.0/groups", json=unified_body()), 201)
    assert body["groupTypes"] == ["Unified"]
    assert body["mail"] == f"library@{DOMAIN}"
    assert body["proxyAddresses"] == [f"SMTP:library@{DOMAIN}"]
    assert body["visibility"] == "Public"


async def test_create_group_group_types_case_insensitive(api: Api) -> None:
    body = assert_odata_json(await api.post("/v1.0/groups", json=unified_body(groupTypes=["unified"])), 201)
    assert body["groupTypes"] == ["Unified"]


async def test_create_group_beta(api: Api) -> None:
    body = assert_odata_json(await api.post("/beta/groups", json=security_body()), 201)
    assert body["@odata.context"] == ctx("beta", "groups/$entity")


@pytest.mark.parametrize("missing", ["displayName", "mailEnabled", "mailNickname", "securityEnabled"])
async def test_create_group_required(api: Api, missing: str) -> None:
    body = security_body()
    del body[missing]
    assert_error(await api.post("/v1.0/groups", json=body), 400, "Request_BadRequest", MSG_REQUIRED.format(missing))
    assert await group_count(api) == 0


@pytest.mark.parametrize(
    "flags",
    [
        {"mailEnabled": True, "securityEnabled": True},  # mail-enabled security
        {"mailEnabled": True, "securityEnabled": False},  # distribution
    ],
)
async def test_create_mail_enabled_security_or_distribution_refused(api: Api, flags: dict[str, bool]) -> None:
    assert_error(await api.post("/v1.0/groups", json=security_body(**flags)), 400, "Request_BadRequest", MSG_MAIL_CREATE)
    assert await group_count(api) == 0


async def test_create_group_bad_nickname(api: Api) -> None:
    assert_error(
        await api.post("/v1.0/groups", json=security_body(nick="has space")),
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'mailNickname' of resource 'Group'.",
    )


async def test_create_group_bad_group_type(api: Api) -> None:
    assert_error(
        await api.post("/v1.0/groups", json=security_body(groupTypes=["Team"])),
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'groupTypes' of resource 'Group'.",
    )


async def test_create_group_wrong_types(api: Api) -> None:
    assert_error(
        await api.post("/v1.0/groups", json=security_body(securityEnabled="true")),
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'securityEnabled' of resource 'Group'.",
    )
    assert_error(
        await api.post("/v1.0/groups", json=security_body(displayName="x" * 257)),
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'displayName' of resource 'Group'.",
    )
    assert await group_count(api) == 0


async def test_create_group_unknown_property_and_bind(api: Api) -> None:
    assert_error(
        await api.post("/v1.0/groups", json=security_body(colour="red")),
        400,
        "BadRequest",
        "The property 'colour' does not exist on type 'microsoft.graph.group'. Make sure to only use property "
        "names that are defined by the type or mark the type as open type.",
    )
    assert_error(
        await api.post("/v1.0/groups", json=security_body(**{"acceptedSenders@odata.bind": []})),
        400,
        "BadRequest",
        "The property 'acceptedSenders' does not exist on type 'microsoft.graph.group'. Make sure to only use property "
        "names that are defined by the type or mark the type as open type.",
    )


async def test_create_group_with_owners_and_members(api: Api) -> None:
    owner = await api.create_user()
    m1 = await api.create_user()
    m2 = await api.create_user()
    body = security_body(
        **{
            "owners@odata.bind": [ref(owner["id"], "users")],
            "members@odata.bind": [ref(m1["id"]), ref(m2["id"], "users", "beta")],
        }
    )
    group = assert_odata_json(await api.post("/v1.0/groups", json=body), 201)
    assert await api.owner_ids(group["id"]) == {owner["id"]}
    assert await api.member_ids(group["id"]) == {m1["id"], m2["id"]}
    assert owner["id"] not in await api.member_ids(group["id"])  # owners are not members


async def test_create_group_more_than_20_links(api: Api) -> None:
    users = [await api.create_user() for _ in range(11)]
    body = security_body(
        **{
            "owners@odata.bind": [ref(u["id"], "users") for u in users[:10]],
            "members@odata.bind": [ref(u["id"]) for u in users],
        }
    )
    assert_error(await api.post("/v1.0/groups", json=body), 400, "Request_BadRequest", MSG_TOO_MANY_LINKS)
    assert await group_count(api) == 0
    ok = security_body(
        nick="twenty", **{"owners@odata.bind": [ref(u["id"], "users") for u in users[:10]], "members@odata.bind": [ref(u["id"]) for u in users[:10]]}
    )
    assert (await api.post("/v1.0/groups", json=ok)).status_code == 201


async def test_create_group_missing_member_is_404_and_nothing_created(api: Api) -> None:
    user = await api.create_user()
    missing = str(uuid.uuid4())
    body = security_body(**{"members@odata.bind": [ref(user["id"]), ref(missing)]})
    assert_error(await api.post("/v1.0/groups", json=body), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert await group_count(api) == 0


async def test_create_group_malformed_bind(api: Api) -> None:
    body = security_body(**{"members@odata.bind": [f"{GRAPH}/v1.0/directoryObjects/nope"]})
    assert_error(await api.post("/v1.0/groups", json=body), 400, "Request_BadRequest", MSG_INVALID_ID.format("nope"))
    assert await group_count(api) == 0


async def test_create_group_duplicate_member_bind(api: Api) -> None:
    user = await api.create_user()
    body = security_body(**{"members@odata.bind": [ref(user["id"]), ref(user["id"], "users")]})
    assert_error(
        await api.post("/v1.0/groups", json=body),
        400,
        "Request_BadRequest",
        "One or more added object references already exist for the following modified properties: 'members'.",
    )
    assert await group_count(api) == 0


async def test_create_unified_group_with_group_member_refused(api: Api) -> None:
    inner = await api.create_group()
    body = unified_body(**{"members@odata.bind": [ref(inner["id"])]})
    assert_error(
        await api.post("/v1.0/groups", json=body),
        400,
        "Request_BadRequest",
        "An object of type 'group' is unsupported as a member of this group.",
    )
    assert await group_count(api) == 1


async def test_create_dynamic_group(api: Api) -> None:
    group = await api.create_group(kind="dynamic")
    assert group["groupTypes"] == ["DynamicMembership"]
    assert group["membershipRule"] == 'user.department -eq "Sales"'
    assert group["membershipRuleProcessingState"] == "On"
    body = security_body(nick="dyn2", groupTypes=["DynamicMembership"])
    assert_error(await api.post("/v1.0/groups", json=body), 400, "Request_BadRequest", MSG_REQUIRED.format("membershipRule"))
    body = security_body(nick="dyn3", membershipRule='user.department -eq "x"')
    assert_error(
        await api.post("/v1.0/groups", json=body),
        400,
        "Request_BadRequest",
        "A membershipRule can be set only on a group with the 'DynamicMembership' group type.",
    )


async def test_create_dynamic_group_with_members_forbidden(api: Api) -> None:
    user = await api.create_user()
    body = security_body(groupTypes=["DynamicMembership"], membershipRule='user.city -eq "Oslo"', **{"members@odata.bind": [ref(user["id"])]})
    assert_error(await api.post("/v1.0/groups", json=body), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert await group_count(api) == 0


async def test_create_role_assignable_needs_role_management(api: Api) -> None:
    body = security_body(isAssignableToRole=True)
    assert_error(await api.post("/v1.0/groups", json=body), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert await group_count(api) == 0
    tok = api.token(["Group.ReadWrite.All", "RoleManagement.ReadWrite.Directory"])
    group = assert_odata_json(await api.post("/v1.0/groups", json=body, token=tok), 201)
    assert group["isAssignableToRole"] is True and group["visibility"] == "Private"


async def test_create_role_assignable_delegated_needs_privileged_role_admin(api: Api) -> None:
    user = await api.create_user()
    scopes = ["Group.ReadWrite.All", "RoleManagement.ReadWrite.Directory"]
    plain = api.token(user_id=user["id"], scopes=scopes, wids=[GROUPS_ADMIN])
    assert_error(await api.post("/v1.0/groups", json=security_body(isAssignableToRole=True), token=plain), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    pra = api.token(user_id=user["id"], scopes=scopes, wids=[PRIVILEGED_ROLE_ADMIN])
    assert (await api.post("/v1.0/groups", json=security_body(isAssignableToRole=True), token=pra)).status_code == 201


async def test_create_role_assignable_must_be_security_not_dynamic(api: Api) -> None:
    tok = api.token(["Group.ReadWrite.All", "RoleManagement.ReadWrite.Directory"])
    body = security_body(isAssignableToRole=True, groupTypes=["DynamicMembership"], membershipRule='user.city -eq "x"')
    assert_error(
        await api.post("/v1.0/groups", json=body, token=tok),
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'isAssignableToRole' of resource 'Group'.",
    )


async def test_create_group_permissions(api: Api) -> None:
    assert_error(await api.post("/v1.0/groups", json=security_body(), token=api.token(["Group.Read.All"])), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert_error(
        await api.post("/v1.0/groups", json=security_body(), token=api.token(["GroupMember.ReadWrite.All"])), 403, "Authorization_RequestDenied", MSG_FORBIDDEN
    )
    assert (await api.post("/v1.0/groups", json=security_body(), token=api.token(["Group.Create"]))).status_code == 201


async def test_create_unified_delegated_caller_becomes_owner(api: Api) -> None:
    user = await api.create_user()
    tok = api.token(user_id=user["id"], scopes=["Group.ReadWrite.All"])
    group = assert_odata_json(await api.post("/v1.0/groups", json=unified_body(), token=tok), 201)
    assert await api.owner_ids(group["id"]) == {user["id"]}
    assert await api.member_ids(group["id"]) == set()


# -- get / list --------------------------------------------------------------------------------
async def test_get_group(api: Api) -> None:
    group = await api.create_group("Get Me")
    body = assert_odata_json(await api.get(f"/v1.0/groups/{group['id']}"))
    assert body["@odata.context"] == ctx("v1.0", "groups/$entity")
    assert body == {**group, "@odata.context": body["@odata.context"]}
    sel = assert_odata_json(await api.get(f"/v1.0/groups/{group['id']}", params={"$select": "id,DisplayName"}))
    assert sel == {"@odata.context": ctx("v1.0", "groups(id,displayName)/$entity"), "id": group["id"], "displayName": "Get Me"}


async def test_get_group_errors(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert_error(await api.get(f"/v1.0/groups/{missing}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert_error(await api.get("/v1.0/groups/abc"), 400, "Request_BadRequest", MSG_INVALID_ID.format("abc"))
    user = await api.create_user()
    assert_error(await api.get(f"/v1.0/groups/{user['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(user["id"]))
    group = await api.create_group()
    assert_error(
        await api.get(f"/v1.0/groups/{group['id']}", params={"$select": "nope"}),
        400,
        "BadRequest",
        "Could not find a property named 'nope' on type 'microsoft.graph.group'.",
    )
    assert_error(
        await api.get(f"/v1.0/groups/{group['id']}", params={"$top": "5"}),
        400,
        "BadRequest",
        "Query option '$top' is not allowed on a single entity.",
    )


@pytest.mark.parametrize("role", ["GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "Group.ReadWrite.All"])
async def test_get_group_read_permissions(api: Api, role: str) -> None:
    group = await api.create_group()
    assert (await api.get(f"/v1.0/groups/{group['id']}", token=api.token([role]))).status_code == 200


async def test_get_group_without_permission(api: Api) -> None:
    group = await api.create_group()
    assert_error(await api.get(f"/v1.0/groups/{group['id']}", token=api.token(["User.Read.All"])), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert_error(await api.get("/v1.0/groups", token=api.token([])), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)


async def test_list_groups(api: Api) -> None:
    sec = await api.create_group("Sec")
    uni = await api.create_group("Uni", kind="unified")
    body = assert_odata_json(await api.get("/v1.0/groups"))
    assert body["@odata.context"] == ctx("v1.0", "groups")
    assert {g["id"] for g in body["value"]} == {sec["id"], uni["id"]}
    assert all(set(g) == GROUP_DEFAULTS for g in body["value"])
    beta = assert_odata_json(await api.get("/beta/groups"))
    assert beta["@odata.context"] == ctx("beta", "groups")


# -- update ------------------------------------------------------------------------------------
async def test_update_group(api: Api) -> None:
    group = await api.create_group("Before")
    resp = await api.patch(f"/v1.0/groups/{group['id']}", json={"description": "after", "displayName": "After", "@odata.type": "#microsoft.graph.group"})
    assert_no_content(resp)
    got = (await api.get(f"/v1.0/groups/{group['id']}")).json()
    assert got["displayName"] == "After" and got["description"] == "after"


async def test_update_group_errors_change_nothing(api: Api) -> None:
    group = await api.create_group("Stay")
    gid = group["id"]
    cases = [
        ({"displayName": ""}, 400, "Request_BadRequest", "Invalid value specified for property 'displayName' of resource 'Group'."),
        (
            {"displayName": "X", "visibility": "Hiddenmembership"},
            400,
            "Request_BadRequest",
            "Invalid value specified for property 'visibility' of resource 'Group'.",
        ),
        ({"displayName": "X", "createdDateTime": "2001-01-01T00:00:00Z"}, 400, "Request_BadRequest", MSG_READ_ONLY.format("createdDateTime")),
        ({"displayName": "X", "mailEnabled": True}, 400, "Request_BadRequest", "Invalid value specified for property 'mailEnabled' of resource 'Group'."),
        (
            {"displayName": "X", "membershipRule": 'user.city -eq "x"'},
            400,
            "Request_BadRequest",
            "A membershipRule can be set only on a group with the 'DynamicMembership' group type.",
        ),
        (
            {"displayName": "X", "securityEnabled": "no"},
            400,
            "Request_BadRequest",
            "Invalid value specified for property 'securityEnabled' of resource 'Group'.",
        ),
        ({"displayName": "X", "mailNickname": "a b"}, 400, "Request_BadRequest", "Invalid value specified for property 'mailNickname' of resource 'Group'."),
    ]
    for body, status, code, message in cases:
        assert_error(await api.patch(f"/v1.0/groups/{gid}", json=body), status, code, message)
    assert (await api.get(f"/v1.0/groups/{gid}")).json()["displayName"] == "Stay"


async def test_update_group_not_found_and_malformed(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert_error(await api.patch(f"/v1.0/groups/{missing}", json={"description": "x"}), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert_error(await api.patch("/v1.0/groups/xyz", json={"description": "x"}), 400, "Request_BadRequest", MSG_INVALID_ID.format("xyz"))


@pytest.mark.parametrize("kind", ["mailSecurity", "distribution"])
async def test_update_mail_enabled_group_properties_refused(api: Api, kind: str) -> None:
    group = await api.seed_group(kind, "Exchange managed")
    assert_error(await api.patch(f"/v1.0/groups/{group['id']}", json={"description": "x"}), 400, "Request_BadRequest", MSG_MAIL_UPDATE)
    assert (await api.get(f"/v1.0/groups/{group['id']}")).json()["description"] is None


async def test_update_synced_group_refused(api: Api) -> None:
    group = await api.seed_group("synced", "From AD")
    assert_error(await api.patch(f"/v1.0/groups/{group['id']}", json={"description": "x"}), 400, "Request_BadRequest", MSG_ONPREM)
    assert (await api.get(f"/v1.0/groups/{group['id']}")).json()["description"] is None


async def test_update_group_permissions(api: Api) -> None:
    group = await api.create_group()
    for role in ("Group.Read.All", "GroupMember.ReadWrite.All", "Group.Create"):
        assert_error(
            await api.patch(f"/v1.0/groups/{group['id']}", json={"description": "x"}, token=api.token([role])),
            403,
            "Authorization_RequestDenied",
            MSG_FORBIDDEN,
        )
    assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json={"description": "x"}, token=api.token(["Group.ReadWrite.All"])))


async def test_update_group_delegated_owner_or_groups_admin(api: Api) -> None:
    owner = await api.create_user()
    stranger = await api.create_user()
    group = await api.create_group(**{"owners@odata.bind": [ref(owner["id"], "users")]})
    path = f"/v1.0/groups/{group['id']}"
    scopes = ["Group.ReadWrite.All"]
    assert_error(
        await api.patch(path, json={"description": "s"}, token=api.token(user_id=stranger["id"], scopes=scopes)),
        403,
        "Authorization_RequestDenied",
        MSG_FORBIDDEN,
    )
    assert_no_content(await api.patch(path, json={"description": "o"}, token=api.token(user_id=owner["id"], scopes=scopes)))
    assert_no_content(await api.patch(path, json={"description": "a"}, token=api.token(user_id=stranger["id"], scopes=scopes, wids=[GROUPS_ADMIN])))


# -- delete ------------------------------------------------------------------------------------
async def test_delete_security_group_v1_is_permanent(api: Api) -> None:
    user = await api.create_user()
    outer = await api.create_group()
    group = await api.create_group(**{"members@odata.bind": [ref(user["id"])]})
    assert_no_content(await api.add_member(outer["id"], group["id"]))
    assert_no_content(await api.delete(f"/v1.0/groups/{group['id']}"))
    assert_error(await api.get(f"/v1.0/groups/{group['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(group["id"]))
    assert await api.graph.store.get(api.tenant_id, group["id"]) is None
    assert await api.member_ids(outer["id"]) == set()
    assert await api.ids(f"/v1.0/users/{user['id']}/memberOf") == []


async def test_delete_security_group_beta_is_soft(api: Api) -> None:
    group = await api.create_group()
    assert_no_content(await api.delete(f"/beta/groups/{group['id']}"))
    assert_error(await api.get(f"/beta/groups/{group['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(group["id"]))
    stored = await api.graph.store.get(api.tenant_id, group["id"])
    assert stored is not None and stored.deleted is not None


async def test_delete_unified_group_is_soft(api: Api) -> None:
    group = await api.create_group(kind="unified")
    assert_no_content(await api.delete(f"/v1.0/groups/{group['id']}"))
    assert await api.ids("/v1.0/groups") == []
    stored = await api.graph.store.get(api.tenant_id, group["id"])
    assert stored is not None and stored.deleted is not None
    assert_error(await api.delete(f"/v1.0/groups/{group['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(group["id"]))


@pytest.mark.parametrize(("kind", "message"), [("distribution", MSG_MAIL_UPDATE), ("mailSecurity", MSG_MAIL_UPDATE), ("synced", MSG_ONPREM)])
async def test_delete_read_only_groups_refused(api: Api, kind: str, message: str) -> None:
    group = await api.seed_group(kind)
    assert_error(await api.delete(f"/v1.0/groups/{group['id']}"), 400, "Request_BadRequest", message)
    assert (await api.get(f"/v1.0/groups/{group['id']}")).status_code == 200


async def test_delete_group_errors(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert_error(await api.delete(f"/v1.0/groups/{missing}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert_error(await api.delete("/v1.0/groups/1-2-3"), 400, "Request_BadRequest", MSG_INVALID_ID.format("1-2-3"))
    group = await api.create_group()
    assert_error(await api.delete(f"/v1.0/groups/{group['id']}", token=api.token(["Group.Read.All"])), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert (await api.get(f"/v1.0/groups/{group['id']}")).status_code == 200


# -- group memberOf ----------------------------------------------------------------------------
async def test_group_member_of(api: Api) -> None:
    parent1 = await api.create_group("P1")
    parent2 = await api.create_group("P2")
    child = await api.create_group("Child")
    for p in (parent1, parent2):
        assert_no_content(await api.add_member(p["id"], child["id"]))
    for version in ("v1.0", "beta"):
        body = assert_odata_json(await api.get(f"/{version}/groups/{child['id']}/memberOf"))
        assert body["@odata.context"] == ctx(version, "directoryObjects")
        assert {g["id"] for g in body["value"]} == {parent1["id"], parent2["id"]}
        assert all(g["@odata.type"] == "#microsoft.graph.group" for g in body["value"])
    cast = assert_odata_json(await api.get(f"/v1.0/groups/{child['id']}/memberOf/microsoft.graph.group"))
    assert cast["@odata.context"] == ctx("v1.0", "groups")
    assert len(cast["value"]) == 2
    count = await api.get(f"/v1.0/groups/{child['id']}/memberOf/$count", headers={"ConsistencyLevel": "eventual"})
    assert count.status_code == 200 and count.text == "2"
    assert (await api.ids(f"/v1.0/groups/{parent1['id']}/memberOf")) == []
    missing = str(uuid.uuid4())
    assert_error(await api.get(f"/v1.0/groups/{missing}/memberOf"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))


# -- directoryObjects --------------------------------------------------------------------------
async def test_get_directory_object(api: Api) -> None:
    user = await api.create_user("Dir User")
    group = await api.create_group("Dir Group")
    device = await api.seed("device", "Laptop", deviceId=str(uuid.uuid4()), accountEnabled=True, operatingSystem="Windows")
    for obj, type_name in ((user, "user"), (group, "group"), (device, "device")):
        body = assert_odata_json(await api.get(f"/v1.0/directoryObjects/{obj['id']}"))
        assert body["@odata.context"] == ctx("v1.0", "directoryObjects/$entity")
        assert body["@odata.type"] == f"#microsoft.graph.{type_name}"
        assert body["id"] == obj["id"]
    body = assert_odata_json(await api.get(f"/beta/directoryObjects/{user['id']}", params={"$select": "id,displayName"}))
    assert body == {
        "@odata.context": ctx("beta", "directoryObjects(id,displayName)/$entity"),
        "@odata.type": "#microsoft.graph.user",
        "id": user["id"],
        "displayName": "Dir User",
    }


async def test_get_directory_object_errors(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert_error(await api.get(f"/v1.0/directoryObjects/{missing}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert_error(await api.get("/v1.0/directoryObjects/bad"), 400, "Request_BadRequest", MSG_INVALID_ID.format("bad"))
    user = await api.create_user()
    assert_error(await api.get(f"/v1.0/directoryObjects/{user['id']}", token=api.token(["User.Read.All"])), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)


# -- the admin seed route ----------------------------------------------------------------------
async def test_seed_requires_admin_role(api: Api) -> None:
    body = {"type": "group", "displayName": "DL", "mailEnabled": True, "securityEnabled": False}
    assert_error(await api.post("/graphdir/admin/seed", json=body), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    resp = await api.post("/graphdir/admin/seed", json=body, token=api.admin_token)
    assert resp.status_code == 201


async def test_seed_group_with_members(api: Api) -> None:
    u1 = await api.create_user()
    u2 = await api.create_user()
    dl = await api.seed_group("distribution", "All staff", members=[u1["id"], u2["id"]])
    assert dl["mailEnabled"] is True and dl["securityEnabled"] is False
    assert await api.member_ids(dl["id"]) == {u1["id"], u2["id"]}


async def test_seed_bad_type(api: Api) -> None:
    resp = await api.post("/graphdir/admin/seed", json={"type": "printer", "displayName": "x"}, token=api.admin_token)
    assert_error(resp, 400, "Request_BadRequest", "Unknown object type 'printer'.")
