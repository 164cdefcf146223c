"""The authorization code grant with PKCE (learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow).

``/authorize`` validates the client and redirect URI (errors there are shown, never
redirected), then the options (errors redirected back with ``error=…``), signs the
user in and issues a one-time code: stored hashed for ten minutes, bound to the
client, redirect URI, user, scope, ``nonce`` and PKCE challenge (``S256`` or
``plain``). The token endpoint redeems it once (``AADSTS54005`` afterwards).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from graphdir.auth import oauth_errors as oe
from graphdir.auth.scopes import Scopes, parse_scopes
from graphdir.store.base import Store, StoredApp, StoredObject

CODE_LIFETIME = 600  # seconds; Entra's authorization codes live about 10 minutes


@dataclass
class Grant:
    """Who a token is for, once a grant has been checked."""

    tenant: dict[str, Any]
    app: StoredApp
    scopes: Scopes
    user: StoredObject | None = None
    confidential: bool = False
    nonce: str | None = None
    client_info: bool = False
    cae: bool = False


class CodeFlow:
    """Mixed into :class:`graphdir.auth.authority.Authority`, which provides the methods declared here."""

    store: Store

    def client(self, tenant: dict[str, Any], client_id: str | None) -> StoredApp:
        raise NotImplementedError

    def authenticate_client(self, app: StoredApp, secret: str | None, *, user_flow: bool) -> bool:
        raise NotImplementedError

    def delegated_permissions(self, app: StoredApp, scopes: Scopes) -> list[str]:
        raise NotImplementedError

    def check_authorize(self, tenant: dict[str, Any] | None, params: dict[str, str]) -> tuple[dict[str, Any] | None, StoredApp | None, str]:
        """Validate an ``/authorize`` request up to the redirect URI (errors before it are shown, not redirected)."""
        client_id = params.get("client_id")
        if not client_id:
            raise oe.missing_parameter("client_id")
        redirect_uri = params.get("redirect_uri", "")
        if tenant is None:
            return None, None, redirect_uri  # the user's domain will decide
        app = self.client(tenant, client_id)
        uris = list(app.props.get("redirectUris", []))
        if not redirect_uri and len(uris) == 1:
            redirect_uri = uris[0]
        if redirect_uri not in uris:
            raise oe.redirect_mismatch(redirect_uri, app.app_id)
        return tenant, app, redirect_uri

    def check_authorize_options(self, tenant: dict[str, Any], app: StoredApp, params: dict[str, str], own: tuple[str, ...] = ()) -> Scopes:
        """Errors that are redirected back to the app (``error=…&error_description=…``)."""
        if params.get("response_type") != "code":
            raise oe.unsupported_response_type(params.get("response_type", ""))
        method = params.get("code_challenge_method") or ("plain" if params.get("code_challenge") else "")
        if method and method not in ("S256", "plain"):
            raise oe.OAuthError("invalid_request", 501491, f"Invalid code_challenge_method '{method}'.")
        if not params.get("scope"):
            raise oe.missing_parameter("scope")
        scopes = parse_scopes(params["scope"], tenant, own)
        self.delegated_permissions(app, scopes)
        return scopes

    def issue_code(self, tenant: dict[str, Any], app: StoredApp, user: StoredObject, redirect_uri: str, params: dict[str, str]) -> str:
        """A one-time code (stored hashed, ten minutes) bound to client, redirect URI, user, scope, nonce and PKCE challenge."""
        # opaque to clients; the tenant rides along so that /common and /organizations can redeem it
        code = "1." + base64.urlsafe_b64encode(tenant["id"].encode()).rstrip(b"=").decode() + "." + secrets.token_urlsafe(96)
        props = {
            "client_id": app.app_id,
            "redirect_uri": redirect_uri,
            "user_id": user.id,
            "scope": params.get("scope", ""),
            "nonce": params.get("nonce"),
            "code_challenge": params.get("code_challenge"),
            "code_challenge_method": params.get("code_challenge_method") or ("plain" if params.get("code_challenge") else None),
        }
        digest = hashlib.sha256(code.encode()).hexdigest()
        expires = time.time() + CODE_LIFETIME
        self.store.write_sync(tenant["id"], lambda tx: tx.put_auth_code(digest, props, expires))
        return code

    def _authorization_code(self, segment_tenant: dict[str, Any] | None, form: dict[str, str], own: tuple[str, ...] = ()) -> Grant:
        code = form.get("code")
        if not code:
            raise oe.missing_parameter("code")
        digest = hashlib.sha256(code.encode()).hexdigest()
        try:
            part = code.split(".")[1]
            tid = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()
        except (IndexError, ValueError):
            tid = ""
        tenant = self.store.sync(self.store.get_tenant(tid)) if tid else None
        if segment_tenant is not None and tenant is not None and tenant["id"] != segment_tenant["id"]:
            tenant = None
        taken = self.store.write_sync(tenant["id"], lambda tx: tx.take_auth_code(digest)) if tenant else None
        if tenant is None or taken is None:
            raise oe.code_redeemed()
        props, expires = taken
        if expires < time.time():
            raise oe.code_expired()
        app = self.client(tenant, form.get("client_id"))
        if app.app_id != props["client_id"]:
            raise oe.code_client_mismatch()
        confidential = self.authenticate_client(app, form.get("client_secret"), user_flow=True)
        if form.get("redirect_uri", "") != props["redirect_uri"]:
            raise oe.redirect_mismatch(form.get("redirect_uri", ""), app.app_id)
        challenge = props.get("code_challenge")
        if challenge:
            verifier = form.get("code_verifier")
            if not verifier:
                raise oe.missing_parameter("code_verifier")
            if props.get("code_challenge_method") == "S256":
                computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            else:
                computed = verifier
            if computed != challenge:
                raise oe.pkce_mismatch()
        user = self.store.sync(self.store.get(tenant["id"], props["user_id"]))
        if user is None or user.deleted is not None or user.props.get("accountEnabled") is False:
            raise oe.user_disabled()
        scopes = parse_scopes(props["scope"], tenant, own)
        return Grant(tenant, app, scopes, user=user, confidential=confidential, nonce=props.get("nonce"))

