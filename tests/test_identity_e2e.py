"""End to end over HTTPS: the unmodified Microsoft libraries get tokens from graphdir and remove members.

One live ``graphdir serve --tls`` (subprocess, free port, temporary database) for the
module. Apps and users are registered with the CLI, exactly as a user would. The CA
is trusted through ``SSL_CERT_FILE`` and ``REQUESTS_CA_BUNDLE`` (docs/behaviour.md#credentials-and-tls).

* application: azure-identity's ``ClientSecretCredential`` (sync, MSAL underneath; and the
  aio one, azure-identity's own client) with ``authority=https://127.0.0.1:PORT`` and
  ``disable_instance_discovery=True`` feeding ``GraphServiceClient(credentials=…)``;
* delegated: a user token from graphdir's token endpoint (password grant) removes a member
  from a group the user owns (204) and is refused on a group the user does not own (403);
  the same with MSAL's authorization-code flow with PKCE (``initiate_auth_code_flow`` /
  ``acquire_token_by_auth_code_flow``) through graphdir's sign-in page.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import time
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from live_tls import LiveTls, live_tls_server
from sdk_helpers import close_sdk_client

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # the generated SDK warns about its own deprecated classes
]

DOMAIN = "e2e.onmicrosoft.com"
PASSWORD = "xWwvJ]6NMw+bWH-d"
GRAPH = "https://graph.microsoft.com"
REDIRECT = "http://localhost:8400/callback"


class Live(LiveTls):
    """The live TLS server (tests/live_tls.py) with this module's helpers."""

    def user(self, nick: str) -> str:
        out = json.loads(self.cli("user", "create", "--upn", f"{nick}@{DOMAIN}", "--password", PASSWORD, "--json"))
        return str(out["id"])

    def group(self, owners: list[str], members: list[str]) -> str:
        nick = f"g{time.monotonic_ns()}"
        body = {"displayName": nick, "mailNickname": nick, "mailEnabled": False, "securityEnabled": True,
                "owners@odata.bind": [f"{GRAPH}/v1.0/users/{o}" for o in owners],
                "members@odata.bind": [f"{GRAPH}/v1.0/directoryObjects/{m}" for m in members]}  # fmt: skip
        with self.http() as c:
            r = c.post("/v1.0/groups", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with live_tls_server(DOMAIN) as server:
        live = Live(**vars(server))
        assert f"base URL:  {live.origin}/v1.0  (and {live.origin}/beta)" in live.output
        assert live.cli("ca-path").strip() == live.ca  # the command prints the file `serve --tls` uses
        yield live


@pytest.fixture
def trust_ca(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", live.ca)  # httpx (the SDK) and aiohttp
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", live.ca)  # requests (MSAL)


def _graph_client(credential: Any, origin: str) -> Any:
    from msgraph import GraphServiceClient

    client = GraphServiceClient(credentials=credential, scopes=[f"{GRAPH}/.default"])
    client.request_adapter.base_url = f"{origin}/v1.0"
    return client


def run_closing(client: Any, awaitable: Any) -> Any:
    """Run on a fresh loop, then close the SDK's connections (an idle HTTP/2 connection would delay the server's stop)."""

    async def go() -> Any:
        try:
            return await awaitable
        finally:
            await close_sdk_client(client)

    return asyncio.run(go())


class StaticCredential:
    """A ``TokenCredential`` for a token obtained elsewhere (docs/behaviour.md#credentials-and-tls: it must accept ``**kwargs``)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3000)


def _claims(token: str) -> dict[str, Any]:
    import base64

    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


# -- application: ClientSecretCredential → GraphServiceClient ----------------------------------------------------------------
def test_client_secret_credential_removes_member(live: Live, trust_ca: None) -> None:
    from azure.identity import ClientSecretCredential

    app = json.loads(live.cli("app", "create", "--name", "e2e daemon", "--roles", "GroupMember.ReadWrite.All", "--json"))
    user = live.user(f"m{time.monotonic_ns()}")
    gid = live.group([], [user])
    assert live.members(gid) == [user]

    cred = ClientSecretCredential(app["tenantId"], app["clientId"], app["clientSecret"], authority=live.origin, disable_instance_discovery=True)
    token = cred.get_token(f"{GRAPH}/.default")
    claims = _claims(token.token)
    assert claims["roles"] == ["GroupMember.ReadWrite.All"] and claims["appid"] == app["clientId"] and claims["tid"] == live.tenant_id
    assert token.expires_on > time.time() + 600

    client = _graph_client(cred, live.origin)

    async def remove() -> list[str]:
        await client.groups.by_group_id(gid).members.by_directory_object_id(user).ref.delete()
        page = await client.groups.by_group_id(gid).members.get()
        return [m.id for m in page.value]

    assert run_closing(client, remove()) == []
    assert live.members(gid) == []


def test_client_secret_credential_errors_surface(live: Live, trust_ca: None) -> None:
    """A wrong secret is Entra's AADSTS7000215 inside azure-identity's ClientAuthenticationError."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientSecretCredential

    app = json.loads(live.cli("app", "create", "--name", "e2e wrong", "--roles", "GroupMember.Read.All", "--json"))
    cred = ClientSecretCredential(live.tenant_id, app["clientId"], "not-the-secret", authority=live.origin, disable_instance_discovery=True)
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        cred.get_token(f"{GRAPH}/.default")


def test_async_client_secret_credential(live: Live, trust_ca: None) -> None:
    """azure.identity.aio (its own client, aiohttp) against the same token endpoint."""
    from azure.identity.aio import ClientSecretCredential

    app = json.loads(live.cli("app", "create", "--name", "e2e aio", "--roles", "Group.Read.All", "--json"))

    async def get() -> str:
        async with ClientSecretCredential(live.tenant_id, app["clientId"], app["clientSecret"], authority=live.origin) as cred:
            return (await cred.get_token(f"{GRAPH}/.default")).token

    with warnings.catch_warnings():
        # aiohttp (azure.identity.aio's transport) leaves its pooled keep-alive socket to the garbage
        # collector when the loop closes; collect it here, where its ResourceWarning is expected,
        # instead of in whichever later test the collector happens to run
        warnings.simplefilter("ignore", ResourceWarning)
        tok = asyncio.run(get())
        gc.collect()
    assert _claims(tok)["roles"] == ["Group.Read.All"]
    with httpx.Client(base_url=live.origin, verify=live.ca) as c:
        assert c.get("/v1.0/groups", headers={"Authorization": f"Bearer {tok}"}).status_code == 200


# -- delegated: a user token from the token endpoint -----------------------------------------------------------------------
def test_delegated_user_token_owner_only(live: Live, trust_ca: None) -> None:
    app = json.loads(live.cli("app", "create", "--name", "e2e native", "--scopes", "GroupMember.ReadWrite.All,User.Read",
                              "--public-client", "--no-secret", "--json"))  # fmt: skip
    n = time.monotonic_ns()
    owner, other_owner, member = live.user(f"own{n}"), live.user(f"oth{n}"), live.user(f"mem{n}")
    mine, theirs = live.group([owner], [member]), live.group([other_owner], [member])

    form = {"grant_type": "password", "client_id": app["clientId"], "username": f"own{n}@{DOMAIN}", "password": PASSWORD,
            "scope": f"{GRAPH}/GroupMember.ReadWrite.All openid profile offline_access"}  # fmt: skip
    r = httpx.post(f"{live.origin}/{live.tenant_id}/oauth2/v2.0/token", data=form, verify=live.ca)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    claims = _claims(token)
    assert claims["oid"] == owner and claims["idtyp"] == "user" and "GroupMember.ReadWrite.All" in claims["scp"].split()

    client = _graph_client(StaticCredential(token), live.origin)

    async def remove(gid: str) -> int:
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        try:
            await client.groups.by_group_id(gid).members.by_directory_object_id(member).ref.delete()
        except ODataError as exc:
            assert exc.error.code == "Authorization_RequestDenied"
            assert exc.error.message == "Insufficient privileges to complete the operation."
            return int(exc.response_status_code)
        return 204

    async def both() -> tuple[int, int]:  # one event loop: the SDK's connection pool belongs to it
        return await remove(mine), await remove(theirs)

    assert run_closing(client, both()) == (204, 403)
    assert live.members(mine) == [] and live.members(theirs) == [member]


# msal recommends form_post for web apps; a public client on a loopback redirect uses the query
@pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")
def test_msal_authorization_code_with_pkce(live: Live, trust_ca: None) -> None:
    """MSAL's own auth-code flow (PKCE S256, state, nonce) through graphdir's sign-in page; the token removes a member."""
    import msal

    n = time.monotonic_ns()
    upn = f"ga{n}@{DOMAIN}"
    user = live.user(f"ga{n}")
    live.cli("role", "assign", "--user", upn, "--role", "Groups Administrator")
    member = live.user(f"m{n}")
    gid = live.group([], [member])
    app = json.loads(live.cli("app", "create", "--name", "e2e spa", "--scopes", "GroupMember.ReadWrite.All", "--public-client",
                              "--redirect-uri", REDIRECT, "--no-secret", "--json"))  # fmt: skip

    pca = msal.PublicClientApplication(app["clientId"], authority=f"{live.origin}/{live.tenant_id}", instance_discovery=False)
    flow = pca.initiate_auth_code_flow([f"{GRAPH}/GroupMember.ReadWrite.All"], redirect_uri=REDIRECT, login_hint=upn)
    with httpx.Client(verify=live.ca, follow_redirects=False) as browser:
        page = browser.get(flow["auth_uri"])
        assert page.status_code == 200 and 'name="passwd"' in page.text
        fields = {k: v.replace("&amp;", "&") for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)}
        assert fields["code_challenge_method"] == "S256" and fields["login_hint"] == upn
        done = browser.post(str(page.url.copy_with(query=None)), data={**fields, "login": upn, "passwd": PASSWORD})
    assert done.status_code == 302, done.text
    location = urlsplit(done.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    result = pca.acquire_token_by_auth_code_flow(flow, {k: v[0] for k, v in parse_qs(location.query).items()})
    assert "access_token" in result, result
    assert result["id_token_claims"]["oid"] == user and result["id_token_claims"]["preferred_username"] == upn
    claims = _claims(result["access_token"])
    assert claims["wids"] == ["fdd7a751-b60b-444a-984c-02652fe8fa1c"] and claims["appidacr"] == "0"

    client = _graph_client(StaticCredential(result["access_token"]), live.origin)
    run_closing(client, client.groups.by_group_id(gid).members.by_directory_object_id(member).ref.delete())
    assert live.members(gid) == []
