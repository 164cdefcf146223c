"""Entra ID's v2.0 endpoints on Starlette: discovery, keys, token, authorize.

Routes (all under the service's own origin; ``{tenant}`` is a tenant id, a
verified domain, ``organizations``/``common`` or ``consumers``):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` — MSAL's tenant discovery;
* ``GET /{tenant}/discovery/v2.0/keys`` (and ``/{tenant}/discovery/keys``) — the JWKS;
* ``POST /{tenant}/oauth2/v2.0/token`` — ``client_credentials``, ``password``, ``authorization_code``;
* ``GET|POST /{tenant}/oauth2/v2.0/authorize`` — a sign-in form that issues authorization codes;
* ``GET /common/discovery/instance`` — instance discovery (for MSAL's ``instance_discovery`` URL);
* ``GET /common/userrealm/{username}`` — user realm discovery (MSAL's password flow asks it).

Errors are Entra's JSON: ``{"error", "error_description": "AADSTS…: … Trace ID: … Correlation ID: …
Timestamp: …", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}``;
``invalid_client`` answers 401, the others 400 (learn.microsoft.com/entra/identity-platform/reference-error-codes).
"""

from __future__ import annotations

import base64
import html
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from graphdir import errors
from graphdir.auth import oauth_errors as oe
from graphdir.auth.authority import MULTI_TENANT
from graphdir.auth.discovery import openid_configuration
from graphdir.auth.oauth_errors import OAuthError

if TYPE_CHECKING:
    from graphdir.web.app import GraphApp

_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
_SIGN_IN_FAILED = "Your account or password is incorrect. If you don't remember your password, reset it now."
_SIGN_IN_CODES = {50034, 50126, 50057}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json; charset=utf-8", headers={**_NO_STORE, **(headers or {})})


def _ids(request: Request) -> tuple[str, str, str]:
    trace = str(uuid.uuid4())
    corr = request.headers.get("client-request-id") or str(uuid.uuid4())
    return trace, corr, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def oauth_error(exc: OAuthError, request: Request) -> Response:
    """Entra's OAuth 2.0 error body."""
    trace, corr, ts = _ids(request)
    body: dict[str, Any] = {
        "error": exc.error,
        "error_description": f"{exc.description}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {ts}",
        "error_codes": [exc.code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": f"https://login.microsoftonline.com/error?code={exc.code}",
    }
    if exc.suberror:
        body["suberror"] = exc.suberror
    return _json(body, exc.status, {"x-ms-request-id": trace, "client-request-id": corr})


async def _form(graph: GraphApp, request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (anything else reads as empty, as at Entra)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        raw = await graph.read_body(request)
    except errors.GraphError:
        raise OAuthError("invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.") from None
    if ctype != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _basic(request: Request) -> tuple[str, str] | None:
    """``client_secret_basic``: ``Authorization: Basic base64(urlencode(id):urlencode(secret))`` (RFC 6749 §2.3.1)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, _, pw = base64.b64decode(value.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return unquote_plus(user), unquote_plus(pw)


# -- the authorize page --------------------------------------------------------------------------------
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title></head>
<body><main style="font-family:sans-serif;max-width:26em;margin:4em auto">
<h1>Sign in</h1><p>graphdir &middot; {tenant}</p>{message}
<form method="post" action="{action}">
{hidden}
<label>Email or phone<br><input type="email" name="login" value="{login}" autocomplete="username" required></label><br><br>
<label>Password<br><input type="password" name="passwd" autocomplete="current-password" required></label><br><br>
<input type="submit" value="Sign in">
</form></main></body></html>
"""


def _page(action: str, tenant: str, params: dict[str, str], login: str = "", message: str = "", status: int = 200) -> HTMLResponse:
    hidden = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items() if k not in ("login", "passwd")
    )
    msg = f'<p role="alert" id="passwordError" style="color:#a00">{html.escape(message)}</p>' if message else ""
    body = _PAGE.format(action=html.escape(action), tenant=html.escape(tenant), hidden=hidden, login=html.escape(login), message=msg)
    return HTMLResponse(body, status_code=status, headers=_NO_STORE)


def _error_page(exc: OAuthError, request: Request) -> HTMLResponse:
    trace, corr, ts = _ids(request)
    text = html.escape(exc.description)
    body = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to your account</title></head><body>"
        f"<h1>Sign in</h1><p>Sorry, but we're having trouble signing you in.</p><p id=\"error\">{text}</p>"
        f"<p>Request Id: {trace}<br>Correlation Id: {corr}<br>Timestamp: {ts}</p></body></html>"
    )
    return HTMLResponse(body, status_code=exc.status, headers=_NO_STORE)


def _to_client(redirect_uri: str, mode: str, values: dict[str, str]) -> Response:
    """Send the result to the app: ``query`` (default for codes), ``fragment`` or ``form_post``."""
    if mode == "form_post":
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in values.items())
        page = (
            "<!DOCTYPE html><html><head><title>Working...</title></head><body onload=\"document.forms[0].submit()\">"
            f'<form method="POST" action="{html.escape(redirect_uri)}">{fields}<noscript><input type="submit" value="Continue"></noscript></form></body></html>'
        )
        return HTMLResponse(page, headers=_NO_STORE)
    sep = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return RedirectResponse(redirect_uri + sep + urlencode(values), status_code=302, headers=_NO_STORE)


