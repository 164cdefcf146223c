"""``PATCH /groups/{id}`` with what clients really send (issue 9).

https://learn.microsoft.com/en-us/graph/api/group-update's own example sends, on a Microsoft 365
group, ``groupTypes`` and ``mailEnabled`` unchanged with a new description, displayName and
mailNickname: Graph answers ``204``. Read-only values sent unchanged are accepted; real changes of
the group's kind follow Graph where it is known and docs/behaviour.md where it is not.
"""

from __future__ import annotations

from typing import Any

import pytest

from http_helpers import MSG_FORBIDDEN, MSG_REQUIRED, Api, assert_error, assert_no_content, assert_odata_json

pytestmark = pytest.mark.anyio

VERSIONS = ["v1.0", "beta"]
#: group-update.md, "Example", the request body verbatim.
DOC_EXAMPLE_BODY = """{
  "description": "Library Assist",
  "displayName": "Library Assist",
  "groupTypes": [
    "Unified"
  ],
  "mailEnabled": true,
  "mailNickname": "library-help"
}"""
MSG_INVALID = "Invalid value specified for property '{}' of resource 'Group'."


async def patch_raw(api: Api, version: str, gid: str, raw: str) -> Any:
    return await api.request("PATCH", f"/{version}/groups/{gid}", content=raw.encode(), headers={"Content-Type": "application/json"})


async def get_group(api: Api, version: str, gid: str) -> dict[str, Any]:
    return assert_odata_json(await api.get(f"/{version}/groups/{gid}"))


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_doc_pages_example_on_a_microsoft_365_group(api: Api, version: str) -> None:
    group = await api.create_group("Before", kind="unified", version=version)
    assert_no_content(await patch_raw(api, version, group["id"], DOC_EXAMPLE_BODY))
    after = await get_group(api, version, group["id"])
    assert (after["description"], after["displayName"], after["mailNickname"]) == ("Library Assist", "Library Assist", "library-help")
    assert (after["groupTypes"], after["mailEnabled"], after["securityEnabled"]) == (["Unified"], True, False)
    assert after["mail"] == group["mail"]  # the primary SMTP address is Exchange's; a new alias does not change it


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_same_body_cannot_turn_a_security_group_into_a_microsoft_365_group(api: Api, version: str) -> None:
    group = await api.create_group("Security", version=version)
    assert_error(await patch_raw(api, version, group["id"], DOC_EXAMPLE_BODY), 400, "Request_BadRequest", MSG_INVALID.format("groupTypes"))
    after = await get_group(api, version, group["id"])
    assert (after["displayName"], after["groupTypes"], after["mailEnabled"]) == ("Security", [], False)  # nothing written


async def test_read_only_values_sent_unchanged_are_accepted(api: Api) -> None:
    """What a client read and sends back (an SDK model round trip) is not a change."""
    group = await api.create_group(kind="unified")
    read = await get_group(api, "v1.0", group["id"])
    body = {k: v for k, v in read.items() if not k.startswith("@")}
    body["description"] = "round trip"
    assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json=body))
    after = await get_group(api, "v1.0", group["id"])
    assert after == {**read, "description": "round trip"}
    # a read-only value that differs is still refused, and nothing is written
    for prop, value in (("createdDateTime", "2001-01-01T00:00:00Z"), ("mail", "other@contoso.onmicrosoft.com"), ("id", "x")):
        resp = await api.patch(f"/v1.0/groups/{group['id']}", json={"description": "never", prop: value})
        assert_error(resp, 400, "Request_BadRequest", f"Property '{prop}' is read-only and cannot be set.")
    assert (await get_group(api, "v1.0", group["id"]))["description"] == "round trip"


@pytest.mark.parametrize("version", VERSIONS)
async def test_security_enabled_on_a_microsoft_365_group(api: Api, version: str) -> None:
    """securityEnabled is updatable (group-update.md); a Microsoft 365 group may be either."""
    group = await api.create_group(kind="unified", version=version)
    for value in (True, False):
        assert_no_content(await api.patch(f"/{version}/groups/{group['id']}", json={"securityEnabled": value}))
        assert (await get_group(api, version, group["id"]))["securityEnabled"] is value


