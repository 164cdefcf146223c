"""``graphdir seed FILE.json``: directory objects, and tenants, applications and users with roles.

Two shapes are accepted:

* a list of objects for the default tenant (the original format)::

    [{"type": "group", "displayName": "Sales", "mailEnabled": true, "securityEnabled": false,
      "groupTypes": [], "members": ["<id or UPN>"], "owners": ["<id or UPN>"]}, …]

* an object with tenants, each with its applications, users and objects::

    {"tenants": [{"id": "<guid, optional>", "displayName": "Fabrikam", "domain": "fabrikam.onmicrosoft.com",
                  "applications": [{"displayName": "daemon", "appId": "<guid, optional>", "secret": "<value>" | true,
                                    "roles": ["GroupMember.ReadWrite.All"], "scopes": ["GroupMember.ReadWrite.All"],
                                    "publicClient": false, "redirectUris": ["http://localhost"]}],
                  "users": [{"userPrincipalName": "alice@fabrikam.onmicrosoft.com", "password": "…",
                             "roles": ["Groups Administrator"]}],
                  "objects": [ …as above… ]}]}

An entry with ``"default": true`` (or no ``domain``) uses the default tenant. Users and
objects may carry a plain ``password`` (stored hashed) and ``roles`` (directory role names
or template ids). Generated secrets are printed once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from graphdir import identity
from graphdir.auth.apps import split_list
from graphdir.directory.service import Directory
from graphdir.store.base import Store, StoredObject, Txn

Echo = Callable[[str], None]


def _resolve(store: Store, tenant_id: str, key: str) -> StoredObject:
    return identity.find_user(store, tenant_id, key) if "@" in key else _by_id(store, tenant_id, key)


def _by_id(store: Store, tenant_id: str, key: str) -> StoredObject:
    obj = store.get(tenant_id, key.lower())
    if obj is None or obj.deleted is not None:
        raise identity.IdentityError(f"no object {key!r} in tenant {tenant_id}")
    return obj


async def seed_object(store: Store, directory: Directory, tenant_id: str, item: dict[str, Any], echo: Echo) -> StoredObject:
    item = dict(item)
    type_ = item.pop("type", "user")
    members = [_resolve(store, tenant_id, str(m)).id for m in item.pop("members", [])]
    owners = [_resolve(store, tenant_id, str(o)) for o in item.pop("owners", [])]
    roles = split_list(item.pop("roles", []))
    if type_ == "user":
        identity.seed_password(item)
        item.setdefault("displayName", str(item.get("userPrincipalName", "user")).partition("@")[0])
    obj = await directory.seed_object(tenant_id, type_, item, members)
    if owners:
        def add_owners(tx: Txn) -> None:
            for o in owners:
                tx.add_owner(obj.id, o.id, o.type)

        await store.write(tenant_id, add_owners)
    for role in roles:  # synchronous writes: off the event loop's thread, which may not make them
        await asyncio.to_thread(identity.assign_role, store, tenant_id, obj, role)
    echo(f"{obj.type}\t{obj.id}\t{obj.props.get('userPrincipalName') or obj.props.get('displayName')}")
    return obj


async def seed_tenant(store: Store, directory: Directory, default_tenant_id: str, entry: dict[str, Any], echo: Echo) -> None:
    if entry.get("default") or not entry.get("domain"):
        tenant = identity.find_tenant(store, entry.get("id") or default_tenant_id)
    else:
        try:
            tenant = identity.find_tenant(store, entry.get("id") or entry["domain"])
        except identity.IdentityError:
            tenant = await asyncio.to_thread(
                identity.create_tenant, store, entry.get("displayName") or entry["domain"], entry["domain"], entry.get("id"), entry.get("domains")
            )
    tid = tenant["id"]
    echo(f"tenant\t{tid}\t{tenant['domain']}")
    for a in entry.get("applications", []):
        secret = a.get("secret", True)
        app, value = await asyncio.to_thread(functools.partial(
            identity.create_app, store, tid, a["displayName"], roles=split_list(a.get("roles")), scopes=split_list(a.get("scopes")),
            public_client=bool(a.get("publicClient")), redirect_uris=list(a.get("redirectUris", [])), secret=secret, app_id=a.get("appId"),
        ))  # fmt: skip
        shown = value if secret is True and value else "(as given)" if value else "(none)"
        echo(f"application\t{app.app_id}\t{app.display_name}\tsecret: {shown}")
    for u in entry.get("users", []):
        await seed_object(store, directory, tid, {"type": "user", **u}, echo)
    for o in entry.get("objects", []):
        await seed_object(store, directory, tid, o, echo)


async def run(store: Store, directory: Directory, default_tenant_id: str, data: Any, echo: Echo) -> None:
    if isinstance(data, dict) and "tenants" in data:
        for entry in data["tenants"]:
            await seed_tenant(store, directory, default_tenant_id, entry, echo)
        return
    for item in data if isinstance(data, list) else [data]:
        await seed_object(store, directory, default_tenant_id, item, echo)
