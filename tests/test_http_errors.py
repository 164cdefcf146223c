"""Wire fidelity and bad input: 401/403/405/413, the error shape, headers, and no partial writes (docs/behaviour.md#error-body)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from graphdir.auth import tokens as tokens_module
from graphdir.auth.tokens import MSG_AUDIENCE, MSG_EMPTY, MSG_EXPIRED, MSG_INVALID, MSG_ISSUER, MSG_NO_DOTS, MSG_NOT_YET, mint
from http_helpers import (
    BASE_URL,
    GUID_RE,
    MSG_BAD_JSON,
    MSG_FORBIDDEN,
    MSG_METHOD,
    WWW_AUTHENTICATE,
    Api,
    assert_error,
    assert_no_content,
    assert_odata_json,
    ref,
)

#: A token whose signature does not verify (the auth module owns the wording: "Signing key is invalid.").
MSG_BAD_SIGNATURE: str = getattr(tokens_module, "MSG_SIGNATURE", MSG_INVALID)

pytestmark = pytest.mark.anyio

IDX14100 = (
    "IDX14100: JWT is not well formed, there are no dots (.).\n"
    "The token needs to be in JWS or JWE Compact Serialization Format. (JWS): "
    "'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): "
    "'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext.EncodedAuthenticationTag'."
)


def assert_401(resp, message: str) -> None:  # type: ignore[no-untyped-def]
    assert_error(resp, 401, "InvalidAuthenticationToken", message)
    assert resp.headers["WWW-Authenticate"] == WWW_AUTHENTICATE


# -- 401 -------------------------------------------------------------------------------------------
def test_token_messages_are_the_spec_strings() -> None:
    assert MSG_EMPTY == "Access token is empty."
    assert MSG_NO_DOTS == IDX14100
    assert MSG_EXPIRED == "Lifetime validation failed, the token is expired."
    assert MSG_AUDIENCE == "Access token validation failure. Invalid audience."


async def test_401_no_token(api: Api) -> None:
    assert_401(await api.get("/v1.0/groups", auth=False), "Access token is empty.")
    assert_401(await api.get("/v1.0/groups", auth=False, headers={"Authorization": "Bearer "}), "Access token is empty.")
    assert_401(await api.get("/v1.0/groups", auth=False, headers={"Authorization": "Basic dXNlcjpwdw=="}), "Access token is empty.")
    assert_401(await api.post("/beta/groups/x/members/$ref", auth=False, json={}), "Access token is empty.")


async def test_401_no_dots(api: Api) -> None:
    assert_401(await api.get("/v1.0/groups", token="notajwt"), IDX14100)


async def test_401_expired(api: Api) -> None:
    tok = api.token(lifetime=-3600)
    assert_401(await api.get("/v1.0/groups", token=tok), "Lifetime validation failed, the token is expired.")


async def test_401_not_yet_valid(api: Api) -> None:
    import time

    tok = api.token(not_before=int(time.time()) + 3600, lifetime=7200)
    assert_401(await api.get("/v1.0/groups", token=tok), MSG_NOT_YET)


async def test_401_wrong_audience(api: Api) -> None:
    tok = api.token(audience="https://management.azure.com")
    assert_401(await api.get("/v1.0/groups", token=tok), "Access token validation failure. Invalid audience.")


async def test_401_bad_signature(api: Api) -> None:
    head, payload, sig = api.default_token.split(".")
    forged_claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged_claims["roles"] = ["Directory.ReadWrite.All", "RoleManagement.ReadWrite.Directory"]
    forged = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    assert_401(await api.get("/v1.0/groups", token=f"{head}.{forged}.{sig}"), MSG_BAD_SIGNATURE)
    flipped = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    assert_401(await api.get("/v1.0/groups", token=f"{head}.{payload}.{flipped}"), MSG_BAD_SIGNATURE)
    assert_401(await api.get("/v1.0/groups", token="a.b.c"), MSG_INVALID)  # not even a JWS header


async def test_401_alg_none(api: Api) -> None:
    """An unsigned token (``alg: none``) carrying any roles is refused."""
    head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = api.default_token.split(".")[1]
    assert_401(await api.get("/v1.0/groups", token=f"{head}.{payload}."), MSG_BAD_SIGNATURE)


async def test_graph_app_id_audience_accepted(api: Api) -> None:
    tok = api.token(audience="00000003-0000-0000-c000-000000000000")
    assert (await api.get("/v1.0/groups", token=tok)).status_code == 200


async def test_401_unknown_tenant_or_issuer(api: Api) -> None:
    assert api.graph.ring is not None
    other = mint(api.graph.ring, str(uuid.uuid4()), app_id=api.graph.app_id, roles=["Directory.ReadWrite.All"])
    assert_401(await api.get("/v1.0/groups", token=other), MSG_ISSUER)
    wrong_iss = api.token(issuer="https://login.example.com/")
    assert_401(await api.get("/v1.0/groups", token=wrong_iss), MSG_ISSUER)


async def test_401_before_404(api: Api) -> None:
    """Authentication is checked before the resource is looked up."""
    missing = str(uuid.uuid4())
    assert_401(await api.get(f"/v1.0/groups/{missing}", auth=False), MSG_EMPTY)


# -- 403 -------------------------------------------------------------------------------------------
async def test_403_token_without_permission(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    none = api.token([])
    cases = [
        ("GET", "/v1.0/groups"),
        ("GET", f"/v1.0/groups/{group['id']}/members"),
        ("GET", "/v1.0/users"),
        ("POST", "/v1.0/groups"),
        ("DELETE", f"/v1.0/groups/{group['id']}"),
        ("DELETE", f"/beta/groups/{group['id']}/members/{user['id']}/$ref"),
    ]
    for method, path in cases:
        resp = await api.request(method, path, token=none, json={} if method == "POST" else None)
        assert_error(resp, 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    delegated = api.token(user_id=user["id"], scopes=["User.Read"])
    assert_error(await api.get("/v1.0/groups", token=delegated), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)


async def test_403_personal_account(api: Api) -> None:
    consumer = "9188040d-6c67-4c5b-b112-36a304b66dad"
    assert api.graph.ring is not None
    user = await api.create_user()
    tok = mint(api.graph.ring, consumer, app_id=api.graph.app_id, user_id=user["id"], scopes=["Group.ReadWrite.All"])
    assert_error(await api.get("/v1.0/groups", token=tok), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)


# -- 405 / unknown segments ------------------------------------------------------------------------
async def test_405_wrong_method(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    gid = group["id"]
    cases = [
        ("PUT", f"/v1.0/groups/{gid}"),
        ("POST", f"/v1.0/groups/{gid}"),
        ("DELETE", "/v1.0/groups"),
        ("PATCH", "/v1.0/users"),
        ("PUT", f"/v1.0/groups/{gid}/members/$ref"),
        ("PATCH", f"/beta/groups/{gid}/members/$ref"),
        ("POST", f"/v1.0/groups/{gid}/members"),
        ("POST", f"/v1.0/groups/{gid}/members/{user['id']}/$ref"),
        ("GET", f"/v1.0/groups/{gid}/owners/{user['id']}/$ref"),
        ("DELETE", f"/v1.0/directoryObjects/{gid}"),
        ("POST", "/v1.0/groups/$count"),
        ("DELETE", "/v1.0/me"),
        ("GET", "/graphdir/admin/seed"),
    ]
    for method, path in cases:
        resp = await api.request(method, path, json={} if method in ("POST", "PUT", "PATCH") else None)
        assert_error(resp, 405, "Request_BadRequest", MSG_METHOD)
    # nothing was touched
    assert (await api.get(f"/v1.0/groups/{gid}")).status_code == 200


async def test_unknown_segments(api: Api) -> None:
    assert_error(await api.get("/v1.0/printers"), 400, "BadRequest", "Resource not found for the segment 'printers'.")
    assert_error(await api.get("/v2.0/groups"), 400, "BadRequest", "Resource not found for the segment 'v2.0'.")
    group = await api.create_group()
    assert_error(await api.get(f"/v1.0/groups/{group['id']}/photos"), 400, "BadRequest", "Resource not found for the segment 'photos'.")
    assert_error(
        await api.get(f"/v1.0/groups/{group['id']}/members/microsoft.graph.printer"),
        400,
        "Request_BadRequest",
        "Invalid object identifier 'microsoft.graph.printer'.",
    )
    assert_error(await api.get("/nothing-here"), 400, "BadRequest", "Resource not found for the segment 'nothing-here'.")


async def test_path_segments_case_insensitive(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user()
    assert_no_content(await api.post(f"/v1.0/Groups/{group['id']}/Members/$ref", json={"@odata.id": ref(user["id"])}))
    assert (await api.get(f"/v1.0/GROUPS/{group['id']}/members")).json()["value"][0]["id"] == user["id"]


# -- headers and framing ---------------------------------------------------------------------------
async def test_request_id_headers_success(api: Api) -> None:
    resp = await api.get("/v1.0/groups")
    assert GUID_RE.match(resp.headers["request-id"])
    assert resp.headers["client-request-id"] == resp.headers["request-id"]
    assert resp.headers["OData-Version"] == "4.0"
    assert resp.headers["Cache-Control"] == "no-cache"
    resp2 = await api.get("/v1.0/groups")
    assert resp2.headers["request-id"] != resp.headers["request-id"]
    mine = str(uuid.uuid4())
    echoed = await api.get("/v1.0/groups", headers={"client-request-id": mine})
    assert echoed.headers["client-request-id"] == mine
    assert echoed.headers["request-id"] != mine


async def test_request_id_headers_errors(api: Api) -> None:
    missing = str(uuid.uuid4())
    mine = "my-correlation-id-42"
    resp = await api.get(f"/v1.0/groups/{missing}", headers={"client-request-id": mine})
    err = assert_error(resp, 404, "Request_ResourceNotFound")
    assert err["innerError"]["client-request-id"] == mine == resp.headers["client-request-id"]
    assert err["innerError"]["request-id"] == resp.headers["request-id"]
    resp = await api.get(f"/v1.0/groups/{missing}")
    err = assert_error(resp, 404, "Request_ResourceNotFound")
    assert err["innerError"]["client-request-id"] == err["innerError"]["request-id"] == resp.headers["request-id"]
    # also on 401 and on routing errors
    resp = await api.get("/v1.0/groups", auth=False, headers={"client-request-id": mine})
    assert assert_error(resp, 401, "InvalidAuthenticationToken")["innerError"]["client-request-id"] == mine
    resp = await api.get("/v1.0/nope", headers={"client-request-id": mine})
    assert assert_error(resp, 400, "BadRequest")["innerError"]["client-request-id"] == mine


async def test_success_content_types_and_bodies(api: Api) -> None:
    user = await api.create_user()
    created = await api.post("/v1.0/groups", json={"displayName": "CT", "mailNickname": "ct", "mailEnabled": False, "securityEnabled": True})
    body = assert_odata_json(created, 201)
    gid = body["id"]
    assert_no_content(await api.add_member(gid, user["id"]))
    assert_no_content(await api.patch(f"/v1.0/groups/{gid}", json={"description": "x"}))
    count = await api.get(f"/v1.0/groups/{gid}/members/$count", headers={"ConsistencyLevel": "eventual"})
    assert count.headers["content-type"].split(";")[0] == "text/plain"
    assert count.headers["OData-Version"] == "4.0"
    assert_no_content(await api.delete(f"/v1.0/groups/{gid}/members/{user['id']}/$ref"))
    assert_no_content(await api.delete(f"/v1.0/groups/{gid}"))
    assert_no_content(await api.delete(f"/v1.0/users/{user['id']}"))


# -- bad input never hurts -------------------------------------------------------------------------
async def _write_targets(api: Api) -> list[tuple[str, str]]:
    group = await api.create_group()
    user = await api.create_user()
    return [
        ("POST", "/v1.0/groups"),
        ("POST", "/v1.0/users"),
        ("PATCH", f"/v1.0/groups/{group['id']}"),
        ("PATCH", f"/v1.0/users/{user['id']}"),
        ("POST", f"/v1.0/groups/{group['id']}/members/$ref"),
        ("POST", f"/beta/groups/{group['id']}/owners/$ref"),
    ]


@pytest.mark.parametrize(
    "raw",
    [b"{", b"{'a': 1}", b"not json", b"\xff\xfe\x00", b'{"a": NaN', b"[1, 2", b"", b"   "],
    ids=["truncated", "single-quotes", "text", "binary", "nan", "array-open", "empty", "blank"],
)
async def test_invalid_json(api: Api, raw: bytes) -> None:
    for method, path in await _write_targets(api):
        resp = await api.request(method, path, content=raw, headers={"Content-Type": "application/json"})
        assert_error(resp, 400, "BadRequest", MSG_BAD_JSON)


@pytest.mark.parametrize("value", [[], [1, 2], "str", 42, True, None], ids=["empty-list", "list", "string", "number", "bool", "null"])
async def test_non_object_json(api: Api, value: object) -> None:
    for method, path in await _write_targets(api):
        resp = await api.request(method, path, content=json.dumps(value).encode(), headers={"Content-Type": "application/json"})
        assert_error(resp, 400, "BadRequest", MSG_BAD_JSON)


async def test_wrong_property_types_never_500(api: Api) -> None:
    weird: list[object] = [None, 1, 1.5, True, "s", [], ["a"], [1], {}, {"a": 1}, "x" * 300]
    group = await api.create_group()
    user = await api.create_user()
    for prop in ("displayName", "description", "mailNickname", "groupTypes", "securityEnabled", "visibility", "members@odata.bind", "owners@odata.bind"):
        for v in weird:
            resp = await api.patch(f"/v1.0/groups/{group['id']}", json={prop: v})
            assert resp.status_code in (204, 400, 403, 404), (prop, v, resp.status_code, resp.text)
            if resp.status_code != 204:
                assert_error(resp, resp.status_code, resp.json()["error"]["code"])
    for prop in ("displayName", "accountEnabled", "passwordProfile", "businessPhones", "userPrincipalName", "identities"):
        for v in weird:
            resp = await api.patch(f"/v1.0/users/{user['id']}", json={prop: v})
            assert resp.status_code in (204, 400), (prop, v, resp.status_code, resp.text)
    for v in weird:
        resp = await api.post(f"/v1.0/groups/{group['id']}/members/$ref", json={"@odata.id": v})
        assert resp.status_code == 400, (v, resp.text)
    # and the service is still healthy
    assert (await api.get(f"/v1.0/groups/{group['id']}")).status_code == 200


async def test_create_with_wrong_types_never_500(api: Api) -> None:
    weird: list[object] = [None, 1, True, "s", [], ["Unified", 3], {}, "x" * 300]
    for prop in ("displayName", "mailNickname", "mailEnabled", "securityEnabled", "groupTypes", "isAssignableToRole", "visibility", "membershipRule"):
        for v in weird:
            body = {"displayName": "W", "mailNickname": "w", "mailEnabled": False, "securityEnabled": True, prop: v}
            resp = await api.post("/v1.0/groups", json=body)
            assert resp.status_code in (201, 400, 403), (prop, v, resp.status_code, resp.text)
            if resp.status_code != 201:
                assert_error(resp, resp.status_code, resp.json()["error"]["code"])


async def test_oversized_body_413(make_api) -> None:  # type: ignore[no-untyped-def]
    api: Api = make_api(max_body_bytes=2048)
    group = await api.create_group()
    big = {"displayName": "Big", "description": "x" * 4096}
    message = "The request body exceeds the maximum allowed size of 2048 bytes."
    assert_error(await api.patch(f"/v1.0/groups/{group['id']}", json=big), 413, "Request_BadRequest", message)
    assert_error(await api.post("/v1.0/users", json=big), 413, "Request_BadRequest", message)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        yield b'{"description": "'
        for _ in range(10):
            yield b"y" * 512
        yield b'"}'

    resp = await api.request("PATCH", f"/v1.0/groups/{group['id']}", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in resp.request.headers
    assert_error(resp, 413, "Request_BadRequest", message)
    got = (await api.get(f"/v1.0/groups/{group['id']}")).json()
    assert got["displayName"] != "Big" and got["description"] is None
    # a body under the limit still works
    assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json={"description": "small"}))


async def change_count(api: Api) -> int:
    """Records in the tenant's change log (delta/audit), read through the store (either backend)."""
    count, after = 0, 0
    while batch := await api.graph.store.list_changes(api.tenant_id, after):
        count, after = count + len(batch), batch[-1].seq
    return count


