"""A user's ``identities`` (issue 9): Graph returns at least the userPrincipalName identity of a member
user (https://learn.microsoft.com/en-us/graph/api/user-get, example 3), only with ``$select``
(it is not among user-get's default properties), and it follows every change of the UPN.
"""

from __future__ import annotations

from typing import Any

import pytest

from http_helpers import DOMAIN, Api, assert_error, assert_no_content, assert_odata_json, ref

pytestmark = pytest.mark.anyio

VERSIONS = ["v1.0", "beta"]
MSG_INVALID = "Invalid value specified for property 'identities' of resource 'User'."


def upn_identity(upn: str) -> dict[str, str]:
    return {"signInType": "userPrincipalName", "issuer": upn.rpartition("@")[2], "issuerAssignedId": upn}


async def identities(api: Api, version: str, uid: str) -> Any:
    body = assert_odata_json(await api.get(f"/{version}/users/{uid}", params={"$select": "id,identities"}))
    assert body["@odata.context"] == f"http://testserver/{version}/$metadata#users(id,identities)/$entity"
    return body["identities"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_identities_with_select_only(api: Api, version: str) -> None:
    user = await api.create_user()
    assert "identities" not in user  # the create response carries the default set
    assert "identities" not in assert_odata_json(await api.get(f"/{version}/users/{user['id']}"))
    assert await identities(api, version, user["id"]) == [upn_identity(user["userPrincipalName"])]


@pytest.mark.parametrize("version", VERSIONS)
async def test_identities_follow_the_upn(api: Api, version: str) -> None:
    user = await api.create_user()
    new_upn = f"renamed-{user['id'][:8]}@{DOMAIN}"
    assert_no_content(await api.patch(f"/{version}/users/{user['id']}", json={"userPrincipalName": new_upn}))
    assert await identities(api, version, user["id"]) == [upn_identity(new_upn)]
    # by the new UPN too
    body = assert_odata_json(await api.get(f"/{version}/users/{new_upn}", params={"$select": "identities"}))
    assert body["identities"] == [upn_identity(new_upn)]


@pytest.mark.parametrize("version", VERSIONS)
async def test_identities_in_listings(api: Api, version: str) -> None:
    user = await api.create_user()
    seeded = await api.seed("user", userPrincipalName=f"seeded-{user['id'][:8]}@{DOMAIN}")
    group = await api.create_group(version=version, **{"members@odata.bind": [ref(user["id"]), ref(seeded["id"])]})
    listing = assert_odata_json(await api.get(f"/{version}/users", params={"$select": "id,userPrincipalName,identities"}))["value"]
    assert listing and all(u["identities"] == [upn_identity(u["userPrincipalName"])] for u in listing)
    members = assert_odata_json(await api.get(f"/{version}/groups/{group['id']}/members", params={"$select": "id,identities"}))["value"]
    got = {m["id"]: m["identities"] for m in members}
    assert got == {user["id"]: [upn_identity(user["userPrincipalName"])], seeded["id"]: [upn_identity(seeded["userPrincipalName"])]}
    cast = assert_odata_json(await api.get(f"/{version}/groups/{group['id']}/members/microsoft.graph.user", params={"$select": "identities"}))
    assert sorted(len(m["identities"]) for m in cast["value"]) == [1, 1]


async def test_other_identities_are_kept_after_the_upn_one(api: Api) -> None:
    email = {"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "jsmith@yahoo.com"}
    federated = {"signInType": "federated", "issuer": "facebook.com", "issuerAssignedId": "5eecb0cd"}
    user = await api.create_user(identities=[email])
    upn = user["userPrincipalName"]
    assert await identities(api, "v1.0", user["id"]) == [upn_identity(upn), email]
    # the UPN identity may be sent back as read (it names the UPN); it stays derived
    assert_no_content(await api.patch(f"/v1.0/users/{user['id']}", json={"identities": [upn_identity(upn), federated]}))
    assert await identities(api, "beta", user["id"]) == [upn_identity(upn), federated]


async def test_invalid_identities_are_refused(api: Api) -> None:
    user = await api.create_user()
    upn = user["userPrincipalName"]
    bad: list[Any] = [
        [upn_identity(f"someone-else@{DOMAIN}")],  # the UPN identity must name the UPN
        [{"signInType": "emailAddress", "issuerAssignedId": "a@b.c"}],  # no issuer
        [{"issuer": DOMAIN, "issuerAssignedId": "a@b.c"}],  # no sign-in type
        [{"signInType": "emailAddress", "issuer": DOMAIN, "issuerAssignedId": "a@b.c", "color": "red"}],  # not objectIdentity's
        [{"signInType": 5, "issuer": DOMAIN}],
        ["userPrincipalName"],
    ]
    for value in bad:
        assert_error(await api.patch(f"/v1.0/users/{user['id']}", json={"identities": value}), 400, "Request_BadRequest", MSG_INVALID)
    assert await identities(api, "v1.0", user["id"]) == [upn_identity(upn)]


async def test_a_user_read_and_sent_back_is_accepted(api: Api) -> None:
    """Read-only values sent unchanged (``id``, ``createdDateTime``) are not a change."""
    user = await api.create_user()
    read = assert_odata_json(await api.get(f"/v1.0/users/{user['id']}", params={"$select": "id,displayName,createdDateTime,jobTitle"}))
    body = {k: v for k, v in read.items() if not k.startswith("@")} | {"jobTitle": "Round trip"}
    assert_no_content(await api.patch(f"/v1.0/users/{user['id']}", json=body))
    assert assert_odata_json(await api.get(f"/v1.0/users/{user['id']}"))["jobTitle"] == "Round trip"


async def test_a_seeded_user_without_upn_has_no_derived_identity(api: Api) -> None:
    seeded = await api.seed("user")
    assert await identities(api, "v1.0", seeded["id"]) == []
