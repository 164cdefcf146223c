"""Owners over HTTP: list, add, remove, last owner, 100-owner quota, read-only kinds (docs/behaviour.md#group-kinds)."""

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
    MSG_FORBIDDEN,
    MSG_INVALID_ID,
    MSG_LAST_OWNER,
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


def quota(n: int) -> str:
    return f"Unable to perform operation as '{n}' would exceed the maximum quota count '100' for forward-link 'owners'."


@pytest.mark.parametrize("version", VERSIONS)
async def test_add_and_list_owners(api: Api, version: str) -> None:
    group = await api.create_group()
    user = await api.create_user("Owner U")
    sp = await api.seed("servicePrincipal", "Owner SP", appId=str(uuid.uuid4()))
    assert_no_content(await api.add_owner(group["id"], user["id"], version=version))
    resp = await api.post(f"/{version}/groups/{group['id']}/owners/$ref", json={"@odata.id": ref(sp["id"], "directoryObjects", version)})
    assert_no_content(resp)
    body = assert_odata_json(await api.get(f"/{version}/groups/{group['id']}/owners"))
    assert body["@odata.context"] == ctx(version, "directoryObjects")
    assert {i["id"]: i["@odata.type"] for i in body["value"]} == {
        user["id"]: "#microsoft.graph.user",
        sp["id"]: "#microsoft.graph.servicePrincipal",
    }
    cast = assert_odata_json(await api.get(f"/{version}/groups/{group['id']}/owners/microsoft.graph.user"))
    assert cast["@odata.context"] == ctx(version, "users")
    assert [i["id"] for i in cast["value"]] == [user["id"]]
    refs = assert_odata_json(await api.get(f"/{version}/groups/{group['id']}/owners/$ref"))
    assert {r["@odata.id"] for r in refs["value"]} == {f"{BASE_URL}/{version}/directoryObjects/{i}" for i in (user["id"], sp["id"])}
    count = await api.get(f"/{version}/groups/{group['id']}/owners/$count", headers={"ConsistencyLevel": "eventual"})
    assert count.status_code == 200 and count.text == "2"
    assert_error(await api.get(f"/{version}/groups/{group['id']}/owners/$count"), 400, "Request_BadRequest", MSG_COUNT)
    # owners are not members
    assert await api.member_ids(group["id"]) == set()


