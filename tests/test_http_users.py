"""Users over HTTP: create, get (id, UPN, key syntax, /me), list, update, delete, memberOf (docs/behaviour.md#groups-and-users)."""

from __future__ import annotations

import uuid

import pytest

from http_helpers import (
    DOMAIN,
    GUID_RE,
    MSG_FORBIDDEN,
    MSG_INVALID_ID,
    MSG_NOT_FOUND,
    MSG_REQUIRED,
    PASSWORD,
    Api,
    assert_error,
    assert_no_content,
    assert_odata_json,
    ctx,
)

pytestmark = pytest.mark.anyio

USER_DEFAULTS = {
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
}
MSG_DOMAIN = "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization."
MSG_PASSWORD = "The specified password does not comply with password complexity requirements. Please provide a different password."
MSG_DUP_UPN = "Another object with the same value for property userPrincipalName already exists."
MSG_ME_APP = "/me request is only valid with delegated authentication flow."


def user_body(nick: str = "adelev", **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "accountEnabled": True,
        "displayName": "Adele Vance",
        "mailNickname": nick,
        "userPrincipalName": f"{nick}@{DOMAIN}",
        "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": PASSWORD},
    }
    body.update(extra)
    return body


# -- create ------------------------------------------------------------------------------------
async def test_create_user_201_default_properties(api: Api) -> None:
    resp = await api.post("/v1.0/users", json=user_body(givenName="Adele", surname="Vance", jobTitle="PM"))
    body = assert_odata_json(resp, 201)
    assert body["@odata.context"] == ctx("v1.0", "users/$entity")
    assert set(body) - {"@odata.context"} == USER_DEFAULTS
    assert GUID_RE.match(body["id"])
    assert body["displayName"] == "Adele Vance"
    assert body["userPrincipalName"] == f"adelev@{DOMAIN}"
    assert body["givenName"] == "Adele" and body["surname"] == "Vance" and body["jobTitle"] == "PM"
    assert body["businessPhones"] == []
    assert body["mail"] is None  # null-valued defaults are returned, not omitted
    assert "passwordProfile" not in body and "accountEnabled" not in body


async def test_create_user_accepts_odata_type_annotation(api: Api) -> None:
    """The SDKs send ``@odata.type`` in bodies (docs/behaviour.md#bodies-and-references)."""
    resp = await api.post("/v1.0/users", json=user_body(**{"@odata.type": "#microsoft.graph.user"}))
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize("missing", ["accountEnabled", "displayName", "mailNickname", "passwordProfile", "userPrincipalName"])
async def test_create_user_required_property(api: Api, missing: str) -> None:
    body = user_body()
    del body[missing]
    assert_error(await api.post("/v1.0/users", json=body), 400, "Request_BadRequest", MSG_REQUIRED.format(missing))
    assert await api.ids("/v1.0/users") == []


async def test_create_user_empty_display_name_is_missing(api: Api) -> None:
    assert_error(await api.post("/v1.0/users", json=user_body(displayName="")), 400, "Request_BadRequest", MSG_REQUIRED.format("displayName"))


async def test_create_user_missing_password_in_profile(api: Api) -> None:
    body = user_body(passwordProfile={"forceChangePasswordNextSignIn": True})
    assert_error(await api.post("/v1.0/users", json=body), 400, "Request_BadRequest", MSG_REQUIRED.format("password"))


async def test_create_user_bad_upn_domain(api: Api) -> None:
    body = user_body(userPrincipalName="adelev@fabrikam.com")
    assert_error(await api.post("/v1.0/users", json=body), 400, "Request_BadRequest", MSG_DOMAIN)


async def test_create_user_bad_upn_characters(api: Api) -> None:
    body = user_body(userPrincipalName=f"adèle@{DOMAIN}")
    assert_error(
        await api.post("/v1.0/users", json=body),
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'userPrincipalName' of resource 'User'.",
    )


async def test_create_user_duplicate_upn_case_insensitive(api: Api) -> None:
    assert (await api.post("/v1.0/users", json=user_body("dup"))).status_code == 201
    again = user_body("dup", userPrincipalName=f"DUP@{DOMAIN.upper()}")
    assert_error(await api.post("/v1.0/users", json=again), 400, "Request_BadRequest", MSG_DUP_UPN)
    assert len(await api.ids("/v1.0/users")) == 1


