"""Helpers for the identity tests (test_auth_matrix, test_authority, test_identity_e2e).

Self-contained on purpose (no ``from conftest import``): tokens forged every way a
caller can get them wrong, Graph's and Entra's error shapes, and a sync in-process
app (Starlette's TestClient runs the lifespan, so the app is really started).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import itertools
import json
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from graphdir import identity
from graphdir.auth.tokens import KeyRing, issuer_for, mint
from graphdir.directory.service import Directory
from graphdir.settings import load_settings
from graphdir.web.app import GraphApp, build_app

GRAPH = "https://graph.microsoft.com"
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
PASSWORD = "xWwvJ]6NMw+bWH-d"
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)
MSG_EMPTY = "Access token is empty."
MSG_NO_DOTS = (
    "IDX14100: JWT is not well formed, there are no dots (.).\n"
    "The token needs to be in JWS or JWE Compact Serialization Format. (JWS): "
    "'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): "
    "'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext.EncodedAuthenticationTag'."
)
MSG_EXPIRED = "Lifetime validation failed, the token is expired."
MSG_NOT_YET = "Lifetime validation failed, the token is not yet valid."
MSG_SIGNATURE = "Signing key is invalid."
MSG_AUDIENCE = "Access token validation failure. Invalid audience."
MSG_ISSUER = "Access token validation failure. Invalid issuer."
MSG_INVALID = "Access token validation failure."
MSG_FORBIDDEN = "Insufficient privileges to complete the operation."
MSG_NOT_FOUND = "Resource '{}' does not exist or one of its queried reference-property objects are not present."
MSG_ME = "/me request is only valid with delegated authentication flow."

GROUPS_ADMIN = "fdd7a751-b60b-444a-984c-02652fe8fa1c"
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def graph_claims(tenant_id: str, app_id: str, *, roles: list[str] | None = None, user_id: str | None = None,
                 scopes: list[str] | None = None, wids: list[str] | None = None, **overrides: Any) -> dict[str, Any]:  # fmt: skip
    """Claims of a Graph access token, as :func:`graphdir.auth.tokens.mint` writes them."""
    now = int(time.time())
    c: dict[str, Any] = {
        "aud": GRAPH, "iss": issuer_for(tenant_id), "iat": now, "nbf": now, "exp": now + 3600, "tid": tenant_id,
        "appid": app_id, "azp": app_id, "ver": "1.0",
    }  # fmt: skip
    if user_id:
        c.update(idtyp="user", oid=user_id, sub=user_id, scp=" ".join(scopes or []), wids=wids or [])
    else:
        c.update(idtyp="app", oid=str(uuid.uuid4()), roles=roles or [])
    c.update(overrides)
    return c


@functools.cache
def other_rsa_key() -> Any:
    """An RSA key the service does not know (made once: RSA generation is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed_by(key: Any, kid: str, claims: dict[str, Any]) -> str:
    """RS256 with a key that is not the service's, under the service's own ``kid`` (a forged signature)."""
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})


def alg_none(kid: str, claims: dict[str, Any]) -> str:
    """An unsigned token (``alg: none``), the classic downgrade."""
    return b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode()) + "." + b64(json.dumps(claims).encode()) + "."


def hs256_with_public_key(ring: KeyRing, claims: dict[str, Any]) -> str:
    """HMAC-SHA256 keyed with the service's *public* key PEM (algorithm confusion)."""
    key = ring.active
    pub = key.private().public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(pub, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def app_token(ring: KeyRing, tenant_id: str, roles: list[str], app_id: str = "11111111-2222-3333-4444-555555555555", **kw: Any) -> str:
    return mint(ring, tenant_id, app_id=app_id, roles=roles, **kw)


def user_token(ring: KeyRing, tenant_id: str, user_id: str, scopes: list[str], wids: list[str] | None = None,
               app_id: str = "11111111-2222-3333-4444-555555555555", **kw: Any) -> str:  # fmt: skip
    return mint(ring, tenant_id, app_id=app_id, user_id=user_id, scopes=scopes, wids=wids or [], **kw)


def assert_graph_error(resp: httpx.Response, status: int, code: str, message: str) -> None:
    """Graph's error JSON (docs/behaviour.md#error-body) with exactly this status, code and message; 401s carry WWW-Authenticate."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers["content-type"]
    body = resp.json()
    assert list(body) == ["error"], body
    err = body["error"]
    assert err["code"] == code, err
    assert err["message"] == message, err["message"]
    assert set(err["innerError"]) == {"date", "request-id", "client-request-id"}
    if status == 401:
        assert resp.headers["www-authenticate"] == WWW_AUTHENTICATE


def assert_oauth_error(resp: httpx.Response, status: int, error: str, code: int, text: str | None = None) -> dict[str, Any]:
    """Entra's OAuth error JSON: error, ``AADSTS<code>: …`` description with trace/correlation ids, error_codes."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    assert "no-store" in resp.headers["cache-control"]
    body: dict[str, Any] = resp.json()
    assert body["error"] == error, body
    assert body["error_codes"] == [code], body
    desc = body["error_description"]
    assert desc.startswith(f"AADSTS{code}: "), desc
    if text is not None:
        assert desc.split("\r\n")[0] == f"AADSTS{code}: {text}", desc
    assert f"Trace ID: {body['trace_id']}" in desc and f"Correlation ID: {body['correlation_id']}" in desc
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)
    return body


