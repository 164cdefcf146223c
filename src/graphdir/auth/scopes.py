"""The ``scope`` parameter of Entra's v2.0 endpoints, for the one resource graphdir serves: Microsoft Graph.

``https://graph.microsoft.com/.default`` and ``00000003-0000-0000-c000-000000000000/.default`` ask for
everything granted; ``https://graph.microsoft.com/User.Read`` or a bare ``User.Read`` name one
delegated permission (bare names mean Graph, and the token's ``aud`` is then Graph's app id);
``openid profile email offline_access`` are OpenID Connect scopes
(learn.microsoft.com/entra/identity-platform/scopes-oidc).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphdir.auth.oauth_errors import OAuthError, invalid_scope
from graphdir.auth.tokens import GRAPH_APP_ID

GRAPH_RESOURCE = "https://graph.microsoft.com"
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
_GRAPH_PREFIXES = {GRAPH_RESOURCE: GRAPH_RESOURCE, GRAPH_RESOURCE + "/": GRAPH_RESOURCE, GRAPH_APP_ID: GRAPH_APP_ID}


@dataclass
class Scopes:
    """A parsed ``scope`` parameter: one resource (Graph), its permissions, the OpenID scopes."""

    audience: str = GRAPH_RESOURCE
    default: bool = False  # ``{resource}/.default``
    permissions: list[str] = field(default_factory=list)
    oidc: list[str] = field(default_factory=list)
    named_resource: bool = False


def parse_scopes(raw: str, tenant: dict[str, Any]) -> Scopes:
    """``https://graph.microsoft.com/.default``, ``https://graph.microsoft.com/User.Read``, ``User.Read`` (bare = Graph,
    ``aud`` the Graph app id), ``00000003-…/.default``; other resources are ``AADSTS500011``, two resources ``AADSTS28000``."""
    out = Scopes(audience=GRAPH_APP_ID)
    resources: set[str] = set()
    for item in raw.split():
        if item in OIDC_SCOPES:
            out.oidc.append(item)
            continue
        resource, sep, perm = item.rpartition("/")
        if not sep:  # a bare permission name is a Graph permission
            resources.add(GRAPH_APP_ID)
            out.permissions.append(item)
            continue
        if resource.endswith("/"):  # "https://graph.microsoft.com//.default"
            resource = resource.rstrip("/")
        aud = _GRAPH_PREFIXES.get(resource) or _GRAPH_PREFIXES.get(resource + "/")
        if aud is None:
            raise OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {tenant['displayName']}. This can happen "
                "if the application has not been installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You might have sent your authentication request to the wrong tenant.",
            )
        resources.add(aud)
        out.named_resource = True
        if perm == ".default":
            out.default = True
        elif perm:
            out.permissions.append(perm)
    if len(resources) > 1:
        raise invalid_scope(
            f"Provided value for the input parameter scope '{raw}' is not valid because it contains more than one resource.", 28000
        )
    if resources:
        out.audience = resources.pop()
    if out.default and out.permissions:
        raise invalid_scope(
            f"The provided value for the input parameter 'scope' is not valid. The scope {raw} is not valid. "
            ".default scope can't be combined with resource-specific scopes."
        )
    return out
