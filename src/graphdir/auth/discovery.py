"""The OpenID Connect discovery document of a graphdir tenant (Entra's v2.0 shape)."""

from __future__ import annotations

from typing import Any


def openid_configuration(base: str, segment: str, tenant: dict[str, Any] | None) -> dict[str, Any]:
    """``/{tenant}/v2.0/.well-known/openid-configuration`` as Entra serves it (issuer ``{base}/{tid}/v2.0``).

    Endpoints keep the segment the caller used for ``common``/``organizations`` and use the tenant id
    otherwise (MSAL takes the tenant from ``token_endpoint``).
    """
    seg = tenant["id"] if tenant else segment.lower()
    tid = tenant["id"] if tenant else "{tenantid}"
    root = f"{base}/{seg}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{tid}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "http_logout_supported": False,
        "frontchannel_logout_supported": False,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver",
            "at_hash", "c_hash", "email",
        ],  # fmt: skip
        "grant_types_supported": ["authorization_code", "client_credentials", "password"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }
