"""The ``scope`` parameter of Entra's v2.0 endpoints, for the one resource graphdir serves: Microsoft Graph.

``https://graph.microsoft.com/.default`` and ``00000003-0000-0000-c000-000000000000/.default`` ask for
everything granted; ``https://graph.microsoft.com/User.Read`` or a bare ``User.Read`` name one
delegated permission (bare names mean Graph, and the token's ``aud`` is then Graph's app id);
``openid profile email offline_access`` are OpenID Connect scopes
(learn.microsoft.com/entra/identity-platform/scopes-oidc).

Graph goes by other names too: its national-cloud addresses (``https://graph.microsoft.us``,
``https://microsoftgraph.chinacloudapi.cn``…) and this service's own address (the origin the request
came to and ``public_base_url``), which a tool configured for a custom cloud names as Graph's resource
(``az cloud register --endpoint-microsoft-graph-resource-id https://HOST:PORT/`` asks for
``https://HOST:PORT//.default``). The token's ``aud`` is then the name asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphdir.auth.oauth_errors import OAuthError, invalid_scope
from graphdir.auth.tokens import GRAPH_APP_ID, SOVEREIGN_GRAPH, own_name

GRAPH_RESOURCE = "https://graph.microsoft.com"
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
_GRAPH_PREFIXES = {GRAPH_RESOURCE: GRAPH_RESOURCE, GRAPH_APP_ID: GRAPH_APP_ID, **{r: r for r in SOVEREIGN_GRAPH}}


@dataclass
class Scopes:
    """A parsed ``scope`` parameter: one resource (Graph), its permissions, the OpenID scopes."""

    audience: str = GRAPH_RESOURCE
    default: bool = False  # ``{resource}/.default``
    permissions: list[str] = field(default_factory=list)
    oidc: list[str] = field(default_factory=list)
    named_resource: bool = False


def _graph_name(resource: str, own: dict[str, str]) -> str | None:
    """The ``aud`` for a resource that names Graph, else None (matched without case or trailing ``/``)."""
    key = resource.rstrip("/")
    return _GRAPH_PREFIXES.get(key) or _GRAPH_PREFIXES.get(key.lower()) or own.get(own_name(key))


def parse_scopes(raw: str, tenant: dict[str, Any], own: tuple[str, ...] = ()) -> Scopes:
    """``https://graph.microsoft.com/.default``, ``https://graph.microsoft.com/User.Read``, ``User.Read`` (bare = Graph,
    ``aud`` the Graph app id), ``00000003-…/.default``; Graph's other names (module docstring; ``own``: this service's
    origins); other resources are ``AADSTS500011``, two resources ``AADSTS28000``."""
    own_names = {own_name(o): o.rstrip("/") for o in own if o}
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
        aud = _graph_name(resource, own_names)
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
