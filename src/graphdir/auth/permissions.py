"""Graph's permission model at the route level.

Each route declares its delegated and application permission lists, least
privileged first, from the doc pages' tables (https://learn.microsoft.com/en-us/graph/permissions-reference). A token
passes when it holds any one of the list for its kind (and, where a table
pairs permissions, one of the route's second list too); personal Microsoft
accounts are refused where the page says "Not supported".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphdir import errors
from graphdir.auth.tokens import CONSUMER_TENANT
from graphdir.directory.rights import Actor


@dataclass(frozen=True)
class Perms:
    delegated: tuple[str, ...]
    application: tuple[str, ...]
    personal: tuple[str, ...] = ()  # scopes a personal Microsoft account may use ("Not supported" = empty)
    #: a second condition, for tables that read "User.Read.All and GroupMember.Read.All, …":
    #: the token must also hold one of these (either kind; empty = no second condition)
    also: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.delegated and not self.application:
            raise ValueError("a route must declare its permissions")


def actor_from_claims(claims: dict[str, Any]) -> Actor:
    delegated = claims.get("idtyp") == "user" or ("scp" in claims and "roles" not in claims)
    if delegated:
        perms = frozenset(str(claims.get("scp", "")).split())
    else:
        roles = claims.get("roles") or []
        perms = frozenset(r for r in roles if isinstance(r, str))
    wids = claims.get("wids") or []
    return Actor(
        tenant_id=str(claims["tid"]),
        delegated=delegated,
        user_id=str(claims.get("oid")) if delegated and claims.get("oid") else None,
        app_id=str(claims.get("appid") or claims.get("azp") or "") or None,
        permissions=perms,
        role_ids=frozenset(w for w in wids if isinstance(w, str)),
    )


def authorize(actor: Actor, perms: Perms) -> None:
    """403 ``Authorization_RequestDenied`` unless the token holds one of the route's permissions."""
    if actor.tenant_id == CONSUMER_TENANT:
        if not (actor.delegated and actor.permissions & set(perms.personal)):
            raise errors.forbidden()
        return
    wanted = perms.delegated if actor.delegated else perms.application
    if not actor.permissions.intersection(wanted):
        raise errors.forbidden()
    if perms.also and not actor.permissions.intersection(perms.also):
        raise errors.forbidden()