@pytest.mark.parametrize("version", VERSIONS)
async def test_kind_changes_graph_refuses(api: Api, version: str) -> None:
    security = await api.create_group(version=version)
    unified = await api.create_group(kind="unified", version=version)
    cases = [
        (security, {"securityEnabled": False}, MSG_INVALID.format("securityEnabled")),  # neither mail- nor security-enabled
        (security, {"mailEnabled": True}, MSG_INVALID.format("mailEnabled")),  # mail-enabled security: Exchange's
        (unified, {"mailEnabled": False}, MSG_INVALID.format("mailEnabled")),  # a Microsoft 365 group is mail-enabled
        (unified, {"groupTypes": []}, MSG_INVALID.format("groupTypes")),  # no conversion to a security group
        (security, {"groupTypes": ["Unified"]}, MSG_INVALID.format("groupTypes")),
        (security, {"groupTypes": ["Dynamic"]}, MSG_INVALID.format("groupTypes")),  # unknown value
        (security, {"groupTypes": ["DynamicMembership"]}, MSG_REQUIRED.format("membershipRule")),  # a dynamic group needs its rule
    ]
    for group, body, message in cases:
        before = await get_group(api, version, group["id"])
        assert_error(await api.patch(f"/{version}/groups/{group['id']}", json={"description": "never", **body}), 400, "Request_BadRequest", message)
        assert await get_group(api, version, group["id"]) == before


@pytest.mark.parametrize("version", VERSIONS)
async def test_static_to_dynamic_and_back(api: Api, version: str) -> None:
    """Adding DynamicMembership (with a rule) makes membership rule-driven: processing starts On and
    manual adds are refused (403); removing it makes it static again: the rule goes, members stay."""
    group = await api.create_group(version=version)
    member = await api.create_user()
    other = await api.create_user()
    assert (await api.add_member(group["id"], member["id"], version=version)).status_code == 204
    rule = 'user.department -eq "Sales"'
    body = {"groupTypes": ["dynamicmembership"], "membershipRule": rule}
    assert_no_content(await api.patch(f"/{version}/groups/{group['id']}", json=body))
    after = await get_group(api, version, group["id"])
    assert (after["groupTypes"], after["membershipRule"], after["membershipRuleProcessingState"]) == (["DynamicMembership"], rule, "On")
    assert_error(await api.add_member(group["id"], other["id"], version=version), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert_no_content(await api.patch(f"/{version}/groups/{group['id']}", json={"membershipRuleProcessingState": "Paused"}))
    assert_no_content(await api.patch(f"/{version}/groups/{group['id']}", json={"groupTypes": []}))
    after = await get_group(api, version, group["id"])
    assert (after["groupTypes"], after["membershipRule"], after["membershipRuleProcessingState"]) == ([], None, None)
    assert await api.member_ids(group["id"], version) == {member["id"]}
    assert (await api.add_member(group["id"], other["id"], version=version)).status_code == 204


async def test_microsoft_365_group_becomes_dynamic(api: Api) -> None:
    group = await api.create_group(kind="unified")
    body = {"groupTypes": ["Unified", "DynamicMembership"], "membershipRule": 'user.city -eq "Oslo"', "membershipRuleProcessingState": "Paused"}
    assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json=body))
    after = await get_group(api, "v1.0", group["id"])
    assert (after["groupTypes"], after["membershipRuleProcessingState"]) == (["Unified", "DynamicMembership"], "Paused")


async def test_role_assignable_groups_stay_static_and_security_enabled(api: Api) -> None:
    token = api.token(["Directory.ReadWrite.All", "RoleManagement.ReadWrite.Directory"])
    group = await api.create_group(token=token, isAssignableToRole=True)
    for body, prop in (({"securityEnabled": False}, "securityEnabled"), ({"groupTypes": ["DynamicMembership"], "membershipRule": "x"}, "groupTypes")):
        assert_error(await api.patch(f"/v1.0/groups/{group['id']}", json=body, token=token), 400, "Request_BadRequest", MSG_INVALID.format(prop))
    assert (await get_group(api, "v1.0", group["id"]))["groupTypes"] == []
