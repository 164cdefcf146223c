"""The token authority (Entra ID v2.0 endpoints) in process: discovery, keys, grants, errors, validation.

What MSAL and azure-identity read is checked field by field (docs/behaviour.md#credentials-and-tls); error
bodies are Entra's (``error``, ``AADSTS…`` description with trace/correlation ids,
``error_codes``); issued tokens carry Graph's claims and work on the Graph routes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from graphdir import identity
from graphdir.auth.tokens import KeyRing, service_principal_id
from graphdir.directory.service import Directory
from graphdir.store.base import StoredApp
from identity_helpers import (
    DOMAIN_A,
    DOMAIN_B,
    GRAPH,
    GROUPS_ADMIN,
    MSG_EXPIRED,
    MSG_FORBIDDEN,
    MSG_INVALID,
    MSG_NOT_YET,
    MSG_SIGNATURE,
    PASSWORD,
    World,
    app_token,
    assert_graph_error,
    assert_oauth_error,
    claims_of,
    graph_claims,
    open_world,
)

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
FORM = {"content-type": "application/x-www-form-urlencoded"}
REDIRECT = "http://localhost:8400/callback"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("authority") / "g.db") as w:
        yield w


class Setup:
    """Apps and users registered through :mod:`graphdir.identity` (what the CLI and seed files call)."""

    def __init__(self, w: World) -> None:
        store = w.graph.store
        self.w = w
        self.daemon, self.daemon_secret = identity.create_app(store, w.tid_a, "daemon", roles=["GroupMember.ReadWrite.All", "Group.Read.All"])
        self.web, self.web_secret = identity.create_app(store, w.tid_a, "web", scopes=["GroupMember.ReadWrite.All", "User.Read"], redirect_uris=[REDIRECT])
        self.native, _ = identity.create_app(store, w.tid_a, "native", scopes=["GroupMember.ReadWrite.All", "User.Read"], public_client=True,
                                             redirect_uris=[REDIRECT], secret=False)  # fmt: skip
        self.bare, self.bare_secret = identity.create_app(store, w.tid_a, "nothing granted")
        self.b_app, self.b_secret = identity.create_app(store, w.tid_b, "fabrikam daemon", roles=["GroupMember.ReadWrite.All"])
        d = Directory(store, w.graph.settings)
        self.alice = asyncio.run(identity.create_user(d, w.tid_a, f"alice@{DOMAIN_A}", PASSWORD, "Alice Adams", givenName="Alice"))
        identity.assign_role(store, w.tid_a, self.alice, "Groups Administrator")
        self.bob = asyncio.run(identity.create_user(d, w.tid_a, f"bob@{DOMAIN_A}", PASSWORD, "Bob"))
        self.carol = asyncio.run(identity.create_user(d, w.tid_a, f"carol@{DOMAIN_A}", PASSWORD, "Carol", accountEnabled=False))


@pytest.fixture(scope="module")
def s(world: World) -> Setup:
    return Setup(world)


def token_request(w: World, form: dict[str, str], tenant: str | None = None, **kw: Any) -> httpx.Response:
    return w.client.post(f"/{tenant or w.tid_a}/oauth2/v2.0/token", data=form, **kw)


def client_credentials(app: StoredApp, secret: str | None, scope: str = f"{GRAPH}/.default") -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": app.app_id, "scope": scope, "client_info": "1"}
    if secret:
        form["client_secret"] = secret
    return form


def password_grant(app: StoredApp, user: str, password: str = PASSWORD, scope: str = f"{GRAPH}/.default openid profile offline_access",
                   secret: str | None = None) -> dict[str, str]:  # fmt: skip
    form = {"grant_type": "password", "client_id": app.app_id, "username": user, "password": password, "scope": scope, "client_info": "1"}
    if secret:
        form["client_secret"] = secret
    return form


# -- discovery and keys ----------------------------------------------------------------------------------------
def test_openid_configuration(world: World) -> None:
    w = world
    for segment in (w.tid_a, DOMAIN_A, DOMAIN_A.upper()):
        r = w.client.get(f"/{segment}/v2.0/.well-known/openid-configuration")
        assert r.status_code == 200, r.text
        cfg = r.json()
        base = f"http://testserver/{w.tid_a}"
        assert cfg["issuer"] == f"{base}/v2.0"  # v2 authority; MSAL takes the tenant from token_endpoint
        assert cfg["token_endpoint"] == f"{base}/oauth2/v2.0/token"
        assert cfg["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
        assert cfg["jwks_uri"] == f"{base}/discovery/v2.0/keys"
        assert cfg["id_token_signing_alg_values_supported"] == ["RS256"]
        assert "S256" in cfg["code_challenge_methods_supported"]
    cfg = w.client.get("/organizations/v2.0/.well-known/openid-configuration").json()
    assert cfg["issuer"] == "http://testserver/{tenantid}/v2.0"
    assert cfg["token_endpoint"] == "http://testserver/organizations/oauth2/v2.0/token"


def test_unknown_tenant_is_aadsts90002(world: World) -> None:
    for segment in ("00000000-0000-0000-0000-000000000001", "nowhere.onmicrosoft.com"):
        r = world.client.get(f"/{segment}/v2.0/.well-known/openid-configuration")
        assert_oauth_error(r, 400, "invalid_tenant", 90002)
        assert f"Tenant '{segment}' not found." in r.json()["error_description"]
        r = token_request(world, {"grant_type": "client_credentials"}, tenant=segment)
        assert_oauth_error(r, 400, "invalid_tenant", 90002)


def test_jwks_verifies_issued_tokens(world: World, s: Setup) -> None:
    w = world
    jwks = w.client.get(f"/{w.tid_a}/discovery/v2.0/keys").json()
    assert jwks == w.client.get(f"/{DOMAIN_B}/discovery/keys").json()  # one key set for every tenant, like Entra's
    tok = token_request(w, client_credentials(s.daemon, s.daemon_secret)).json()["access_token"]
    kid = jwt.get_unverified_header(tok)["kid"]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    assert jwk["kty"] == "RSA" and jwk["use"] == "sig" and jwk["alg"] == "RS256"
    claims = jwt.decode(tok, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=GRAPH, issuer=f"https://sts.windows.net/{w.tid_a}/")
    assert claims["tid"] == w.tid_a


def test_instance_discovery_and_user_realm(world: World) -> None:
    w = world
    r = w.client.get("/common/discovery/instance", params={"api-version": "1.1", "authorization_endpoint": f"http://testserver/{w.tid_a}/oauth2/v2.0/authorize"})
    assert r.status_code == 200
    body = r.json()
    assert body["tenant_discovery_endpoint"] == f"http://testserver/{w.tid_a}/v2.0/.well-known/openid-configuration"
    assert body["metadata"][0]["aliases"] == ["testserver"]
    r = w.client.get("/common/discovery/instance", params={"authorization_endpoint": "https://evil.example/x/oauth2/v2.0/authorize"})
    assert_oauth_error(r, 400, "invalid_instance", 50049)
    assert w.client.get(f"/common/userrealm/alice@{DOMAIN_A}?api-version=1.0").json()["account_type"] == "Managed"
    assert w.client.get("/common/userrealm/x@elsewhere.example?api-version=1.0").json()["account_type"] == "Unknown"


# -- client credentials ----------------------------------------------------------------------------------------------
def test_client_credentials_token(world: World, s: Setup) -> None:
    w = world
    r = token_request(w, client_credentials(s.daemon, s.daemon_secret), headers={"client-request-id": "abc"})
    assert r.status_code == 200, r.text
    assert "no-store" in r.headers["cache-control"]
    body = r.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == w.graph.settings.token_lifetime
    c = claims_of(body["access_token"])
    assert c["aud"] == GRAPH and c["iss"] == f"https://sts.windows.net/{w.tid_a}/" and c["tid"] == w.tid_a
    assert c["appid"] == s.daemon.app_id and c["idtyp"] == "app" and c["appidacr"] == "1" and c["app_displayname"] == "daemon"
    assert c["roles"] == ["GroupMember.ReadWrite.All", "Group.Read.All"] and "scp" not in c
    assert c["oid"] == c["sub"] == service_principal_id(w.tid_a, s.daemon.app_id)
    assert c["exp"] - c["iat"] == w.graph.settings.token_lifetime and c["nbf"] <= time.time()
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "RS256"
    # the token works on Graph with exactly its roles
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    assert w.client.get("/v1.0/groups", headers=auth).status_code == 200
    assert_graph_error(w.client.get("/v1.0/users", headers=auth), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)


def test_client_credentials_variants(world: World, s: Setup) -> None:
    w = world
    # the Graph app id as resource: aud is the GUID, still accepted by Graph
    tok = token_request(w, client_credentials(s.daemon, s.daemon_secret, f"{GRAPH_APP_ID}/.default")).json()["access_token"]
    assert claims_of(tok)["aud"] == GRAPH_APP_ID
    assert w.client.get("/v1.0/groups", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    # client_secret_basic, tenant by domain
    creds = base64.b64encode(f"{s.daemon.app_id}:{s.daemon_secret}".encode()).decode()
    form = {"grant_type": "client_credentials", "scope": f"{GRAPH}/.default"}
    r = token_request(w, form, tenant=DOMAIN_A, headers={"Authorization": f"Basic {creds}"})
    assert r.status_code == 200, r.text
    # CAE capable clients (kiota always asks): xms_cc in the token
    r = token_request(w, {**client_credentials(s.daemon, s.daemon_secret), "claims": json.dumps({"access_token": {"xms_cc": {"values": ["CP1"]}}})})
    assert claims_of(r.json()["access_token"])["xms_cc"] == ["CP1"]
    # an app granted nothing gets a token without roles, and Graph refuses it
    tok = token_request(w, client_credentials(s.bare, s.bare_secret)).json()["access_token"]
    assert "roles" not in claims_of(tok)
    assert_graph_error(w.client.get("/v1.0/groups", headers={"Authorization": f"Bearer {tok}"}), 403, "Authorization_RequestDenied", MSG_FORBIDDEN)


def test_client_credentials_errors(world: World, s: Setup) -> None:
    w = world
    app = s.daemon.app_id
    r = token_request(w, client_credentials(s.daemon, "wrong-secret"))
    assert_oauth_error(r, 401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                       f"secret value, not the client secret ID, for a secret added to app '{app}'.")  # fmt: skip
    r = token_request(w, client_credentials(s.daemon, None))
    assert_oauth_error(r, 401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
    unknown = "0b5f4a39-0000-4000-8000-000000000000"
    r = token_request(w, {**client_credentials(s.daemon, s.daemon_secret), "client_id": unknown})
    body = assert_oauth_error(r, 400, "unauthorized_client", 700016)
    assert body["error_description"].startswith(f"AADSTS700016: Application with identifier '{unknown}' was not found in the directory 'graphdir'.")
    # an app of tenant B does not exist at tenant A's endpoint (and vice versa)
    assert_oauth_error(token_request(w, client_credentials(s.b_app, s.b_secret)), 400, "unauthorized_client", 700016)
    assert token_request(w, client_credentials(s.b_app, s.b_secret), tenant=w.tid_b).status_code == 200
    assert_oauth_error(token_request(w, client_credentials(s.daemon, s.daemon_secret), tenant=w.tid_b), 400, "unauthorized_client", 700016)
    r = token_request(w, client_credentials(s.daemon, s.daemon_secret, f"{GRAPH}/GroupMember.ReadWrite.All"))
    assert_oauth_error(r, 400, "invalid_scope", 1002012)
    r = token_request(w, client_credentials(s.daemon, s.daemon_secret, "api://something-else/.default"))
    assert_oauth_error(r, 400, "invalid_resource", 500011)
    r = token_request(w, client_credentials(s.daemon, s.daemon_secret, f"{GRAPH}/.default {GRAPH_APP_ID}/User.Read"))
    assert_oauth_error(r, 400, "invalid_scope", 28000)
    r = token_request(w, {k: v for k, v in client_credentials(s.daemon, s.daemon_secret).items() if k != "scope"})
    assert_oauth_error(r, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
    r = token_request(w, {"client_id": app})
    assert_oauth_error(r, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
    r = w.client.post(f"/{w.tid_a}/oauth2/v2.0/token", json=client_credentials(s.daemon, s.daemon_secret))  # not a form
    assert_oauth_error(r, 400, "invalid_request", 900144)
    assert_oauth_error(token_request(w, {**client_credentials(s.daemon, s.daemon_secret), "grant_type": "urn:x"}), 400, "unsupported_grant_type", 70003)
    assert_oauth_error(token_request(w, client_credentials(s.daemon, s.daemon_secret), tenant="organizations"), 400, "invalid_request", 50059)


def test_expired_secret(world: World) -> None:
    w = world
    app, secret = identity.create_app(w.graph.store, w.tid_a, "old", roles=["Group.Read.All"], secret_years=-0.01)
    assert secret
    assert_oauth_error(token_request(w, client_credentials(app, secret)), 401, "invalid_client", 7000222)


# -- resource-owner password ------------------------------------------------------------------------------------------
def test_password_grant(world: World, s: Setup) -> None:
    w = world
    r = token_request(w, password_grant(s.web, f"alice@{DOMAIN_A}", secret=s.web_secret))
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"access_token", "id_token", "client_info", "scope", "expires_in"} <= set(body)
    c = claims_of(body["access_token"])
    assert c["idtyp"] == "user" and c["oid"] == s.alice.id and c["upn"] == f"alice@{DOMAIN_A}" and c["tid"] == w.tid_a
    assert c["scp"] == "GroupMember.ReadWrite.All User.Read" and "roles" not in c
    assert c["wids"] == [GROUPS_ADMIN]  # from `graphdir role assign`
    assert c["name"] == "Alice Adams" and c["given_name"] == "Alice" and c["appidacr"] == "1" and c["amr"] == ["pwd"]
    idt = claims_of(body["id_token"])
    assert idt["aud"] == s.web.app_id and idt["iss"] == f"http://testserver/{w.tid_a}/v2.0" and idt["oid"] == s.alice.id
    assert idt["preferred_username"] == f"alice@{DOMAIN_A}" and idt["ver"] == "2.0"
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info == {"uid": s.alice.id, "utid": w.tid_a}
    # public client without a secret; /organizations finds the tenant from the user's domain
    r = token_request(w, password_grant(s.native, f"bob@{DOMAIN_A}", scope="User.Read"), tenant="organizations")
    assert r.status_code == 200, r.text
    c = claims_of(r.json()["access_token"])
    assert c["aud"] == GRAPH_APP_ID and c["appidacr"] == "0" and c["wids"] == [] and "id_token" not in r.json()


def test_password_grant_errors(world: World, s: Setup) -> None:
    w = world
    r = token_request(w, password_grant(s.native, f"alice@{DOMAIN_A}", password="nope"))
    assert_oauth_error(r, 400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
    r = token_request(w, password_grant(s.native, f"nobody@{DOMAIN_A}"))
    assert_oauth_error(r, 400, "invalid_grant", 50034)
    r = token_request(w, password_grant(s.native, f"carol@{DOMAIN_A}"))
    assert_oauth_error(r, 400, "invalid_grant", 50057, "The user account is disabled.")
    r = token_request(w, password_grant(s.web, f"alice@{DOMAIN_A}"))  # confidential client without its secret
    assert_oauth_error(r, 401, "invalid_client", 7000218)
    r = token_request(w, password_grant(s.native, f"alice@{DOMAIN_A}", scope=f"{GRAPH}/User.ReadWrite.All"))
    body = assert_oauth_error(r, 400, "invalid_grant", 65001)
    assert body["suberror"] == "consent_required"
    assert_oauth_error(token_request(w, password_grant(s.bare, f"alice@{DOMAIN_A}", secret=s.bare_secret)), 400, "invalid_grant", 65001)
    r = token_request(w, {k: v for k, v in password_grant(s.native, f"alice@{DOMAIN_A}").items() if k != "password"})
    assert_oauth_error(r, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'password'.")
    # a user of tenant A does not exist at tenant B's endpoint
    assert_oauth_error(token_request(w, password_grant(s.native, f"alice@{DOMAIN_A}"), tenant=w.tid_b), 400, "unauthorized_client", 700016)


def test_delegated_token_removes_member_only_where_allowed(world: World, s: Setup) -> None:
    """bob (no role) removes from a group he owns (204) and is refused elsewhere (403); alice (Groups Administrator) may."""
    w = world
    owned = w.new_group([s.bob.id], [w.ids["target"]])
    other = w.new_group([w.ids["owner"]], [w.ids["target"]])
    bob = token_request(w, password_grant(s.native, f"bob@{DOMAIN_A}", scope=f"{GRAPH}/GroupMember.ReadWrite.All")).json()["access_token"]
    auth = {"Authorization": f"Bearer {bob}"}
    assert w.client.delete(f"/v1.0/groups/{owned}/members/{w.ids['target']}/$ref", headers=auth).status_code == 204
    r = w.client.delete(f"/v1.0/groups/{other}/members/{w.ids['target']}/$ref", headers=auth)
    assert_graph_error(r, 403, "Authorization_RequestDenied", MSG_FORBIDDEN)
    alice = token_request(w, password_grant(s.native, f"alice@{DOMAIN_A}")).json()["access_token"]
    r = w.client.delete(f"/v1.0/groups/{other}/members/{w.ids['target']}/$ref", headers={"Authorization": f"Bearer {alice}"})
    assert r.status_code == 204
    assert w.member_ids(owned) == w.member_ids(other) == set()


# -- authorization code + PKCE --------------------------------------------------------------------------------------------
def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"v" * 40).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(w: World, app: StoredApp, login: str | None, password: str = PASSWORD, tenant: str | None = None, **extra: str) -> httpx.Response:
    """Drive the sign-in page like a browser: GET the form, POST it back with the credentials."""
    _, challenge = pkce()
    params = {"client_id": app.app_id, "response_type": "code", "redirect_uri": REDIRECT, "scope": f"{GRAPH}/.default openid profile",
              "state": "st4te", "nonce": "n0nce", "code_challenge": challenge, "code_challenge_method": "S256", **extra}  # fmt: skip
    url = f"/{tenant or w.tid_a}/oauth2/v2.0/authorize"
    page = w.client.get(url, params=params, follow_redirects=False)
    if login is None or page.status_code != 200:
        return page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    fields = {k: v.replace("&amp;", "&").replace("&#x27;", "'").replace("&quot;", '"') for k, v in fields.items()}
    assert fields["client_id"] == app.app_id and 'name="login"' in page.text and 'name="passwd"' in page.text
    return w.client.post(url, data={**fields, "login": login, "passwd": password}, follow_redirects=False)


def test_authorization_code_with_pkce(world: World, s: Setup) -> None:
    w = world
    verifier, _ = pkce()
    r = authorize(w, s.native, f"alice@{DOMAIN_A}")
    assert r.status_code == 302, r.text
    loc = urlsplit(r.headers["location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == REDIRECT
    q = {k: v[0] for k, v in parse_qs(loc.query).items()}
    assert q["state"] == "st4te" and q["code"]
    form = {"grant_type": "authorization_code", "client_id": s.native.app_id, "code": q["code"], "redirect_uri": REDIRECT,
            "code_verifier": verifier, "scope": f"{GRAPH}/.default openid profile"}  # fmt: skip
    r = token_request(w, form)
    assert r.status_code == 200, r.text
    body = r.json()
    assert claims_of(body["access_token"])["oid"] == s.alice.id
    assert claims_of(body["access_token"])["wids"] == [GROUPS_ADMIN]
    assert claims_of(body["id_token"])["nonce"] == "n0nce"
    assert_oauth_error(token_request(w, form), 400, "invalid_grant", 54005)  # one redemption only


def test_authorization_code_errors(world: World, s: Setup) -> None:
    w = world
    # wrong password: the page again, with Entra's message, no redirect
    r = authorize(w, s.native, f"alice@{DOMAIN_A}", password="wrong")
    assert r.status_code == 200 and "Your account or password is incorrect." in r.text
    # unknown client or unregistered redirect URI: an error page, never a redirect
    r = authorize(w, s.native, None, redirect_uri="https://attacker.example/cb")
    assert r.status_code == 400 and "AADSTS50011: The redirect URI &#x27;https://attacker.example/cb&#x27;" in r.text
    r = w.client.get(f"/{w.tid_a}/oauth2/v2.0/authorize", params={"client_id": "0b5f4a39-0000-4000-8000-000000000000", "redirect_uri": REDIRECT})
    assert r.status_code == 400 and "AADSTS700016" in r.text
    # options errors go back to the app
    r = authorize(w, s.native, None, prompt="none")
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert r.status_code == 302 and q["error"] == ["login_required"] and q["state"] == ["st4te"]
    r = authorize(w, s.native, None, response_type="token")
    assert parse_qs(urlsplit(r.headers["location"]).query)["error"] == ["unsupported_response_type"]
    # a wrong verifier, a wrong redirect URI, another client
    changes = (({"code_verifier": "x" * 43}, 501481), ({"redirect_uri": "http://localhost:1/other"}, 50011),
               ({"client_id": s.web.app_id, "client_secret": s.web_secret}, 70000))  # fmt: skip
    for change, code in changes:
        loc = authorize(w, s.native, f"bob@{DOMAIN_A}").headers["location"]
        code_value = parse_qs(urlsplit(loc).query)["code"][0]
        form = {"grant_type": "authorization_code", "client_id": s.native.app_id, "code": code_value, "redirect_uri": REDIRECT,
                "code_verifier": pkce()[0], **change}  # fmt: skip
        assert_oauth_error(token_request(w, form), 400, "invalid_request" if code == 50011 else "invalid_grant", code)
    # form_post response mode
    r = authorize(w, s.native, f"bob@{DOMAIN_A}", response_mode="form_post")
    assert r.status_code == 200 and f'action="{REDIRECT}"' in r.text and 'name="code"' in r.text


def test_authorize_on_organizations_finds_the_tenant(world: World, s: Setup) -> None:
    w = world
    r = authorize(w, s.native, f"bob@{DOMAIN_A}", tenant="organizations")
    assert r.status_code == 302, r.text
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "client_id": s.native.app_id, "code": code, "redirect_uri": REDIRECT, "code_verifier": pkce()[0]}
    r = token_request(w, form, tenant="organizations")
    assert r.status_code == 200 and claims_of(r.json()["access_token"])["oid"] == s.bob.id


# -- validation details -------------------------------------------------------------------------------------------------------------
def _get(w: World, token: str) -> httpx.Response:
    return w.client.get("/v1.0/groups", headers={"Authorization": f"Bearer {token}"})


def test_clock_skew_is_five_minutes(world: World) -> None:
    w = world
    now = int(time.time())
    base = graph_claims(w.tid_a, "x", roles=["GroupMember.Read.All"])
    assert _get(w, w.ring.sign({**base, "exp": now - 200})).status_code == 200  # expired 200 s ago: inside the skew
    assert_graph_error(_get(w, w.ring.sign({**base, "exp": now - 400})), 401, "InvalidAuthenticationToken", MSG_EXPIRED)
    assert _get(w, w.ring.sign({**base, "nbf": now + 200})).status_code == 200
    assert_graph_error(_get(w, w.ring.sign({**base, "nbf": now + 400})), 401, "InvalidAuthenticationToken", MSG_NOT_YET)


def test_malformed_and_unknown_key(world: World) -> None:
    w = world
    assert_graph_error(_get(w, "a.b.c"), 401, "InvalidAuthenticationToken", MSG_INVALID)
    base = graph_claims(w.tid_a, "x", roles=["GroupMember.Read.All"])
    other = jwt.encode(base, w.ring.active.private(), algorithm="RS256", headers={"kid": "no-such-key"})
    assert_graph_error(_get(w, other), 401, "InvalidAuthenticationToken", MSG_SIGNATURE)
    for alg in ("RS512", "PS256"):  # real signatures with the right key, but not the allowed algorithm
        tok = jwt.encode(base, w.ring.active.private(), algorithm=alg, headers={"kid": w.ring.active.kid})
        assert_graph_error(_get(w, tok), 401, "InvalidAuthenticationToken", MSG_SIGNATURE)
    unknown_tenant = w.ring.sign(graph_claims("0b5f4a39-0000-4000-8000-000000000000", "x", roles=["GroupMember.Read.All"]))
    assert_graph_error(_get(w, unknown_tenant), 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer.")
    tampered = app_token(w.ring, w.tid_a, ["Mail.Read"])
    head, body, sig = tampered.split(".")
    evil = base64.urlsafe_b64encode(json.dumps({**claims_of(tampered), "roles": ["Directory.ReadWrite.All"]}).encode()).rstrip(b"=").decode()
    assert_graph_error(_get(w, f"{head}.{evil}.{sig}"), 401, "InvalidAuthenticationToken", MSG_SIGNATURE)


def test_key_rotation_keeps_unexpired_tokens(world: World, s: Setup) -> None:
    """`graphdir keys rotate` in another process: old tokens keep working, new tokens use the new key, JWKS has both."""
    w = world
    old = token_request(w, client_credentials(s.daemon, s.daemon_secret)).json()["access_token"]
    old_kid = jwt.get_unverified_header(old)["kid"]
    new_kid = KeyRing(w.graph.store).rotate().kid  # a second ring on the same database = another process
    assert _get(w, old).status_code == 200
    new = token_request(w, client_credentials(s.daemon, s.daemon_secret)).json()["access_token"]
    assert jwt.get_unverified_header(new)["kid"] == new_kid != old_kid
    assert _get(w, new).status_code == 200
    kids = {k["kid"] for k in w.client.get(f"/{w.tid_a}/discovery/v2.0/keys").json()["keys"]}
    assert {old_kid, new_kid} <= kids


def test_retired_keys_expire(tmp_path: Any) -> None:
    """A retired key is dropped once every token it could have signed has expired."""
    with open_world(tmp_path / "g.db") as w:
        old = app_token(w.ring, w.tid_a, ["GroupMember.Read.All"])
        ring = KeyRing(w.graph.store, max_token_lifetime=0)
        ring.rotate()
        ring.rotate()  # the first rotation's retired key is now older than max_token_lifetime=0
        assert_graph_error(_get(w, old), 401, "InvalidAuthenticationToken", MSG_SIGNATURE)