@pytest.mark.parametrize("password", ["short1A", "alllowercaseletters", "ALLUPPER123456", "12345678901"])
async def test_create_user_password_complexity(api: Api, password: str) -> None:
    body = user_body(passwordProfile={"forceChangePasswordNextSignIn": False, "password": password})
    assert_error(await api.post("/v1.0/users", json=body), 400, "Request_BadRequest", MSG_PASSWORD)


async def test_create_user_wrong_property_type(api: Api) -> None:
    assert_error(
        await api.post("/v1.0/users", json=user_body(accountEnabled="yes")),
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'accountEnabled' of resource 'User'.",
    )


async def test_create_user_unknown_property(api: Api) -> None:
    assert_error(
        await api.post("/v1.0/users", json=user_body(favouriteColour="blue")),
        400,
        "BadRequest",
        "The property 'favouriteColour' does not exist on type 'microsoft.graph.user'. Make sure to only use property "
        "names that are defined by the type or mark the type as open type.",
    )


async def test_create_user_read_only_property(api: Api) -> None:
    assert_error(
        await api.post("/v1.0/users", json=user_body(id=str(uuid.uuid4()))),
        400,
        "Request_BadRequest",
        "Property 'id' is read-only and cannot be set.",
    )


async def test_create_user_needs_user_write_permission(api: Api) -> None:
    resp = await api.post("/v1.0/users", json=user_body(), token=api.token(["User.Read.All", "Group.ReadWrite.All"]))
    assert_error(resp, 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert await api.ids("/v1.0/users") == []


async def test_create_user_delegated_needs_user_admin(api: Api) -> None:
    caller = await api.create_user()
    plain = api.token(user_id=caller["id"], scopes=["User.ReadWrite.All"])
    assert_error(await api.post("/v1.0/users", json=user_body("x1"), token=plain), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    admin = api.token(user_id=caller["id"], scopes=["User.ReadWrite.All"], wids=["fe930be7-5e62-47db-91af-98c3a49a38b1"])
    assert (await api.post("/v1.0/users", json=user_body("x2"), token=admin)).status_code == 201


# -- get -----------------------------------------------------------------------------------------
async def test_get_user_by_id_and_by_upn(api: Api) -> None:
    user = await api.create_user("Megan Bowen")
    by_id = assert_odata_json(await api.get(f"/v1.0/users/{user['id']}"))
    assert by_id["@odata.context"] == ctx("v1.0", "users/$entity")
    assert set(by_id) - {"@odata.context"} == USER_DEFAULTS
    assert by_id["id"] == user["id"]
    by_upn = assert_odata_json(await api.get(f"/v1.0/users/{user['userPrincipalName'].upper()}"))
    assert by_upn["id"] == user["id"]
    by_key = assert_odata_json(await api.get(f"/v1.0/users('{user['userPrincipalName']}')"))
    assert by_key["id"] == user["id"]
    upper_id = assert_odata_json(await api.get(f"/v1.0/users/{user['id'].upper()}"))
    assert upper_id["id"] == user["id"]


async def test_get_user_upn_starting_with_dollar(api: Api) -> None:
    """A UPN starting with ``$`` is addressed as ``/users('$x@y.com')`` (user-get.md); such UPNs come from sync, so seed one."""
    user = await api.seed("user", "Dollar", userPrincipalName=f"$adm@{DOMAIN}")
    body = assert_odata_json(await api.get(f"/v1.0/users('$adm@{DOMAIN}')"))
    assert body["id"] == user["id"]


async def test_get_user_upn_with_hash_encoded(api: Api) -> None:
    """``#`` in B2B UPNs is sent as ``%23`` (user-get.md)."""
    user = await api.create_user(userPrincipalName=f"adele_fabrikam.com#EXT#@{DOMAIN}", mailNickname="adele_fabrikam.com")
    body = assert_odata_json(await api.get(f"/v1.0/users/adele_fabrikam.com%23EXT%23@{DOMAIN}"))
    assert body["id"] == user["id"] and body["userPrincipalName"] == f"adele_fabrikam.com#EXT#@{DOMAIN}"


async def test_get_user_select(api: Api) -> None:
    user = await api.create_user("Sel Ected", department="Sales")
    body = assert_odata_json(await api.get(f"/v1.0/users/{user['id']}", params={"$select": "displayName,accountEnabled,department"}))
    assert body == {
        "@odata.context": ctx("v1.0", "users(displayName,accountEnabled,department)/$entity"),
        "displayName": "Sel Ected",
        "accountEnabled": True,
        "department": "Sales",
    }


async def test_get_user_select_password_profile_refused(api: Api) -> None:
    user = await api.create_user()
    resp = await api.get(f"/v1.0/users/{user['id']}", params={"$select": "passwordProfile"})
    assert_error(resp, 400, "BadRequest", "Could not find a property named 'passwordProfile' on type 'microsoft.graph.user'.")


async def test_get_user_not_found(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert_error(await api.get(f"/v1.0/users/{missing}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    upn = f"nobody@{DOMAIN}"
    assert_error(await api.get(f"/v1.0/users/{upn}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(upn))


async def test_get_user_malformed_id(api: Api) -> None:
    assert_error(await api.get("/v1.0/users/not-a-guid"), 400, "Request_BadRequest", MSG_INVALID_ID.format("not-a-guid"))


async def test_get_group_id_as_user_is_404(api: Api) -> None:
    group = await api.create_group()
    assert_error(await api.get(f"/v1.0/users/{group['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(group["id"]))


async def test_get_user_needs_read_permission(api: Api) -> None:
    user = await api.create_user()
    assert_error(await api.get(f"/v1.0/users/{user['id']}", token=api.token(["Group.Read.All"])), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert (await api.get(f"/v1.0/users/{user['id']}", token=api.token(["User.Read.All"]))).status_code == 200


async def test_list_users(api: Api) -> None:
    a = await api.create_user("Alpha")
    b = await api.create_user("Beta")
    body = assert_odata_json(await api.get("/v1.0/users"))
    assert body["@odata.context"] == ctx("v1.0", "users")
    assert {u["id"] for u in body["value"]} == {a["id"], b["id"]}
    assert all("@odata.type" not in u for u in body["value"])  # not polymorphic
    assert all(set(u) == USER_DEFAULTS for u in body["value"])
    assert "@odata.nextLink" not in body and "@odata.count" not in body


async def test_users_beta(api: Api) -> None:
    user = await api.create_user()
    body = assert_odata_json(await api.get(f"/beta/users/{user['id']}"))
    assert body["@odata.context"] == ctx("beta", "users/$entity")
    listing = assert_odata_json(await api.get("/beta/users"))
    assert listing["@odata.context"] == ctx("beta", "users")


# -- /me -----------------------------------------------------------------------------------------
async def test_me_with_delegated_token(api: Api) -> None:
    user = await api.create_user("Me Myself")
    tok = api.token(user_id=user["id"], scopes=["User.Read"])
    body = assert_odata_json(await api.get("/v1.0/me", token=tok))
    assert body["@odata.context"] == ctx("v1.0", "users/$entity")
    assert body["id"] == user["id"] and body["displayName"] == "Me Myself"


@pytest.mark.parametrize("roles", [["User.Read.All"], ["Directory.ReadWrite.All"], ["Group.Read.All"]])
async def test_me_with_app_token_is_400(api: Api, roles: list[str]) -> None:
    """App-only tokens cannot use /me (user-get.md), whatever the roles they carry."""
    tok = api.token(roles)
    assert_error(await api.get("/v1.0/me", token=tok), 400, "BadRequest", MSG_ME_APP)
    assert_error(await api.get("/v1.0/me/memberOf", token=tok), 400, "BadRequest", MSG_ME_APP)


async def test_me_member_of(api: Api) -> None:
    user = await api.create_user()
    group = await api.create_group("Team")
    assert_no_content(await api.add_member(group["id"], user["id"]))
    tok = api.token(user_id=user["id"], scopes=["User.Read"])
    body = assert_odata_json(await api.get("/v1.0/me/memberOf", token=tok))
    assert body["@odata.context"] == ctx("v1.0", "directoryObjects")
    assert [(g["@odata.type"], g["id"]) for g in body["value"]] == [("#microsoft.graph.group", group["id"])]


# -- update --------------------------------------------------------------------------------------
async def test_update_user_204_and_persisted(api: Api) -> None:
    user = await api.create_user("Old Name")
    resp = await api.patch(f"/v1.0/users/{user['id']}", json={"displayName": "New Name", "jobTitle": "Boss", "@odata.type": "#microsoft.graph.user"})
    assert_no_content(resp)
    got = (await api.get(f"/v1.0/users/{user['id']}")).json()
    assert got["displayName"] == "New Name" and got["jobTitle"] == "Boss"


async def test_update_user_by_upn(api: Api) -> None:
    user = await api.create_user()
    assert_no_content(await api.patch(f"/v1.0/users/{user['userPrincipalName']}", json={"officeLocation": "18/2111"}))
    assert (await api.get(f"/v1.0/users/{user['id']}")).json()["officeLocation"] == "18/2111"


async def test_update_user_errors_change_nothing(api: Api) -> None:
    other = await api.create_user()
    user = await api.create_user("Keep")
    uid = user["id"]
    cases = [
        ({"displayName": ""}, 400, "Request_BadRequest", "Invalid value specified for property 'displayName' of resource 'User'."),
        ({"displayName": "Changed", "jobTitle": 7}, 400, "Request_BadRequest", "Invalid value specified for property 'jobTitle' of resource 'User'."),
        ({"displayName": "Changed", "shoeSize": 44}, 400, "BadRequest", None),
        ({"displayName": "Changed", "userPrincipalName": other["userPrincipalName"]}, 400, "Request_BadRequest", MSG_DUP_UPN),
        ({"displayName": "Changed", "userPrincipalName": "x@fabrikam.com"}, 400, "Request_BadRequest", MSG_DOMAIN),
        ({"displayName": "Changed", "passwordProfile": {"password": "weak"}}, 400, "Request_BadRequest", MSG_PASSWORD),
        (
            {"displayName": "Changed", "createdDateTime": "2020-01-01T00:00:00Z"},
            400,
            "Request_BadRequest",
            "Property 'createdDateTime' is read-only and cannot be set.",
        ),
    ]
    for body, status, code, message in cases:
        assert_error(await api.patch(f"/v1.0/users/{uid}", json=body), status, code, message)
    assert (await api.get(f"/v1.0/users/{uid}")).json()["displayName"] == "Keep"


async def test_update_user_not_found(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert_error(await api.patch(f"/v1.0/users/{missing}", json={"jobTitle": "x"}), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))


async def test_update_user_delegated_self_allowed_other_forbidden(api: Api) -> None:
    me = await api.create_user()
    other = await api.create_user()
    tok = api.token(user_id=me["id"], scopes=["User.ReadWrite.All"])
    assert_no_content(await api.patch(f"/v1.0/users/{me['id']}", json={"jobTitle": "Self"}, token=tok))
    assert_no_content(await api.patch("/v1.0/me", json={"officeLocation": "Home"}, token=tok))
    assert (await api.get(f"/v1.0/users/{me['id']}")).json()["officeLocation"] == "Home"
    assert_error(await api.patch(f"/v1.0/users/{other['id']}", json={"jobTitle": "No"}, token=tok), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)


# -- delete --------------------------------------------------------------------------------------
async def test_delete_user_soft(api: Api) -> None:
    user = await api.create_user()
    group = await api.create_group()
    assert_no_content(await api.add_member(group["id"], user["id"]))
    assert_no_content(await api.delete(f"/v1.0/users/{user['id']}"))
    assert_error(await api.get(f"/v1.0/users/{user['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(user["id"]))
    assert_error(await api.get(f"/v1.0/directoryObjects/{user['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(user["id"]))
    assert await api.ids("/v1.0/users") == []
    assert await api.member_ids(group["id"]) == set()
    # soft: the object is kept, marked deleted (restorable for 30 days)
    stored = await api.graph.store.get(api.tenant_id, user["id"])
    assert stored is not None and stored.deleted is not None
    # deleting again: it is gone
    assert_error(await api.delete(f"/v1.0/users/{user['id']}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(user["id"]))


async def test_delete_user_errors(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert_error(await api.delete(f"/v1.0/users/{missing}"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))
    assert_error(await api.delete("/v1.0/users/123"), 400, "Request_BadRequest", MSG_INVALID_ID.format("123"))
    user = await api.create_user()
    assert_error(await api.delete(f"/v1.0/users/{user['id']}", token=api.token(["User.Read.All"])), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    assert (await api.get(f"/v1.0/users/{user['id']}")).status_code == 200


# -- memberOf ------------------------------------------------------------------------------------
async def test_user_member_of(api: Api) -> None:
    user = await api.create_user()
    g1 = await api.create_group("G1")
    g2 = await api.create_group("G2", kind="unified")
    g3 = await api.create_group("G3")
    for g in (g1, g2):
        assert_no_content(await api.add_member(g["id"], user["id"]))
    body = assert_odata_json(await api.get(f"/v1.0/users/{user['id']}/memberOf"))
    assert body["@odata.context"] == ctx("v1.0", "directoryObjects")
    assert {g["id"] for g in body["value"]} == {g1["id"], g2["id"]}
    assert g3["id"] not in {g["id"] for g in body["value"]}
    assert all(g["@odata.type"] == "#microsoft.graph.group" for g in body["value"])
    by_upn = assert_odata_json(await api.get(f"/v1.0/users/{user['userPrincipalName']}/memberOf"))
    assert {g["id"] for g in by_upn["value"]} == {g1["id"], g2["id"]}
    cast = assert_odata_json(await api.get(f"/v1.0/users/{user['id']}/memberOf/microsoft.graph.group", params={"$select": "id,displayName"}))
    assert cast["@odata.context"] == ctx("v1.0", "groups(id,displayName)")
    assert sorted(g["displayName"] for g in cast["value"]) == ["G1", "G2"]


async def test_user_member_of_count(api: Api) -> None:
    user = await api.create_user()
    for _ in range(3):
        g = await api.create_group()
        assert_no_content(await api.add_member(g["id"], user["id"]))
    resp = await api.get(f"/v1.0/users/{user['id']}/memberOf/$count", headers={"ConsistencyLevel": "eventual"})
    assert resp.status_code == 200 and resp.text == "3"
    assert resp.headers["content-type"].startswith("text/plain")
    resp = await api.get(f"/v1.0/users/{user['id']}/memberOf/microsoft.graph.group/$count", headers={"ConsistencyLevel": "eventual"})
    assert resp.text == "3"


async def test_user_member_of_not_found(api: Api) -> None:
    missing = str(uuid.uuid4())
    assert_error(await api.get(f"/v1.0/users/{missing}/memberOf"), 404, "Request_ResourceNotFound", MSG_NOT_FOUND.format(missing))


async def test_member_of_paging_through_key_and_hash_paths(api: Api) -> None:
    """nextLinks re-encode the request path: ``users('$x@y')`` and ``#`` in UPNs survive the round trip."""
    dollar = await api.seed("user", "Dollar", userPrincipalName=f"$pg@{DOMAIN}")
    hashed = await api.create_user(userPrincipalName=f"b2b_x.com#EXT#@{DOMAIN}", mailNickname="b2b_x.com")
    for _ in range(3):
        g = await api.create_group()
        for u in (dollar, hashed):
            assert_no_content(await api.add_member(g["id"], u["id"]))
    for path in (f"/v1.0/users('$pg@{DOMAIN}')/memberOf", f"/v1.0/users/b2b_x.com%23EXT%23@{DOMAIN}/memberOf"):
        first = assert_odata_json(await api.get(path, params={"$top": "2"}))
        assert len(first["value"]) == 2
        nxt = assert_odata_json(await api.get(first["@odata.nextLink"]))
        assert len(nxt["value"]) == 1 and "@odata.nextLink" not in nxt
