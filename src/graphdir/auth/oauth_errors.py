"""OAuth 2.0 errors as Entra ID reports them: ``error``, ``AADSTS<code>: <text>``, HTTP status.

Texts follow Entra's error-code reference (learn.microsoft.com/entra/identity-platform/reference-error-codes)
and what Entra answers on the wire; where graphdir had to choose a code or wording (no public
sample) the function says so. The web layer (:func:`graphdir.web.authority.oauth_error`) adds
the trace/correlation ids and the timestamp.
"""

from __future__ import annotations

from typing import Any

from graphdir.store.base import StoredApp


class OAuthError(Exception):
    """An OAuth 2.0 error as Entra reports it: ``error``, ``AADSTS<code>: <text>``, HTTP status."""

    def __init__(self, error: str, code: int, text: str, status: int = 400, suberror: str | None = None) -> None:
        super().__init__(f"AADSTS{code}: {text}")
        self.error = error
        self.code = code
        self.text = text
        self.status = status
        self.suberror = suberror

    @property
    def description(self) -> str:
        return f"AADSTS{self.code}: {self.text}"


def missing_parameter(name: str) -> OAuthError:
    return OAuthError("invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def tenant_not_found(segment: str) -> OAuthError:
    return OAuthError(
        "invalid_tenant" if segment else "invalid_request",
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. "
        "Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
    )


def app_not_found(app_id: str, tenant: dict[str, Any]) -> OAuthError:
    return OAuthError(
        "unauthorized_client",
        700016,
        f"Application with identifier '{app_id}' was not found in the directory '{tenant['displayName']}'. This can happen if the "
        "application has not been installed by the administrator of the tenant or consented to by any user in the tenant. "
        "You may have sent your authentication request to the wrong tenant.",
    )


def invalid_secret(app_id: str) -> OAuthError:
    return OAuthError(
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
        f"not the client secret ID, for a secret added to app '{app_id}'.",
        status=401,
    )


def expired_secret(app_id: str) -> OAuthError:
    return OAuthError(
        "invalid_client",
        7000222,
        f"The provided client secret keys for app '{app_id}' are expired. Visit the Azure portal to create new keys for your app: "
        "https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
        status=401,
    )


def secret_required() -> OAuthError:
    return OAuthError("invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.", status=401)


def bad_credentials() -> OAuthError:
    return OAuthError("invalid_grant", 50126, "Error validating credentials due to invalid username or password.")


def consent_required(app: StoredApp) -> OAuthError:
    return OAuthError(
        "invalid_grant",
        65001,
        f"The user or administrator has not consented to use the application with ID '{app.app_id}' named '{app.display_name}'. "
        "Send an interactive authorization request for this user and resource.",
        suberror="consent_required",
    )


def invalid_scope(text: str, code: int = 70011) -> OAuthError:
    return OAuthError("invalid_scope", code, text)


def redirect_mismatch(uri: str, app_id: str) -> OAuthError:
    return OAuthError(
        "invalid_request",
        50011,
        f"The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application "
        f"'{app_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. "
        "Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
    )


def unsupported_grant(grant_type: str) -> OAuthError:
    """An unknown ``grant_type`` [INF: wording chosen by graphdir]."""
    return OAuthError("unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'.")


def no_tenant() -> OAuthError:
    """``client_credentials`` on ``/common`` or ``/organizations``."""
    return OAuthError(
        "invalid_request", 50059, "No tenant-identifying information found in either the request or implied by any provided credentials."
    )


def code_redeemed() -> OAuthError:
    """An unknown, already used or foreign authorization code."""
    return OAuthError(
        "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."
    )


def code_expired() -> OAuthError:
    return OAuthError(
        "invalid_grant",
        70008,
        "The provided authorization code or refresh token has expired due to inactivity. "
        "Send a new interactive authorization request for this user and resource.",
    )


def code_client_mismatch() -> OAuthError:
    """A code redeemed by another client than the one it was issued to [INF: code chosen by graphdir]."""
    return OAuthError(
        "invalid_grant",
        70000,
        "The request was denied because one or more scopes requested are unauthorized or expired. "
        "The user must first sign in and grant the client application access to the requested scope.",
    )


def pkce_mismatch() -> OAuthError:
    return OAuthError("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")


def user_disabled() -> OAuthError:
    return OAuthError("invalid_grant", 50057, "The user account is disabled.")


def unknown_user(tenant: dict[str, Any]) -> OAuthError:
    return OAuthError(
        "invalid_grant",
        50034,
        f"The user account {{EUII Hidden}} does not exist in the {tenant['id']} directory. To sign into this application, "
        "the account must be added to the directory.",
    )


def unsupported_response_type(response_type: str) -> OAuthError:
    if "id_token" in response_type:
        return OAuthError("unsupported_response_type", 700054, "response_type 'id_token' is not enabled for the application.")
    return OAuthError(
        "unsupported_response_type",
        700054,
        "The provided value for the input parameter 'response_type' is not allowed for this request. Expected value: 'code'.",
    )


def login_required() -> OAuthError:
    return OAuthError("login_required", 50058, "A silent sign-in request was sent but no user is signed in.")


def client_assertion_unsupported() -> OAuthError:
    """Certificate credentials are not implemented; graphdir says so in the text [INF]."""
    return OAuthError("invalid_client", 700027, "Client assertion failed signature validation. (graphdir accepts client secrets only.)", status=401)
