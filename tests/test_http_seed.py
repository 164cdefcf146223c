"""``POST /graphdir/admin/seed`` checks its body as the Graph routes do (issue 9): property types,
the tenant's verified domains, members that exist, no storage error text; and it accepts the
format of ``graphdir seed`` files (a list, written in one transaction) (docs/seeding.md)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from http_helpers import DOMAIN, MSG_NOT_FOUND, Api, assert_error

pytestmark = pytest.mark.anyio

MSG_DOMAIN = "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization."


async def seed(api: Api, body: Any) -> httpx.Response:
    return await api.post("/graphdir/admin/seed", json=body, token=api.admin_token)


async def count(api: Api, entity_set: str, name: str) -> int:
    resp = await api.get(f"/v1.0/{entity_set}?$filter=displayName eq '{name}'&$count=true", headers={"ConsistencyLevel": "eventual"})
    assert resp.status_code == 200, resp.text
    return len(resp.json()["value"])


async def test_a_list_is_seeded_in_one_request(api: Api) -> None:
    nick = api.unique("s")
    body = [
        {"type": "user", "displayName": f"{nick} user", "userPrincipalName": f"{nick}@{DOMAIN}"},
        {"type": "group", "displayName": f"{nick} DL", "mailEnabled": True, "securityEnabled": False, "mailNickname": nick,
         "members": [f"{nick}@{DOMAIN}"]},
        {"type": "device", "displayName": f"{nick} laptop", "deviceId": str(uuid.uuid4())},
    ]  # fmt: skip
    resp = await seed(api, body)
    assert resp.status_code == 201, resp.text
    value = resp.json()["value"]
    assert [v["displayName"] for v in value] == [f"{nick} user", f"{nick} DL", f"{nick} laptop"]
    assert [v["@odata.type"] for v in value] == ["#microsoft.graph.user", "#microsoft.graph.group", "#microsoft.graph.device"]
    assert await api.member_ids(value[1]["id"]) == {value[0]["id"]}
    assert value[1]["mail"] == f"{nick}@{DOMAIN}"


@pytest.mark.parametrize(("item", "status", "message"), [
    ({"type": "group", "displayName": 5}, 400, "Invalid value specified for property 'displayName' of resource 'Group'."),
    ({"type": "group", "displayName": "g", "mailEnabled": "yes"}, 400, "Invalid value specified for property 'mailEnabled' of resource 'Group'."),
    ({"type": "user", "displayName": "u", "accountEnabled": 1}, 400, "Invalid value specified for property 'accountEnabled' of resource 'User'."),
    ({"type": "user", "displayName": "u", "userPrincipalName": "u@fabrikam.com"}, 400, MSG_DOMAIN),
    ({"type": "user", "displayName": "u", "userPrincipalName": 7}, 400, "Invalid value specified for property 'userPrincipalName' of resource 'User'."),
    ({"type": "device", "displayName": "d", "colour": "red"}, 400, None),
    ({"type": "group", "displayName": "g", "id": "not-a-guid"}, 400, "Invalid value specified for property 'id' of resource 'Group'."),
    ({"type": "group", "displayName": "g", "members": ["nobody@" + DOMAIN]}, 404, MSG_NOT_FOUND.format("nobody@" + DOMAIN)),
    ({"type": "group", "displayName": "g", "members": "x"}, 400, None),
])  # fmt: skip
async def test_invalid_items_are_refused_and_nothing_is_written(api: Api, item: dict[str, Any], status: int, message: str | None) -> None:
    marker = api.unique("first")
    code = "Request_ResourceNotFound" if status == 404 else "BadRequest" if "colour" in item else "Request_BadRequest"
    for body in (item, [{"type": "user", "displayName": marker}, item]):
        err = assert_error(await seed(api, body), status, code, message)
        assert "colour" not in item or "colour" in err["message"]
    assert await count(api, "users", marker) == 0  # the valid first item of the list was not written either


async def test_duplicates_answer_graph_errors_without_storage_text(api: Api) -> None:
    user = await api.create_user()
    resp = await seed(api, {"type": "user", "displayName": "again", "userPrincipalName": user["userPrincipalName"]})
    assert_error(resp, 400, "Request_BadRequest", "Another object with the same value for property userPrincipalName already exists.")
    resp = await seed(api, [{"type": "device", "displayName": "d", "id": user["id"]}])
    assert_error(resp, 400, "Request_BadRequest", "Another object with the same value for property id already exists.")
    twice = [{"type": "user", "displayName": "a", "userPrincipalName": f"twice@{DOMAIN}"},
             {"type": "user", "displayName": "b", "userPrincipalName": f"TWICE@{DOMAIN}"}]
    resp = await seed(api, twice)
    assert_error(resp, 400, "Request_BadRequest")
    for r in (resp,):
        text = r.text.lower()
        assert "sqlite" not in text and "unique" not in text and "constraint" not in text and "storeerror" not in text


@pytest.mark.parametrize(("body", "code"), [(5, "BadRequest"), ("x", "BadRequest"), (None, "BadRequest"),
                                            ({"tenants": []}, "Request_BadRequest"), ([5], "Request_BadRequest")])  # fmt: skip
async def test_bodies_of_the_wrong_shape(api: Api, body: Any, code: str) -> None:
    assert_error(await seed(api, body), 400, code)
