"""Managing tenants, applications, users and directory roles without hand-editing a database.

Shared by the CLI (``graphdir tenant|app|user|role …``) and seed files (``graphdir seed``).
Users are created through the directory's own ``POST /users`` rules (verified
domain, password complexity), so a user made here is the same as one made over
Graph; role assignments and applications go through the store's single writer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from graphdir import errors, ids
from graphdir.auth import apps
from graphdir.directory.rights import ROLE_NAMES, Actor, role_template_id
from graphdir.directory.service import Directory
from graphdir.store.base import Store, StoredApp, StoredObject, Txn

#: A DNS name of at least two labels (letters, digits, inner hyphens), as Entra's verified domains are.
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")


def check_domain(domain: str) -> str:
    """A domain name, lower-cased, else :class:`IdentityError` (``not a domain`` is refused)."""
    d = domain.strip().lower() if isinstance(domain, str) else ""
    if not _DOMAIN.match(d):
        raise IdentityError(f"not a domain name: {domain!r} (expected e.g. fabrikam.onmicrosoft.com)")
    return d


def role_ids(roles: Sequence[str]) -> list[str]:
    """Directory role names or template ids → template ids; an unknown one → :class:`IdentityError`."""
    out: list[str] = []
    for role in roles:
        try:
            out.append(role_template_id(role))
        except ValueError as exc:
            raise IdentityError(str(exc)) from None
    return out


#: The acting principal of the CLI and seed files: an app holding every directory write permission.
def cli_actor(tenant_id: str) -> Actor:
    return Actor(tenant_id=tenant_id, app_id="graphdir-cli", permissions=frozenset({"Directory.ReadWrite.All", "RoleManagement.ReadWrite.Directory"}))


class IdentityError(Exception):
    """A management request that cannot be done (unknown tenant, user, role…)."""


def find_tenant(store: Store, key: str) -> dict[str, Any]:
    """A tenant by id or by one of its domains."""
    k = key.strip().lower()
    if ids.is_guid(k):
        t = store.sync(store.get_tenant(k))
        if t:
            return t
    for t in store.sync(store.list_tenants()):
        if k in {str(t["domain"]).lower(), *(str(d).lower() for d in t.get("props", {}).get("domains", []))}:
            return t
    raise IdentityError(f"no tenant {key!r}")


def create_tenant(store: Store, display_name: str, domain: str, tenant_id: str | None = None, domains: list[str] | None = None) -> dict[str, Any]:
    """A tenant with one initial (verified) domain, e.g. ``fabrikam.onmicrosoft.com``."""
    tid = (tenant_id or str(uuid.uuid4())).lower()
    if not ids.is_guid(tid):
        raise IdentityError(f"tenant id must be a GUID: {tenant_id!r}")
    if store.sync(store.get_tenant(tid)):
        raise IdentityError(f"tenant {tid} already exists")
    first = check_domain(domain)
    all_domains = [first] + [d for d in (check_domain(x) for x in domains or []) if d != first]
    for d in all_domains:
        try:
            other = find_tenant(store, d)
        except IdentityError:
            continue
        raise IdentityError(f"domain {d} already belongs to tenant {other['id']}")
    store.put_tenant({"id": tid, "displayName": display_name, "domain": all_domains[0], "props": {"domains": all_domains}})
    t = store.sync(store.get_tenant(tid))
    assert t is not None
    return t


def create_app(
    store: Store,
    tenant_id: str,
    display_name: str,
    *,
    roles: list[str] | None = None,
    scopes: list[str] | None = None,
    public_client: bool = False,
    redirect_uris: list[str] | None = None,
    secret: str | bool = True,
    app_id: str | None = None,
    secret_years: float = 2.0,
) -> tuple[StoredApp, str | None]:
    """Register an application; ``secret=True`` generates a client secret (returned once), a string sets it."""
    if app_id and store.sync(store.get_application(tenant_id, app_id.lower())):
        raise IdentityError(f"application {app_id} already exists in tenant {tenant_id}")
    value = apps.new_secret_value() if secret is True else (secret or None)
    app = apps.build_app(tenant_id, display_name, app_id=app_id, roles=roles, scopes=scopes, public_client=public_client,
                         redirect_uris=redirect_uris, secret=value, secret_years=secret_years)  # fmt: skip
    apps.save_app(store, app)
    return app, value


def find_app(store: Store, tenant_id: str, key: str) -> StoredApp:
    app = store.sync(store.get_application(tenant_id, key.lower()))
    if app is None:
        for a in store.sync(store.list_applications(tenant_id)):
            if a.display_name.lower() == key.lower():
                return a
        raise IdentityError(f"no application {key!r} in tenant {tenant_id}")
    return app


def find_user(store: Store, tenant_id: str, key: str) -> StoredObject:
    obj = store.sync(store.get_by_upn(tenant_id, key)) if "@" in key else store.sync(store.get(tenant_id, key.lower()))
    if obj is None or obj.type != "user" or obj.deleted is not None:
        raise IdentityError(f"no user {key!r} in tenant {tenant_id}")
    return obj


async def create_user(
    directory: Directory, tenant_id: str, upn: str, password: str, display_name: str | None = None, roles: Sequence[str] = (), **props: Any
) -> StoredObject:
    """``POST /users`` as the CLI: the tenant's domain and Graph's password rules apply.

    ``roles`` (names or template ids) are checked first and assigned in the user's own
    transaction: an unknown role creates nothing."""
    rids = role_ids(roles)

    def assign(tx: Txn, obj: StoredObject) -> None:
        for rid in rids:
            tx.assign_role(obj.id, rid)

    nick = upn.partition("@")[0]
    body: dict[str, Any] = {
        "accountEnabled": True,
        "displayName": display_name or nick,
        "mailNickname": "".join(c for c in nick if c.isalnum() or c in "-_.") or "user",
        "userPrincipalName": upn,
        "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": password},
        **props,
    }
    try:
        return await directory.create_user(cli_actor(tenant_id), body, then=assign if rids else None)
    except errors.GraphError as exc:
        raise IdentityError(exc.message) from None


def assign_role(store: Store, tenant_id: str, user: StoredObject, role: str) -> str:
    """Assign a directory role (name or template id) to a user; returns the template id."""
    try:
        rid = role_template_id(role)
    except ValueError as exc:
        raise IdentityError(str(exc)) from None
    store.write_sync(tenant_id, lambda tx: tx.assign_role(user.id, rid))
    return rid


def unassign_role(store: Store, tenant_id: str, user: StoredObject, role: str) -> bool:
    try:
        rid = role_template_id(role)
    except ValueError as exc:
        raise IdentityError(str(exc)) from None
    return bool(store.write_sync(tenant_id, lambda tx: tx.unassign_role(user.id, rid)))


def role_name(role_id: str) -> str:
    return ROLE_NAMES.get(role_id, role_id)