async def test_rejected_writes_change_nothing(api: Api) -> None:
    """A failed write leaves no trace: not the properties, not the links, not the change log."""
    group = await api.create_group("Stable")
    members = [await api.create_user() for _ in range(2)]
    owner = await api.create_user()
    missing = str(uuid.uuid4())
    before = await change_count(api)
    bodies = [
        {"displayName": "Changed", "members@odata.bind": [ref(members[0]["id"]), ref(missing)]},
        {"displayName": "Changed", "owners@odata.bind": [ref(owner["id"], "users"), ref(missing, "users")]},
        {"description": "Changed", "members@odata.bind": [ref(members[0]["id"]), ref(members[1]["id"]), ref(members[0]["id"])]},
        {"description": "Changed", "unknownProp": 1},
    ]
    for body in bodies:
        resp = await api.patch(f"/v1.0/groups/{group['id']}", json=body)
        assert resp.status_code in (400, 404), resp.text
    after = await change_count(api)
    assert after == before
    got = (await api.get(f"/v1.0/groups/{group['id']}")).json()
    assert got["displayName"] == "Stable" and got["description"] is None
    assert await api.member_ids(group["id"]) == set()
    assert await api.owner_ids(group["id"]) == set()


async def test_patch_empty_object_is_204(api: Api) -> None:
    group = await api.create_group("Same")
    assert_no_content(await api.patch(f"/v1.0/groups/{group['id']}", json={}))
    assert (await api.get(f"/v1.0/groups/{group['id']}")).json()["displayName"] == "Same"


async def test_public_base_url_setting_used_in_links(make_api) -> None:  # type: ignore[no-untyped-def]
    api: Api = make_api(public_base_url="https://graph.example.test:8443/")
    group = await api.create_group()
    body = assert_odata_json(await api.get(f"/v1.0/groups/{group['id']}"))
    assert body["@odata.context"] == "https://graph.example.test:8443/v1.0/$metadata#groups/$entity"


async def test_context_follows_request_host(api: Api) -> None:
    group = await api.create_group()
    body = assert_odata_json(await api.get(f"http://other.example:9000/v1.0/groups/{group['id']}"))
    assert body["@odata.context"] == "http://other.example:9000/v1.0/$metadata#groups/$entity"
    assert BASE_URL != "http://other.example:9000"