def _redirect_error(redirect_uri: str, params: dict[str, str], exc: OAuthError) -> Response:
    values = {"error": exc.error, "error_description": exc.description}
    if "state" in params:
        values["state"] = params["state"]
    return _to_client(redirect_uri, params.get("response_mode", "query"), values)


# -- endpoints ------------------------------------------------------------------------------------------
def authority_routes(graph: GraphApp) -> list[Route]:
    """The authority's Starlette routes; mount them before Graph's catch-all ``/{version}/{path}``."""

    def base(request: Request) -> str:
        return graph.public_base(request)

    def own(request: Request) -> tuple[str, str]:
        """This service's names, which scopes may use for Graph: ``public_base_url`` and the request's origin."""
        return base(request), graph.origin(request)

    async def openid_config(request: Request) -> Response:
        segment = request.path_params["tenant"]
        try:
            tenant = graph.authority.tenant(segment)
        except OAuthError as exc:
            return oauth_error(exc, request)
        return _json(openid_configuration(base(request), segment, tenant), headers={"Access-Control-Allow-Origin": "*"})

    async def keys(request: Request) -> Response:
        segment = request.path_params["tenant"]
        try:
            graph.authority.tenant(segment)
        except OAuthError as exc:
            return oauth_error(exc, request)
        assert graph.ring is not None
        return _json(graph.ring.jwks(), headers={"Access-Control-Allow-Origin": "*"})

    async def token(request: Request) -> Response:
        try:
            form = await _form(graph, request)
            # password hashing and the writer's commit (codes) must not hold up the event loop
            body = await run_in_threadpool(graph.authority.token, request.path_params["tenant"], form, _basic(request), base(request),
                                           graph.origin(request))  # fmt: skip
        except OAuthError as exc:
            return oauth_error(exc, request)
        return _json(body)

    async def authorize(request: Request) -> Response:
        segment = request.path_params["tenant"]
        auth = graph.authority
        if request.method == "POST":
            fields = await _form(graph, request)
            params = {k: v for k, v in fields.items() if k not in ("login", "passwd")}
        else:
            fields = params = dict(request.query_params)
        try:
            seg_tenant = auth.tenant(segment)
            tenant, app, redirect_uri = auth.check_authorize(seg_tenant, params)
        except OAuthError as exc:
            return _error_page(exc, request)
        if tenant is not None and app is not None:
            try:
                auth.check_authorize_options(tenant, app, params, own(request))
                if params.get("prompt") == "none":
                    raise oe.login_required()
            except OAuthError as exc:
                return _redirect_error(redirect_uri, params, exc)
        action = str(request.url.replace(query=""))
        label = tenant["displayName"] if tenant else segment
        if request.method == "GET" or not fields.get("login"):
            return _page(action, label, params, login=params.get("login_hint", ""))
        login, password = fields["login"], fields.get("passwd", "")
        try:
            tenant = auth.user_tenant(seg_tenant, login)
            tenant, app, redirect_uri = auth.check_authorize(tenant, params)
            assert tenant is not None and app is not None
        except OAuthError as exc:
            if exc.code in _SIGN_IN_CODES:
                return _page(action, label, params, login=login, message=_SIGN_IN_FAILED)
            return _error_page(exc, request)
        try:
            auth.check_authorize_options(tenant, app, params, own(request))
        except OAuthError as exc:
            return _redirect_error(redirect_uri, params, exc)
        try:
            user = await run_in_threadpool(auth.sign_in, tenant, login, password)
        except OAuthError as exc:
            return _page(action, label, params, login=login, message=_SIGN_IN_FAILED if exc.code in _SIGN_IN_CODES else exc.description)
        code = await run_in_threadpool(auth.issue_code, tenant, app, user, redirect_uri, params)
        values = {"code": code}
        if "state" in params:
            values["state"] = params["state"]
        values["session_state"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant['id']}/{user.id}"))
        return _to_client(redirect_uri, params.get("response_mode", "query"), values)

    async def instance_discovery(request: Request) -> Response:
        """``/common/discovery/instance?authorization_endpoint=…``: this host is its own (only) instance."""
        endpoint = request.query_params.get("authorization_endpoint", "")
        parts = urlsplit(endpoint)
        own = urlsplit(base(request))
        if parts.netloc.lower() != own.netloc.lower():
            return oauth_error(OAuthError("invalid_instance", 50049, "Unknown or invalid instance."), request)
        segs = [s for s in parts.path.split("/") if s]
        tenant = segs[0] if segs else "common"
        host = own.netloc
        return _json({
            "tenant_discovery_endpoint": f"{base(request)}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        })  # fmt: skip

    async def user_realm(request: Request) -> Response:
        """``/common/userrealm/{user}``: every graphdir tenant is *managed* (no federation)."""
        username = request.path_params["username"]
        tenant = graph.authority.tenant_by_domain(username.rpartition("@")[2]) if "@" in username else None
        if tenant is None:
            return _json({"ver": "1.0", "account_type": "Unknown", "cloud_instance_name": "microsoftonline.com"})
        return _json({
            "ver": "1.0", "account_type": "Managed", "domain_name": tenant["domain"], "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        })  # fmt: skip

    return [
        Route("/common/discovery/instance", instance_discovery, methods=["GET"]),
        Route("/common/userrealm/{username}", user_realm, methods=["GET"]),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_config, methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", keys, methods=["GET"]),
        Route("/{tenant}/discovery/keys", keys, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=["GET", "POST"]),
    ]


__all__ = ["MULTI_TENANT", "authority_routes", "oauth_error"]
