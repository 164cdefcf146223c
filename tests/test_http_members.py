"""Members over HTTP: list, get, add ($ref and PATCH bind), remove (three forms), delete-through (docs/behaviour.md#membership)."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

import pytest

from http_helpers import (
    BASE_URL,
    GRAPH,
    MSG_ALREADY,
    MSG_COUNT,
    MSG_CYCLE,
    MSG_FORBIDDEN,
    MSG_INVALID_ID,
    MSG_MAIL_UPDATE,
    MSG_NOT_FOUND,
    MSG_ONPREM,
    MSG_TOO_MANY_LINKS,
    Api,
    assert_error,
    assert_no_content,
    assert_odata_json,
    ctx,
    ref,
)

pytestmark = pytest.mark.anyio

VERSIONS = ["v1.0", "beta"]
ROLE_MANAGEMENT = "RoleManagement.ReadWrite.Directory"


def unsupported_member(type_: str) -> str:
    return f"An object of type '{type_}' is unsupported as a member of this group."


async def seed_members(api: Api) -> dict[str, dict[str, object]]:
    """One object of every member type a security group may hold."""
    return {
        "user": await api.create_user("A user"),
        "group": await api.create_group("B nested"),
        "device": await api.seed("device", "C device", deviceId=str(uuid.uuid4()), accountEnabled=True, operatingSystem="Windows"),
        "servicePrincipal": await api.seed("servicePrincipal", "D app", appId=str(uuid.uuid4()), servicePrincipalType="Application"),
        "orgContact": await api.seed("orgContact", "E contact", mail="e@fabrikam.com"),
    }


# -- add: POST /members/$ref ------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
async def test_add_member_204_and_listed(api: Api, version: str) -> None:
    group = await api.create_group()
    user = await api.create_user("Member One")
    resp = await api.add_member(group["id"], user["id"], version=version)
    assert_no_content(resp)
    body = assert_odata_json(await api.get(f"/{version}/groups/{group['id']}/members"))
    assert body["@odata.context"] == ctx(version, "directoryObjects")
    assert body["value"] == [{"@odata.type": "#microsoft.graph.user", **{k: v for k, v in user.items() if k != "@odata.context"}}]


@pytest.mark.parametrize(
    ("member_type", "url"),
    [
        ("user", f"{GRAPH}/v1.0/directoryObjects/{{id}}"),
        ("user", f"{GRAPH}/beta/directoryObjects/{{id}}"),
        ("user", f"{GRAPH}/v1.0/users/{{id}}"),
        ("user", f"{GRAPH}/beta/Users/{{id}}"),
        ("user", f"{BASE_URL}/v1.0/directoryObjects/{{id}}"),
        ("user", f"{BASE_URL}/beta/users/{{id}}"),
        ("user", f"{GRAPH}/v1.0/directoryObjects/{{id}}/Microsoft.DirectoryServices.User"),
        ("group", f"{GRAPH}/v1.0/groups/{{id}}"),
        ("group", f"{GRAPH}/v1.0/directoryObjects/{{id}}"),
        ("device", f"{GRAPH}/v1.0/devices/{{id}}"),
        ("servicePrincipal", f"{GRAPH}/v1.0/servicePrincipals/{{id}}"),
        ("servicePrincipal", f"{GRAPH}/v1.0/servicePrincipal/{{id}}"),
        ("orgContact", f"{GRAPH}/v1.0/contacts/{{id}}"),
        ("orgContact", f"{GRAPH}/v1.0/orgContacts/{{id}}"),
        ("orgContact", f"{GRAPH}/v1.0/orgContact/{{id}}"),
    ],
)
async def test_add_member_every_odata_id_form(api: Api, member_type: str, url: str) -> None:
    objs = await seed_members(api)
    group = await api.create_group("Target")
    member_id = str(objs[member_type]["id"])
    assert_no_content(await api.post(f"/v1.0/groups/{group['id']}/members/$ref", json={"@odata.id": url.format(id=member_id)}))
    assert await api.member_ids(group["id"]) == {member_id}


async def test_add_member_odata_type_in_body_accepted(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    body = {"@odata.type": "#microsoft.graph.referenceCreate", "@odata.id": ref(user["id"])}
    assert_no_content(await api.post(f"/v1.0/groups/{group['id']}/members/$ref", json=body))


async def test_security_group_holds_every_member_type_polymorphic_listing(api: Api) -> None:
    objs = await seed_members(api)
    group = await api.create_group("Everything")
    for obj in objs.values():
        assert_no_content(await api.add_member(group["id"], str(obj["id"])))
    for version in VERSIONS:
        body = assert_odata_json(await api.get(f"/{version}/groups/{group['id']}/members"))
        assert body["@odata.context"] == ctx(version, "directoryObjects")
        got = {item["id"]: item["@odata.type"] for item in body["value"]}
        assert got == {str(o["id"]): f"#microsoft.graph.{t}" for t, o in objs.items()}
        for item in body["value"]:
            assert "@odata.type" in item and item["displayName"]


async def test_hide_service_principals_v1_setting(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(hide_service_principals_v1=True)
    group = await api.create_group()
    sp = await api.seed("servicePrincipal", "App", appId=str(uuid.uuid4()))
    user = await api.create_user()
    for oid in (sp["id"], user["id"]):
        assert_no_content(await api.add_member(group["id"], oid))
    assert_no_content(await api.post(f"/v1.0/groups/{group['id']}/owners/$ref", json={"@odata.id": ref(sp["id"], "servicePrincipals")}))
    assert await api.member_ids(group["id"], "v1.0") == {user["id"]}
    assert await api.member_ids(group["id"], "beta") == {user["id"], sp["id"]}
    assert await api.owner_ids(group["id"], "v1.0") == set()
    assert await api.owner_ids(group["id"], "beta") == {sp["id"]}


async def test_add_member_group_missing(api: Api) -> None:
    user = await api.create_user()
    missing = str(uuid.uuid4())
    assert_error(await api.add_member(missing, user["id"]), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))


async def test_add_member_reference_missing(api: Api) -> None:
    group = await api.create_group()
    missing = str(uuid.uuid4())
    for entity_set in ("directoryObjects", "users"):
        resp = await api.add_member(group["id"], missing, entity_set=entity_set)
        assert_error(resp, 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))


async def test_add_member_reference_of_wrong_entity_set_is_404(api: Api) -> None:
    """``/users/{id}`` naming a group: there is no such user."""
    group = await api.create_group()
    other = await api.create_group()
    assert_error(await api.add_member(group["id"], other["id"], entity_set="users"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(other["id"]))
    assert await api.member_ids(group["id"]) == set()


async def test_add_member_malformed_ids(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    assert_error(await api.add_member("not-a-guid", user["id"]), 400, "Request_BadRequest", MSG_INVALID_ID.format("not-a-guid"))
    resp = await api.post(f"/v1.0/groups/{group['id']}/members/$ref", json={"@odata.id": f"{GRAPH}/v1.0/directoryObjects/12345"})
    assert_error(resp, 400, "Request_BadRequest", MSG_INVALID_ID.format("12345"))
    resp = await api.post(f"/v1.0/groups/{group['id']}/members/$ref", json={"@odata.id": "nonsense"})
    assert_error(resp, 400, "Request_BadRequest", MSG_INVALID_ID.format("nonsense"))


async def test_add_member_bad_bodies(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    path = f"/v1.0/groups/{group['id']}/members/$ref"
    assert_error(await api.post(path, json={}), 400, "Request_BadRequest", "Property '@odata.id' is required in the request body.")
    assert_error(
        await api.post(path, json={"@odata.id": 42}),
        400,
        "Request_BadRequest",
        "Invalid reference: the @odata.id value must be a URL string.",
    )
    assert_error(
        await api.post(path, json={"@odata.id": ref(user["id"]), "extra": 1}),
        400,
        "BadRequest",
        "The property 'extra' does not exist on type 'microsoft.graph.referenceCreate'. Make sure to only use property "
        "names that are defined by the type or mark the type as open type.",
    )
    assert await api.member_ids(group["id"]) == set()


@pytest.mark.parametrize("version", VERSIONS)
async def test_add_member_duplicate(api: Api, version: str) -> None:
    group = await api.create_group()
    user = await api.create_user()
    assert_no_content(await api.add_member(group["id"], user["id"], version=version))
    resp = await api.add_member(group["id"], user["id"], version=version, entity_set="users")
    assert_error(resp, 400, "Request_BadRequest", MSG_ALREADY.format("members"))
    assert await api.member_ids(group["id"]) == {user["id"]}


async def test_add_member_permissions(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    for roles in (["GroupMember.Read.All"], ["Group.Read.All", "User.ReadWrite.All"], []):
        assert_error(await api.add_member(group["id"], user["id"], token=api.token(roles)), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert await api.member_ids(group["id"]) == set()
    assert_no_content(await api.add_member(group["id"], user["id"], token=api.token(["GroupMember.ReadWrite.All"])))


async def test_add_member_type_grants(api: Api) -> None:
    """``GroupMember.ReadWrite.All`` alone adds users and groups; devices, SPs and contacts need their grant (docs/behaviour.md#order-of-checks)."""
    objs = await seed_members(api)
    group = await api.create_group()
    base = ["GroupMember.ReadWrite.All"]
    grants = {"device": "Device.ReadWrite.All", "servicePrincipal": "Application.ReadWrite.All", "orgContact": "OrgContact.Read.All"}
    for t in ("user", "group"):
        assert_no_content(await api.add_member(group["id"], str(objs[t]["id"]), token=api.token(base)))
    for t, grant in grants.items():
        oid = str(objs[t]["id"])
        assert_error(await api.add_member(group["id"], oid, token=api.token(base)), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
        assert_no_content(await api.add_member(group["id"], oid, token=api.token([*base, grant])))
    assert len(await api.member_ids(group["id"])) == 5


async def test_add_member_delegated_needs_owner_or_role(api: Api) -> None:
    owner = await api.create_user()
    stranger = await api.create_user()
    target = await api.create_user()
    group = await api.create_group(**{"owners@odata.bind": [ref(owner["id"], "users")]})
    scopes = ["GroupMember.ReadWrite.All"]
    resp = await api.add_member(group["id"], target["id"], token=api.token(user_id=stranger["id"], scopes=scopes))
    assert_error(resp, 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert_no_content(await api.add_member(group["id"], target["id"], token=api.token(user_id=owner["id"], scopes=scopes)))
    other = await api.create_user()
    groups_admin = "fdd7a751-b60b-444a-984c-02652fe8fa1c"
    assert_no_content(await api.add_member(group["id"], other["id"], token=api.token(user_id=stranger["id"], scopes=scopes, wids=[groups_admin])))


# -- group kinds ---------------------------------------------------------------------------------
async def test_unified_group_holds_users_only(api: Api) -> None:
    objs = await seed_members(api)
    m365 = await api.create_group(kind="unified")
    assert_no_content(await api.add_member(m365["id"], str(objs["user"]["id"])))
    for t in ("group", "device", "servicePrincipal", "orgContact"):
        resp = await api.add_member(m365["id"], str(objs[t]["id"]))
        assert_error(resp, 400, "Request_BadRequest", unsupported_member(t))
    assert await api.member_ids(m365["id"]) == {objs["user"]["id"]}


async def test_unified_group_is_never_nested(api: Api) -> None:
    m365 = await api.create_group(kind="unified")
    other_m365 = await api.create_group(kind="unified")
    security = await api.create_group()
    assert_error(await api.add_member(security["id"], m365["id"]), 400, "Request_BadRequest", unsupported_member("group"))
    assert_error(await api.add_member(other_m365["id"], m365["id"]), 400, "Request_BadRequest", unsupported_member("group"))
    assert await api.member_ids(security["id"]) == set()


async def test_mail_enabled_groups_cannot_be_nested_into_security(api: Api) -> None:
    security = await api.create_group()
    dl = await api.seed_group("distribution")
    assert_error(await api.add_member(security["id"], dl["id"]), 400, "Request_BadRequest", unsupported_member("group"))


async def test_group_cannot_contain_itself(api: Api) -> None:
    group = await api.create_group()
    assert_error(await api.add_member(group["id"], group["id"]), 400, "Request_BadRequest", MSG_CYCLE)
    assert_error(
        await api.patch(f"/v1.0/groups/{group['id']}", json={"members@odata.bind": [ref(group["id"])]}),
        400,
        "Request_BadRequest",
        MSG_CYCLE,
    )
    assert await api.member_ids(group["id"]) == set()


async def test_cycles_refused(api: Api) -> None:
    a = await api.create_group("A")
    b = await api.create_group("B")
    c = await api.create_group("C")
    assert_no_content(await api.add_member(a["id"], b["id"]))  # A ⊃ B
    assert_no_content(await api.add_member(b["id"], c["id"]))  # B ⊃ C
    assert_error(await api.add_member(c["id"], a["id"]), 400, "Request_BadRequest", MSG_CYCLE)  # C ⊃ A would loop
    assert_error(await api.add_member(b["id"], a["id"]), 400, "Request_BadRequest", MSG_CYCLE)
    assert_error(await api.patch(f"/v1.0/groups/{c['id']}", json={"members@odata.bind": [ref(a["id"])]}), 400, "Request_BadRequest", MSG_CYCLE)
    assert await api.member_ids(c["id"]) == set()
    assert_no_content(await api.add_member(a["id"], c["id"]))  # a diamond is not a cycle


@pytest.mark.parametrize("version", VERSIONS)
async def test_mail_enabled_security_membership_allowed_by_default(api: Api, version: str) -> None:
    """The 2015 seed page: mail-enabled security groups are writable (setting ``mail_enabled_security_membership=allow``)."""
    group = await api.seed_group("mailSecurity")
    user = await api.create_user()
    assert_no_content(await api.add_member(group["id"], user["id"], version=version))
    assert await api.member_ids(group["id"]) == {user["id"]}
    assert_no_content(await api.delete(f"/{version}/groups/{group['id']}/members/{user['id']}/$ref"))
    assert await api.member_ids(group["id"]) == set()
    other = await api.create_user()
    assert_no_content(await api.patch(f"/{version}/groups/{group['id']}", json={"members@odata.bind": [ref(other["id"])]}))


@pytest.mark.parametrize("version", VERSIONS)
async def test_mail_enabled_security_membership_refused_by_setting(make_api, version: str) -> None:  # type: ignore[no-untyped-def]
    api: Api = make_api(mail_enabled_security_membership="refuse")
    user = await api.create_user()
    group = await api.seed_group("mailSecurity", members=[user["id"]])
    newcomer = await api.create_user()
    assert_error(await api.add_member(group["id"], newcomer["id"], version=version), 400, "Request_BadRequest", MSG_MAIL_UPDATE)
    assert_error(await api.delete(f"/{version}/groups/{group['id']}/members/{user['id']}/$ref"), 400, "Request_BadRequest", MSG_MAIL_UPDATE)
    assert_error(
        await api.patch(f"/{version}/groups/{group['id']}", json={"members@odata.bind": [ref(newcomer["id"])]}),
        400,
        "Request_BadRequest",
        MSG_MAIL_UPDATE,
    )
    assert await api.member_ids(group["id"]) == {user["id"]}


@pytest.mark.parametrize("setting", ["allow", "refuse"])
async def test_distribution_membership_always_refused(make_api, setting: str) -> None:  # type: ignore[no-untyped-def]
    api: Api = make_api(mail_enabled_security_membership=setting)
    user = await api.create_user()
    dl = await api.seed_group("distribution", members=[user["id"]])
    newcomer = await api.create_user()
    for version in VERSIONS:
        assert_error(await api.add_member(dl["id"], newcomer["id"], version=version), 400, "Request_BadRequest", MSG_MAIL_UPDATE)
        assert_error(await api.delete(f"/{version}/groups/{dl['id']}/members/{user['id']}/$ref"), 400, "Request_BadRequest", MSG_MAIL_UPDATE)
        assert_error(await api.delete(f"/{version}/groups/{dl['id']}/members/$ref/{user['id']}"), 400, "Request_BadRequest", MSG_MAIL_UPDATE)
    assert_error(await api.patch(f"/v1.0/groups/{dl['id']}", json={"members@odata.bind": [ref(newcomer["id"])]}), 400, "Request_BadRequest", MSG_MAIL_UPDATE)
    assert await api.member_ids(dl["id"]) == {user["id"]}


async def test_synced_group_membership_refused(api: Api) -> None:
    user = await api.create_user()
    synced = await api.seed_group("synced", members=[user["id"]])
    newcomer = await api.create_user()
    for version in VERSIONS:
        assert_error(await api.add_member(synced["id"], newcomer["id"], version=version), 400, "Request_BadRequest", MSG_ONPREM)
        assert_error(await api.delete(f"/{version}/groups/{synced['id']}/members/{user['id']}/$ref"), 400, "Request_BadRequest", MSG_ONPREM)
    assert_error(await api.patch(f"/v1.0/groups/{synced['id']}", json={"members@odata.bind": [ref(newcomer["id"])]}), 400, "Request_BadRequest", MSG_ONPREM)
    assert await api.member_ids(synced["id"]) == {user["id"]}


async def test_synced_group_can_be_nested_into_cloud_security_group(api: Api) -> None:
    """Only the synced group's own membership is read-only; it can still be a member elsewhere."""
    synced = await api.seed_group("synced")
    cloud = await api.create_group()
    assert_no_content(await api.add_member(cloud["id"], synced["id"]))


@pytest.mark.parametrize("version", VERSIONS)
async def test_dynamic_group_refuses_manual_add_and_remove(api: Api, version: str) -> None:
    dyn = await api.create_group(kind="dynamic")
    user = await api.create_user()
    assert_error(await api.add_member(dyn["id"], user["id"], version=version), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    # membership computed by the rule (seeded here) cannot be removed by hand either
    api.bulk_members(dyn["id"], [user["id"]])
    assert_error(await api.delete(f"/{version}/groups/{dyn['id']}/members/{user['id']}/$ref"), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert_error(
        await api.patch(f"/{version}/groups/{dyn['id']}", json={"members@odata.bind": [ref(user["id"])]}), 403, "Authorization_RequestDenied", MSG_FORBIDDEN
    )
    assert await api.member_ids(dyn["id"]) == {user["id"]}


async def test_role_assignable_group_membership_needs_role_management(api: Api) -> None:
    rm = api.token(["Group.ReadWrite.All", ROLE_MANAGEMENT])
    group = await api.create_group(isAssignableToRole=True, token=rm)
    user = await api.create_user()
    assert_error(await api.add_member(group["id"], user["id"]), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert_no_content(await api.add_member(group["id"], user["id"], token=rm))
    assert_error(await api.delete(f"/v1.0/groups/{group['id']}/members/{user['id']}/$ref"), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert_no_content(await api.delete(f"/v1.0/groups/{group['id']}/members/{user['id']}/$ref", token=rm))
    nested = await api.create_group()
    assert_error(await api.add_member(group["id"], nested["id"], token=rm), 400, "Request_BadRequest", unsupported_member("group"))


# -- PATCH members@odata.bind --------------------------------------------------------------------
async def test_patch_bind_adds_all(api: Api) -> None:
    group = await api.create_group()
    users = [await api.create_user() for _ in range(3)]
    body = {"members@odata.bind": [ref(users[0]["id"]), ref(users[1]["id"], "users", "beta"), f"{BASE_URL}/v1.0/directoryObjects/{users[2]['id']}"]}
    assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json=body))
    assert await api.member_ids(group["id"]) == {u["id"] for u in users}


@pytest.mark.parametrize("bad", ["missing", "duplicate", "malformed", "m365"])
async def test_patch_bind_all_or_nothing(api: Api, bad: str) -> None:
    group = await api.create_group("Original")
    existing = await api.create_user()
    assert_no_content(await api.add_member(group["id"], existing["id"]))
    good = [await api.create_user() for _ in range(2)]
    missing = str(uuid.uuid4())
    m365 = await api.create_group(kind="unified")
    bad_ref, status, code, message = {
        "missing": (ref(missing), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing)),
        "duplicate": (ref(existing["id"]), 400, "Request_BadRequest", MSG_ALREADY.format("members")),
        "malformed": (f"{GRAPH}/v1.0/directoryObjects/oops", 400, "Request_BadRequest", MSG_INVALID_ID.format("oops")),
        "m365": (ref(m365["id"], "groups"), 400, "Request_BadRequest", unsupported_member("group")),
    }[bad]
    body = {"displayName": "Renamed", "members@odata.bind": [ref(good[0]["id"]), bad_ref, ref(good[1]["id"])]}
    assert_error(await api.patch(f"/v1.0/groups/{group['id']}", json=body), status, code, message)
    assert await api.member_ids(group["id"]) == {existing["id"]}
    assert (await api.get(f"/v1.0/groups/{group['id']}")).json()["displayName"] == "Original"


async def test_patch_bind_same_member_twice_in_one_request(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    body = {"members@odata.bind": [ref(user["id"]), ref(user["id"], "users")]}
    assert_error(await api.patch(f"/v1.0/groups/{group['id']}", json=body), 400, "Request_BadRequest", MSG_ALREADY.format("members"))
    assert await api.member_ids(group["id"]) == set()


async def test_patch_bind_more_than_20(api: Api) -> None:
    group = await api.create_group()
    ids = api.bulk_users(21)
    assert_error(
        await api.patch(f"/v1.0/groups/{group['id']}", json={"members@odata.bind": [ref(i) for i in ids]}), 400, "Request_BadRequest", MSG_TOO_MANY_LINKS
    )
    assert await api.member_ids(group["id"]) == set()
    owner_refs = [ref(i, "users") for i in ids[:10]]
    body = {"owners@odata.bind": owner_refs, "members@odata.bind": [ref(i) for i in ids[10:]]}  # 10 + 11: shared budget
    assert_error(await api.patch(f"/v1.0/groups/{group['id']}", json=body), 400, "Request_BadRequest", MSG_TOO_MANY_LINKS)
    assert await api.owner_ids(group["id"]) == set()
    assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json={"members@odata.bind": [ref(i) for i in ids[:20]]}))
    assert len(await api.member_ids(group["id"])) == 20


async def test_patch_bind_not_an_array(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    assert_error(
        await api.patch(f"/v1.0/groups/{group['id']}", json={"members@odata.bind": ref(user["id"])}),
        400,
        "Request_BadRequest",
        "The value of 'members@odata.bind' must be an array of URLs.",
    )


async def test_patch_bind_permissions(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    resp = await api.patch(f"/v1.0/groups/{group['id']}", json={"members@odata.bind": [ref(user["id"])]}, token=api.token(["Group.Read.All"]))
    assert_error(resp, 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert await api.member_ids(group["id"]) == set()


# -- remove: the three $ref forms ----------------------------------------------------------------
async def _group_with_member(api: Api) -> tuple[str, str]:
    group = await api.create_group()
    user = await api.create_user()
    assert_no_content(await api.add_member(group["id"], user["id"]))
    return group["id"], user["id"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_remove_member_id_ref(api: Api, version: str) -> None:
    gid, uid = await _group_with_member(api)
    assert_no_content(await api.delete(f"/{version}/groups/{gid}/members/{uid}/$ref"))
    assert await api.member_ids(gid) == set()
    assert (await api.get(f"/v1.0/users/{uid}")).status_code == 200  # only the link went


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("host", [GRAPH, BASE_URL])
async def test_remove_member_ref_query_at_id(api: Api, version: str, host: str) -> None:
    gid, uid = await _group_with_member(api)
    at_id = quote(ref(uid, "directoryObjects", version, host), safe="")
    assert_no_content(await api.delete(f"/{version}/groups/{gid}/members/$ref?@id={at_id}"))
    assert await api.member_ids(gid) == set()


@pytest.mark.parametrize("form", ["$id-encoded", "@id-raw"])
async def test_remove_member_ref_query_variants(api: Api, form: str) -> None:
    """OData's own spelling ``$id`` and an unencoded URL are accepted too."""
    gid, uid = await _group_with_member(api)
    url = ref(uid)
    query = f"$id={quote(url, safe='')}" if form == "$id-encoded" else f"@id={url}"
    assert_no_content(await api.delete(f"/v1.0/groups/{gid}/members/$ref?{query}"))
    assert await api.member_ids(gid) == set()


@pytest.mark.parametrize("version", VERSIONS)
async def test_remove_member_seed_page_form(api: Api, version: str) -> None:
    """The 2015 beta page's example: ``DELETE …/members/$ref/{id}``."""
    gid, uid = await _group_with_member(api)
    assert_no_content(await api.delete(f"/{version}/groups/{gid}/members/$ref/{uid}"))
    assert await api.member_ids(gid) == set()


async def test_remove_non_member_is_404(api: Api) -> None:
    gid, _ = await _group_with_member(api)
    stranger = await api.create_user()
    missing = str(uuid.uuid4())
    for oid in (stranger["id"], missing):
        assert_error(await api.delete(f"/v1.0/groups/{gid}/members/{oid}/$ref"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(oid))
        assert_error(await api.delete(f"/beta/groups/{gid}/members/$ref/{oid}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(oid))
        at_id = quote(ref(oid), safe="")
        assert_error(await api.delete(f"/v1.0/groups/{gid}/members/$ref?@id={at_id}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(oid))
    assert len(await api.member_ids(gid)) == 1


async def test_remove_member_twice(api: Api) -> None:
    gid, uid = await _group_with_member(api)
    assert_no_content(await api.delete(f"/v1.0/groups/{gid}/members/{uid}/$ref"))
    assert_error(await api.delete(f"/v1.0/groups/{gid}/members/{uid}/$ref"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(uid))


async def test_remove_member_errors(api: Api) -> None:
    gid, uid = await _group_with_member(api)
    missing = str(uuid.uuid4())
    assert_error(await api.delete(f"/v1.0/groups/{missing}/members/{uid}/$ref"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert_error(await api.delete(f"/v1.0/groups/{gid}/members/bogus/$ref"), 400, "Request_BadRequest", MSG_INVALID_ID.format("bogus"))
    assert_error(await api.delete(f"/v1.0/groups/bogus/members/{uid}/$ref"), 400, "Request_BadRequest", MSG_INVALID_ID.format("bogus"))
    assert_error(
        await api.delete(f"/v1.0/groups/{gid}/members/$ref"),
        400,
        "Request_BadRequest",
        "The '@id' query parameter naming the reference to remove is required.",
    )
    bad = quote(f"{GRAPH}/v1.0/directoryObjects/bogus", safe="")
    assert_error(await api.delete(f"/v1.0/groups/{gid}/members/$ref?@id={bad}"), 400, "Request_BadRequest", MSG_INVALID_ID.format("bogus"))
    assert_error(
        await api.delete(f"/v1.0/groups/{gid}/members/{uid}/$ref", token=api.token(["GroupMember.Read.All"])),
        403,
        "Authorization_RequestDenied",
        MSG_FORBIDDEN,
    )
    assert await api.member_ids(gid) == {uid}


# -- DELETE …/members/{id} without $ref: deletes the member object ------------------------------
async def test_delete_member_without_ref_deletes_user_when_allowed(api: Api) -> None:
    gid, uid = await _group_with_member(api)
    tok = api.token(["GroupMember.ReadWrite.All", "User.ReadWrite.All"])
    assert_no_content(await api.delete(f"/v1.0/groups/{gid}/members/{uid}", token=tok))
    assert_error(await api.get(f"/v1.0/users/{uid}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(uid))
    assert await api.member_ids(gid) == set()


async def test_delete_member_without_ref_forbidden_without_type_permission(api: Api) -> None:
    gid, uid = await _group_with_member(api)
    tok = api.token(["GroupMember.ReadWrite.All"])
    assert_error(await api.delete(f"/v1.0/groups/{gid}/members/{uid}", token=tok), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert (await api.get(f"/v1.0/users/{uid}")).status_code == 200
    assert await api.member_ids(gid) == {uid}


async def test_delete_member_without_ref_with_directory_write(api: Api) -> None:
    group = await api.create_group()
    nested = await api.create_group()
    assert_no_content(await api.add_member(group["id"], nested["id"]))
    assert_no_content(await api.delete(f"/v1.0/groups/{group['id']}/members/{nested['id']}"))
    assert_error(await api.get(f"/v1.0/groups/{nested['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(nested["id"]))


async def test_delete_member_without_ref_not_a_member(api: Api) -> None:
    gid, _ = await _group_with_member(api)
    stranger = await api.create_user()
    assert_error(await api.delete(f"/v1.0/groups/{gid}/members/{stranger['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(stranger["id"]))
    assert (await api.get(f"/v1.0/users/{stranger['id']}")).status_code == 200


# -- GET …/members/{id}, $ref listing, $count, casts ---------------------------------------------
async def test_get_single_member(api: Api) -> None:
    gid, uid = await _group_with_member(api)
    body = assert_odata_json(await api.get(f"/v1.0/groups/{gid}/members/{uid}"))
    assert body["@odata.context"] == ctx("v1.0", "directoryObjects/$entity")
    assert body["@odata.type"] == "#microsoft.graph.user" and body["id"] == uid
    stranger = await api.create_user()
    assert_error(await api.get(f"/v1.0/groups/{gid}/members/{stranger['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(stranger["id"]))
    assert_error(await api.get(f"/v1.0/groups/{gid}/members/xyz"), 400, "Request_BadRequest", MSG_INVALID_ID.format("xyz"))


@pytest.mark.parametrize("version", VERSIONS)
async def test_member_refs(api: Api, version: str) -> None:
    gid, uid = await _group_with_member(api)
    body = assert_odata_json(await api.get(f"/{version}/groups/{gid}/members/$ref"))
    assert body == {
        "@odata.context": f"{BASE_URL}/{version}/$metadata#Collection($ref)",
        "value": [{"@odata.id": f"{BASE_URL}/{version}/directoryObjects/{uid}"}],
    }


@pytest.mark.parametrize("version", VERSIONS)
async def test_members_count_segment(api: Api, version: str) -> None:
    objs = await seed_members(api)
    group = await api.create_group()
    for o in objs.values():
        assert_no_content(await api.add_member(group["id"], str(o["id"])))
    path = f"/{version}/groups/{group['id']}/members/$count"
    assert_error(await api.get(path), 400, "Request_BadRequest", MSG_COUNT)
    resp = await api.get(path, headers={"ConsistencyLevel": "eventual"})
    assert resp.status_code == 200 and resp.text == "5"
    assert resp.headers["content-type"].startswith("text/plain")
    resp = await api.get(f"/{version}/groups/{group['id']}/members/microsoft.graph.user/$count", headers={"ConsistencyLevel": "eventual"})
    assert resp.text == "1"
    assert_error(await api.get(f"/{version}/groups/{group['id']}/members/microsoft.graph.user/$count"), 400, "Request_BadRequest", MSG_COUNT)


async def test_members_cast(api: Api) -> None:
    objs = await seed_members(api)
    group = await api.create_group()
    for o in objs.values():
        assert_no_content(await api.add_member(group["id"], str(o["id"])))
    for cast, type_, entity_set in [
        ("microsoft.graph.user", "user", "users"),
        ("graph.group", "group", "groups"),
        ("microsoft.graph.device", "device", "devices"),
        ("microsoft.graph.servicePrincipal", "servicePrincipal", "servicePrincipals"),
        ("Microsoft.Graph.OrgContact", "orgContact", "contacts"),
    ]:
        body = assert_odata_json(await api.get(f"/v1.0/groups/{group['id']}/members/{cast}"))
        assert body["@odata.context"] == ctx("v1.0", entity_set)
        assert [i["id"] for i in body["value"]] == [objs[type_]["id"]]
    sel = assert_odata_json(await api.get(f"/v1.0/groups/{group['id']}/members/microsoft.graph.user", params={"$select": "displayName,id"}))
    assert sel["@odata.context"] == ctx("v1.0", "users(displayName,id)")
    assert [set(i) - {"@odata.type"} for i in sel["value"]] == [{"displayName", "id"}]


async def test_members_cast_to_type_group_cannot_hold(api: Api) -> None:
    m365 = await api.create_group(kind="unified")
    for cast, t in (("microsoft.graph.group", "group"), ("microsoft.graph.device", "device")):
        resp = await api.get(f"/v1.0/groups/{m365['id']}/members/{cast}")
        assert_error(resp, 400, "Request_UnsupportedQuery", f"The group cannot contain members of type '{t}'; the type cast is not supported.")
    assert (await api.get(f"/v1.0/groups/{m365['id']}/members/microsoft.graph.user")).status_code == 200


async def test_members_of_missing_group(api: Api) -> None:
    missing = str(uuid.uuid4())
    for suffix in ("members", "members/$ref", "members/microsoft.graph.user", "owners"):
        assert_error(await api.get(f"/v1.0/groups/{missing}/{suffix}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    resp = await api.get(f"/v1.0/groups/{missing}/members/$count", headers={"ConsistencyLevel": "eventual"})
    assert_error(resp, 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))


async def test_deleted_member_disappears_from_listing(api: Api) -> None:
    gid, uid = await _group_with_member(api)
    assert_no_content(await api.delete(f"/v1.0/users/{uid}"))
    assert await api.member_ids(gid) == set()
    resp = await api.get(f"/v1.0/groups/{gid}/members/$count", headers={"ConsistencyLevel": "eventual"})
    assert resp.text == "0"


# -- concurrency: the single writer keeps the rules -------------------------------------------------
async def test_concurrent_duplicate_adds(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    resps = await asyncio.gather(*(api.add_member(group["id"], user["id"]) for _ in range(10)))
    assert sorted(r.status_code for r in resps) == [204] + [400] * 9
    for r in resps:
        if r.status_code == 400:
            assert_error(r, 400, "Request_BadRequest", MSG_ALREADY.format("members"))
    assert await api.member_ids(group["id"]) == {user["id"]}


async def test_concurrent_adds_and_removes(api: Api) -> None:
    group = await api.create_group()
    ids = api.bulk_users(30)
    resps = await asyncio.gather(*(api.add_member(group["id"], i) for i in ids))
    assert all(r.status_code == 204 for r in resps)
    resps = await asyncio.gather(*(api.delete(f"/v1.0/groups/{group['id']}/members/{i}/$ref") for i in ids[:15]))
    assert all(r.status_code == 204 for r in resps)
    assert await api.member_ids(group["id"]) == set(ids[15:])


async def test_concurrent_cycle_attempts(api: Api) -> None:
    """A ⊃ B and B ⊃ A sent at once: exactly one wins."""
    a = await api.create_group("A")
    b = await api.create_group("B")
    r1, r2 = await asyncio.gather(api.add_member(a["id"], b["id"]), api.add_member(b["id"], a["id"]))
    assert sorted((r1.status_code, r2.status_code)) == [204, 400]
    assert_error(r1 if r1.status_code == 400 else r2, 400, "Request_BadRequest", MSG_CYCLE)