async def test_add_owner_errors(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    other_group = await api.create_group()
    device = await api.seed("device", "Dev", deviceId=str(uuid.uuid4()))
    missing = str(uuid.uuid4())
    path = f"/v1.0/groups/{group['id']}/owners/$ref"
    assert_no_content(await api.add_owner(group["id"], user["id"]))
    assert_error(await api.add_owner(group["id"], user["id"]), 400, "Request_BadRequest", MSG_ALREADY.format("owners"))
    assert_error(await api.add_owner(group["id"], missing), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert_error(await api.add_owner(missing, user["id"]), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert_error(await api.add_owner("zzz", user["id"]), 400, "Request_BadRequest", MSG_INVALID_ID.format("zzz"))
    assert_error(await api.post(path, json={"@odata.id": f"{GRAPH}/v1.0/users/zzz"}), 400, "Request_BadRequest", MSG_INVALID_ID.format("zzz"))
    for obj, t in ((other_group, "group"), (device, "device")):
        resp = await api.post(path, json={"@odata.id": ref(obj["id"])})
        assert_error(resp, 400, "Request_BadRequest", f"An object of type '{t}' is unsupported as an owner of a group.")
    assert await api.owner_ids(group["id"]) == {user["id"]}


async def test_add_owner_permissions(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    for roles in (["GroupMember.ReadWrite.All"], ["Group.Read.All"]):
        assert_error(await api.add_owner(group["id"], user["id"], token=api.token(roles)), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert_no_content(await api.add_owner(group["id"], user["id"], token=api.token(["Group.ReadWrite.All"])))


async def test_owner_quota_101st(api: Api) -> None:
    group = await api.create_group()
    ids = api.bulk_users(101)
    for start in range(0, 100, 20):
        body = {"owners@odata.bind": [ref(i, "users") for i in ids[start : start + 20]]}
        assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json=body))
    assert len(await api.owner_ids(group["id"])) == 100
    assert_error(await api.add_owner(group["id"], ids[100]), 403, "Directory_QuotaExceeded", quota(101))
    assert len(await api.owner_ids(group["id"])) == 100


async def test_owner_quota_by_patch_bind_is_all_or_nothing(api: Api) -> None:
    group = await api.create_group()
    ids = api.bulk_users(105)
    for start in range(0, 100, 20):
        body = {"owners@odata.bind": [ref(i, "users") for i in ids[start : start + 20]]}
        assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json=body))
    assert_no_content(await api.delete(f"/v1.0/groups/{group['id']}/owners/{ids[0]}/$ref"))  # 99 owners
    body = {"owners@odata.bind": [ref(i, "users") for i in ids[100:103]]}  # would make 102
    assert_error(await api.patch(f"/v1.0/groups/{group['id']}", json=body), 403, "Directory_QuotaExceeded", quota(102))
    assert len(await api.owner_ids(group["id"])) == 99


async def test_create_group_owner_bind_duplicate_and_type(api: Api) -> None:
    user = await api.create_user()
    body = {
        "displayName": "x",
        "mailNickname": "x",
        "mailEnabled": False,
        "securityEnabled": True,
        "owners@odata.bind": [ref(user["id"], "users"), ref(user["id"])],
    }
    assert_error(await api.post("/v1.0/groups", json=body), 400, "Request_BadRequest", MSG_ALREADY.format("owners"))
    assert await api.ids("/v1.0/groups") == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_remove_owner_and_last_owner(api: Api, version: str) -> None:
    group = await api.create_group()
    a = await api.create_user()
    b = await api.create_user()
    for u in (a, b):
        assert_no_content(await api.add_owner(group["id"], u["id"]))
    assert_no_content(await api.delete(f"/{version}/groups/{group['id']}/owners/{a['id']}/$ref"))
    assert await api.owner_ids(group["id"]) == {b["id"]}
    assert_error(await api.delete(f"/{version}/groups/{group['id']}/owners/{b['id']}/$ref"), 400, "Request_BadRequest", MSG_LAST_OWNER)
    at_id = quote(ref(b["id"]), safe="")
    assert_error(await api.delete(f"/{version}/groups/{group['id']}/owners/$ref?@id={at_id}"), 400, "Request_BadRequest", MSG_LAST_OWNER)
    assert await api.owner_ids(group["id"]) == {b["id"]}


async def test_remove_owner_by_at_id(api: Api) -> None:
    group = await api.create_group()
    a = await api.create_user()
    b = await api.create_user()
    for u in (a, b):
        assert_no_content(await api.add_owner(group["id"], u["id"]))
    at_id = quote(ref(a["id"], "users", "beta"), safe="")
    assert_no_content(await api.delete(f"/v1.0/groups/{group['id']}/owners/$ref?@id={at_id}"))
    assert await api.owner_ids(group["id"]) == {b["id"]}


async def test_remove_owner_errors(api: Api) -> None:
    group = await api.create_group()
    a = await api.create_user()
    b = await api.create_user()
    stranger = await api.create_user()
    for u in (a, b):
        assert_no_content(await api.add_owner(group["id"], u["id"]))
    missing = str(uuid.uuid4())
    path = f"/v1.0/groups/{group['id']}/owners"
    assert_error(await api.delete(f"{path}/{stranger['id']}/$ref"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(stranger["id"]))
    assert_error(await api.delete(f"{path}/{missing}/$ref"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert_error(await api.delete(f"/v1.0/groups/{missing}/owners/{a['id']}/$ref"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert_error(await api.delete(f"{path}/nope/$ref"), 400, "Request_BadRequest", MSG_INVALID_ID.format("nope"))
    assert_error(await api.delete(f"{path}/{a['id']}/$ref", token=api.token(["GroupMember.ReadWrite.All"])), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert await api.owner_ids(group["id"]) == {a["id"], b["id"]}


async def test_remove_owner_delegated(api: Api) -> None:
    a = await api.create_user()
    b = await api.create_user()
    stranger = await api.create_user()
    group = await api.create_group(**{"owners@odata.bind": [ref(a["id"], "users"), ref(b["id"], "users")]})
    scopes = ["Group.ReadWrite.All"]
    path = f"/v1.0/groups/{group['id']}/owners/{b['id']}/$ref"
    assert_error(await api.delete(path, token=api.token(user_id=stranger["id"], scopes=scopes)), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert_no_content(await api.delete(path, token=api.token(user_id=a["id"], scopes=scopes)))


@pytest.mark.parametrize(("kind", "message"), [("distribution", MSG_MAIL_UPDATE), ("synced", MSG_ONPREM)])
async def test_owners_of_read_only_groups(api: Api, kind: str, message: str) -> None:
    group = await api.seed_group(kind)
    user = await api.create_user()
    assert_error(await api.add_owner(group["id"], user["id"]), 400, "Request_BadRequest", message)
    assert_error(await api.patch(f"/v1.0/groups/{group['id']}", json={"owners@odata.bind": [ref(user["id"], "users")]}), 400, "Request_BadRequest", message)
    assert await api.owner_ids(group["id"]) == set()


async def test_owners_bind_more_than_20(api: Api) -> None:
    group = await api.create_group()
    ids = api.bulk_users(21)
    body = {"owners@odata.bind": [ref(i, "users") for i in ids]}
    assert_error(await api.patch(f"/v1.0/groups/{group['id']}", json=body), 400, "Request_BadRequest", MSG_TOO_MANY_LINKS)
    assert await api.owner_ids(group["id"]) == set()


async def test_deleted_owner_not_counted(api: Api) -> None:
    """A soft-deleted owner is no longer listed and does not keep the 'last owner' alive."""
    group = await api.create_group()
    a = await api.create_user()
    b = await api.create_user()
    for u in (a, b):
        assert_no_content(await api.add_owner(group["id"], u["id"]))
    assert_no_content(await api.delete(f"/v1.0/users/{a['id']}"))
    assert await api.owner_ids(group["id"]) == {b["id"]}
    assert_error(await api.delete(f"/v1.0/groups/{group['id']}/owners/{b['id']}/$ref"), 400, "Request_BadRequest", MSG_LAST_OWNER)


async def test_concurrent_owner_adds_respect_the_quota(api: Api) -> None:
    group = await api.create_group()
    ids = api.bulk_users(103)
    for start in range(0, 98, 20):
        body = {"owners@odata.bind": [ref(i, "users") for i in ids[start : min(start + 20, 98)]]}
        assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json=body))
    resps = await asyncio.gather(*(api.add_owner(group["id"], i) for i in ids[98:]))
    assert sorted(r.status_code for r in resps) == [204, 204, 403, 403, 403]
    for r in resps:
        if r.status_code == 403:
            assert_error(r, 403, "Directory_QuotaExceeded", quota(101))
    assert len(await api.owner_ids(group["id"])) == 100


async def test_mail_enabled_security_owners_follow_the_setting(make_api) -> None:  # type: ignore[no-untyped-def]
    """``allow`` (the 2015 seed page) manages a mail-enabled security group like a security group;
    ``refuse`` (today's Graph, docs/behaviour.md#group-kinds) answers the read-only 400 for owners too."""
    allow: Api = make_api()
    group = await allow.seed_group("mailSecurity")
    a, b = await allow.create_user(), await allow.create_user()
    for u in (a, b):
        assert_no_content(await allow.add_owner(group["id"], u["id"]))
    assert_no_content(await allow.delete(f"/v1.0/groups/{group['id']}/owners/{a['id']}/$ref"))
    assert await allow.owner_ids(group["id"]) == {b["id"]}

    refuse: Api = make_api(mail_enabled_security_membership="refuse")
    group = await refuse.seed_group("mailSecurity")
    a, b = await refuse.create_user(), await refuse.create_user()
    assert_error(await refuse.add_owner(group["id"], a["id"]), 400, "Request_BadRequest", MSG_MAIL_UPDATE)
    body = {"owners@odata.bind": [ref(a["id"], "users"), ref(b["id"], "users")]}
    assert_error(await refuse.patch(f"/v1.0/groups/{group['id']}", json=body), 400, "Request_BadRequest", MSG_MAIL_UPDATE)
    assert await refuse.owner_ids(group["id"]) == set()
