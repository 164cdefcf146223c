"""A token authority shaped like Entra ID's v2.0 endpoints (no HTTP here; see :mod:`graphdir.web.authority`).

Grants (learn.microsoft.com/entra/identity-platform/v2-oauth2-*):

* ``client_credentials`` with a client secret (``client_secret_post`` or
  ``client_secret_basic``) → an application token whose ``roles`` are the app's
  granted application permissions. The scope must be ``{resource}/.default``
  (``AADSTS1002012``).
* ``password`` (resource-owner password credentials, for tests and scripts) and
  ``authorization_code`` (with PKCE, ``S256`` or ``plain``) → a delegated token
  whose ``scp`` are the app's consented delegated permissions and whose ``wids``
  are the user's directory role template ids; ``openid`` adds a v2.0 ``id_token``
  and ``client_info=1`` adds ``client_info`` (what MSAL builds accounts from).

Access tokens are Graph's v1.0-format tokens: ``iss`` ``https://sts.windows.net/{tid}/``,
``aud`` ``https://graph.microsoft.com`` (or the Graph app id when the scope named
it), RS256 with the service's key ring. Errors are :class:`OAuthError` with Entra's
``AADSTS`` codes and texts; the web layer renders them as Entra's error JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from typing import Any

from graphdir import ids
from graphdir.auth import apps
from graphdir.auth import oauth_errors as oe
from graphdir.auth.codes import CodeFlow, Grant
from graphdir.auth.scopes import Scopes, parse_scopes
from graphdir.auth.tokens import CONSUMER_TENANT, KeyRing, issuer_for, mint
from graphdir.directory.common import verify_password
from graphdir.settings import Settings
from graphdir.store.base import Store, StoredApp, StoredObject

MULTI_TENANT = ("common", "organizations")


class Authority(CodeFlow):
    """Checks grants and issues tokens for every tenant of one store."""

    def __init__(self, store: Store, ring: KeyRing, settings: Settings) -> None:
        self.store = store
        self.ring = ring
        self.settings = settings

    # -- tenants -----------------------------------------------------------------------------
    def tenant(self, segment: str) -> dict[str, Any] | None:
        """The tenant a path segment names: id, verified domain, ``consumers``; ``None`` for ``common``/``organizations``."""
        key = segment.strip().lower()
        if key in MULTI_TENANT:
            return None
        if key == "consumers":
            key = CONSUMER_TENANT
        if ids.is_guid(key):
            found = self.store.sync(self.store.get_tenant(key))
            if found:
                return found
            raise oe.tenant_not_found(segment)
        found = self.tenant_by_domain(key)
        if found is None:
            raise oe.tenant_not_found(segment)
        return found

    def tenant_by_domain(self, domain: str) -> dict[str, Any] | None:
        domain = domain.lower()
        for t in self.store.sync(self.store.list_tenants()):
            doms = {str(t.get("domain", "")).lower()} | {str(d).lower() for d in t.get("props", {}).get("domains", [])}
            if domain in doms:
                return t
        return None

    # -- clients -----------------------------------------------------------------------------
    def client(self, tenant: dict[str, Any], client_id: str | None) -> StoredApp:
        if not client_id:
            raise oe.missing_parameter("client_id")
        app = self.store.sync(self.store.get_application(tenant["id"], client_id.strip().lower()))
        if app is None:
            raise oe.app_not_found(client_id, tenant)
        return app

    def authenticate_client(self, app: StoredApp, secret: str | None, *, user_flow: bool) -> bool:
        """Check the client secret; public clients may go without one in user flows. Returns "confidential"."""
        if secret:
            verdict = apps.check_secret(app, secret)
            if verdict == "expired":
                raise oe.expired_secret(app.app_id)
            if verdict != "ok":
                raise oe.invalid_secret(app.app_id)
            return True
        if user_flow and app.props.get("publicClient"):
            return False
        raise oe.secret_required()

    # -- users -----------------------------------------------------------------------------------
    def sign_in(self, tenant: dict[str, Any], username: str, password: str) -> StoredObject:
        """Check a user's password (``AADSTS50034`` unknown user, ``AADSTS50126`` wrong password, ``AADSTS50057`` disabled)."""
        user = self.store.sync(self.store.get_by_upn(tenant["id"], username)) if "@" in username else None
        if user is None or user.type != "user" or user.deleted is not None:
            raise oe.unknown_user(tenant)
        stored = (user.props.get("passwordProfile") or {}).get("hash")
        if not isinstance(stored, str) or not verify_password(password, stored):
            raise oe.bad_credentials()
        if user.props.get("accountEnabled") is False:
            raise oe.user_disabled()
        return user

    def user_tenant(self, segment_tenant: dict[str, Any] | None, username: str) -> dict[str, Any]:
        """``common``/``organizations``: the tenant is the one whose verified domain ends the user name."""
        if segment_tenant is not None:
            return segment_tenant
        found = self.tenant_by_domain(username.rpartition("@")[2])
        if found is None:
            raise oe.bad_credentials()
        return found

    # -- grants --------------------------------------------------------------------------------
    def token(self, segment: str, form: dict[str, str], basic: tuple[str, str] | None, base: str, origin: str = "") -> dict[str, Any]:
        """``POST /{tenant}/oauth2/v2.0/token``: dispatch on ``grant_type``. ``origin``: the address the request came to,
        a name of Graph in scopes besides ``base`` (see :mod:`graphdir.auth.scopes`)."""
        own = (base, origin)
        if basic:  # client_secret_basic
            form = {**form, "client_id": form.get("client_id") or basic[0], "client_secret": form.get("client_secret") or basic[1]}
        grant_type = form.get("grant_type")
        if not grant_type:
            raise oe.missing_parameter("grant_type")
        tenant = self.tenant(segment)
        if grant_type == "client_credentials":
            grant = self._client_credentials(segment, tenant, form, own)
        elif grant_type == "password":
            grant = self._password(tenant, form, own)
        elif grant_type == "authorization_code":
            grant = self._authorization_code(tenant, form, own)
        else:
            raise oe.unsupported_grant(grant_type)
        grant.client_info = form.get("client_info") == "1"
        grant.cae = "xms_cc" in form.get("claims", "")
        return self.issue(grant, base)

    def _client_credentials(self, segment: str, tenant: dict[str, Any] | None, form: dict[str, str], own: tuple[str, ...]) -> Grant:
        if tenant is None:
            raise oe.no_tenant()
        if form.get("client_assertion"):
            raise oe.client_assertion_unsupported()
        app = self.client(tenant, form.get("client_id"))
        self.authenticate_client(app, form.get("client_secret"), user_flow=False)
        raw = form.get("scope")
        if not raw:
            raise oe.missing_parameter("scope")
        scopes = parse_scopes(raw, tenant, own)
        if not scopes.default or scopes.oidc:
            raise oe.invalid_scope(
                f"The provided value for scope {raw} is not valid. Client credential flows must have a scope value with /.default "
                "suffixed to the resource identifier (application ID URI).",
                1002012,
            )
        return Grant(tenant, app, scopes, confidential=True)

    def _password(self, segment_tenant: dict[str, Any] | None, form: dict[str, str], own: tuple[str, ...]) -> Grant:
        for name in ("username", "password", "scope"):
            if not form.get(name):
                raise oe.missing_parameter(name)
        tenant = self.user_tenant(segment_tenant, form["username"])
        app = self.client(tenant, form.get("client_id"))
        confidential = self.authenticate_client(app, form.get("client_secret"), user_flow=True)
        scopes = parse_scopes(form["scope"], tenant, own)
        user = self.sign_in(tenant, form["username"], form["password"])
        self.delegated_permissions(app, scopes)
        return Grant(tenant, app, scopes, user=user, confidential=confidential)

    # -- issuing ---------------------------------------------------------------------------------
    def delegated_permissions(self, app: StoredApp, scopes: Scopes) -> list[str]:
        """The ``scp`` of a user token: all consented scopes (as Entra issues them); unconsented asks are AADSTS65001."""
        consented = list(app.props.get("scopes", []))
        missing = [p for p in scopes.permissions if p not in consented]
        if missing or not consented:
            raise oe.consent_required(app)
        return consented

    def role_ids(self, tenant_id: str, user: StoredObject) -> list[str]:
        """``wids``: the user's directory role template ids (role assignments, plus legacy ``_roles`` seeds)."""
        out = list(self.store.sync(self.store.role_ids(tenant_id, user.id)))
        for r in user.props.get("_roles", []) or []:
            if r not in out:
                out.append(r)
        return out

    def issue(self, grant: Grant, base: str) -> dict[str, Any]:
        tid = grant.tenant["id"]
        app = grant.app
        lifetime = self.settings.token_lifetime
        extra: dict[str, Any] = {
            "app_displayname": app.display_name,
            "appidacr": "1" if grant.confidential else "0",
            "idp": issuer_for(tid),
            "rh": "0." + secrets.token_urlsafe(24),
            "tenant_region_scope": "EU",
        }
        if grant.cae:
            extra["xms_cc"] = ["CP1"]
        body: dict[str, Any] = {"token_type": "Bearer"}
        user = grant.user
        if user is None:
            access = mint(self.ring, tid, app_id=app.app_id, roles=list(app.props.get("roles", [])), lifetime=lifetime,
                          audience=grant.scopes.audience, extra=extra)  # fmt: skip
        else:
            scp = self.delegated_permissions(app, grant.scopes)
            p = user.props
            extra.update({"amr": ["pwd"], "acr": "1", "name": p.get("displayName"), "unique_name": p.get("userPrincipalName")})
            for claim, prop in (("given_name", "givenName"), ("family_name", "surname")):
                if p.get(prop):
                    extra[claim] = p[prop]
            access = mint(self.ring, tid, app_id=app.app_id, scopes=scp, user_id=user.id, upn=p.get("userPrincipalName"),
                          wids=self.role_ids(tid, user), lifetime=lifetime, audience=grant.scopes.audience, extra=extra)  # fmt: skip
            body["scope"] = " ".join(scp + grant.scopes.oidc)
        body.update({"expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access})
        if user is not None and "openid" in grant.scopes.oidc:
            body["id_token"] = self.id_token(grant, user, base)
        if user is not None and grant.client_info:
            body["client_info"] = _b64json({"uid": user.id, "utid": tid})
        return body

    def id_token(self, grant: Grant, user: StoredObject, base: str) -> str:
        """A v2.0 ID token (issuer ``{base}/{tid}/v2.0``, as the openid-configuration says)."""
        tid = grant.tenant["id"]
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": grant.app.app_id,
            "iss": f"{base}/{tid}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + self.settings.token_lifetime,
            "name": user.props.get("displayName"),
            "oid": user.id,
            "preferred_username": user.props.get("userPrincipalName"),
            "rh": "0." + secrets.token_urlsafe(24),
            "sub": base64.urlsafe_b64encode(hashlib.sha256(f"{user.id}/{grant.app.app_id}".encode()).digest()).rstrip(b"=").decode(),
            "tid": tid,
            "uti": uuid.uuid4().hex[:22],
            "ver": "2.0",
        }
        if "email" in grant.scopes.oidc and user.props.get("mail"):
            claims["email"] = user.props["mail"]
        if grant.nonce:
            claims["nonce"] = grant.nonce
        return self.ring.sign(claims)


def _b64json(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()