# -- an in-process service with two tenants and a personal-account tenant -----------------------------------
DOMAIN_A = "contoso.onmicrosoft.com"
DOMAIN_B = "fabrikam.onmicrosoft.com"
ADMIN_ROLES = ["Directory.ReadWrite.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All", "User.ReadWrite.All", "Graphdir.Admin"]
APP_ID = "11111111-2222-3333-4444-555555555555"

with warnings.catch_warnings():  # Starlette's TestClient (sync, runs the lifespan) announces a move to httpx2
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@dataclass
class World:
    """Tenant A (the default, ``contoso``), tenant B (``fabrikam``) and the consumer tenant, on one app.

    ``ids``: A's users ``member``, ``owner``, ``owner2``, ``gadmin``, ``extra``, ``target``; A's ``group``
    (owners owner+owner2, member target) inside ``parent``; B's ``b_user`` and ``b_group``; the
    personal account ``msa``.
    """

    client: TestClient
    graph: GraphApp
    tid_a: str
    tid_b: str
    admin_a: str
    admin_b: str
    ids: dict[str, str] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def ring(self) -> KeyRing:
        assert self.graph.ring is not None
        return self.graph.ring

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"ConsistencyLevel": "eventual", **kw.pop("headers", {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.request(method, path, headers=headers, **kw)

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    def new_user(self, token: str | None = None, domain: str = DOMAIN_A) -> str:
        nick = self.unique("u")
        body = {"accountEnabled": True, "displayName": nick, "mailNickname": nick, "userPrincipalName": f"{nick}@{domain}",
                "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": PASSWORD}}  # fmt: skip
        r = self.call("POST", "/v1.0/users", token or self.admin_a, json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def new_group(self, owners: list[str], members: list[str], token: str | None = None, kind: str = "security", **props: Any) -> str:
        nick = self.unique("g")
        body: dict[str, Any] = {"displayName": nick, "mailNickname": nick, "mailEnabled": False, "securityEnabled": True}
        if kind == "unified":
            body.update(mailEnabled=True, securityEnabled=False, groupTypes=["Unified"])
        body.update(props)
        body["owners@odata.bind"] = [f"{GRAPH}/v1.0/users/{o}" for o in owners]
        body["members@odata.bind"] = [f"{GRAPH}/v1.0/directoryObjects/{m}" for m in members]
        r = self.call("POST", "/v1.0/groups", token or self.admin_a, json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def member_ids(self, group_id: str) -> set[str]:
        r = self.call("GET", f"/v1.0/groups/{group_id}/members?$top=999", self.admin_a)
        assert r.status_code == 200, r.text
        return {m["id"] for m in r.json()["value"]}


@contextlib.contextmanager
def open_world(db: Path) -> Iterator[World]:
    app = build_app(load_settings(database_url=f"sqlite:///{db}", default_domain=DOMAIN_A, env={}))
    with TestClient(app) as client:
        graph: GraphApp = app.state.graph
        store = graph.store
        tid_a = graph.tenant["id"]
        tid_b = identity.create_tenant(store, "Fabrikam", DOMAIN_B)["id"]
        identity.create_tenant(store, "Microsoft accounts", "live.com", CONSUMER_TENANT)
        assert graph.ring is not None
        w = World(client, graph, tid_a, tid_b, app_token(graph.ring, tid_a, ADMIN_ROLES), app_token(graph.ring, tid_b, ADMIN_ROLES))
        ids = w.ids
        for name in ("member", "owner", "owner2", "gadmin", "extra", "target"):
            ids[name] = w.new_user()
        ids["group"] = w.new_group([ids["owner"], ids["owner2"]], [ids["target"]])
        ids["parent"] = w.new_group([ids["owner"]], [ids["group"]])
        ids["b_user"] = w.new_user(w.admin_b, DOMAIN_B)
        ids["b_group"] = w.new_group([ids["b_user"]], [ids["b_user"]], w.admin_b)
        msa = asyncio.run(identity.create_user(Directory(store, graph.settings), CONSUMER_TENANT, "msa.user@live.com", PASSWORD))
        ids["msa"] = msa.id
        yield w
