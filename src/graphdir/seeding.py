"""Seed files: directory objects, and tenants with their applications and users (docs/seeding.md).

``graphdir seed FILE.json`` and ``POST /graphdir/admin/seed`` read the same format. A seed is
handled in two steps:

1. :func:`plan` checks the whole seed before anything is written: its shape, every property's
   type against the object type's schema, users' ``userPrincipalName`` domains against the
   tenant's verified domains, role names, and that every member and owner names an object that
   exists or is created by the same seed. Any problem raises :class:`SeedError` (a Graph-shaped
   400 and where in the seed it is); nothing has been written.
2. :func:`write_sync` / :func:`write` write each tenant's new objects, memberships, owners, role
   assignments and applications in one transaction of the store's writer.

The command is idempotent (``existing="keep"``): a tenant, application, user or object that
already exists with the same key is left as it is and reported ``exists``. The HTTP route
refuses such duplicates (``existing="refuse"``), as Graph refuses a second object with the same id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from graphdir import errors, identity, ids
from graphdir.auth import apps
from graphdir.directory.common import hash_password
from graphdir.directory.groups import build_seed_object
from graphdir.directory.schema import RESOURCE_NAMES, SCHEMAS, TYPE_NAMES, canonical, check_value
from graphdir.query import Compare, ListQuery
from graphdir.store.base import Change, Conflict, Store, StoredApp, StoredObject, Txn

Echo = Callable[[str], None]
Existing = Literal["keep", "refuse"]

_TENANT_KEYS = {"id", "displayName", "domain", "domains", "default", "applications", "users", "objects"}
_APP_KEYS = {"displayName", "appId", "secret", "roles", "scopes", "publicClient", "redirectUris"}
_LINK_KEYS = ("members", "owners", "roles")
_DUPLICATE = "Another object with the same value for property {} already exists."


class SeedError(Exception):
    """A seed that cannot be applied: ``where`` in the seed, and the Graph-shaped error."""

    def __init__(self, where: str, error: errors.GraphError) -> None:
        super().__init__(f"{where}: {error.message}" if where else error.message)
        self.where = where
        self.error = error


@dataclass
class ObjectSeed:
    obj: StoredObject
    members: list[StoredObject] = field(default_factory=list)
    owners: list[StoredObject] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    exists: bool = False


@dataclass
class AppSeed:
    app: StoredApp
    secret: str | None
    generated: bool
    exists: bool = False


@dataclass
class TenantSeed:
    tenant: dict[str, Any]
    exists: bool
    apps: list[AppSeed] = field(default_factory=list)
    objects: list[ObjectSeed] = field(default_factory=list)


def _bad(where: str, message: str) -> SeedError:
    return SeedError(where, errors.bad_request(message))


def _strings(where: str, value: Any, text: bool = True) -> list[str]:
    """A list of strings; ``text``: also ``"A, B C"`` (roles, scopes)."""
    if isinstance(value, str) and text:
        return apps.split_list(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return apps.split_list(value)
    raise _bad(where, "expected a list of strings")


def _dict(where: str, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(where, f"expected {what} (a JSON object)")
    return value


def _list(where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(where, "expected a JSON list")
    return value


class _Planner:
    def __init__(self, store: Store, existing: Existing) -> None:
        self.store = store
        self.existing = existing
        self.domains_taken: set[str] = set()

    # -- tenants -------------------------------------------------------------------------------------
    def tenant(self, where: str, entry: dict[str, Any], default_tenant_id: str) -> TenantSeed:
        for key in entry:
            if key not in _TENANT_KEYS:
                raise _bad(where, f"unknown key {key!r} (expected one of {', '.join(sorted(_TENANT_KEYS))})")
        domain = entry.get("domain")
        if entry.get("default") or domain is None:
            tenant = self._found_tenant(where, str(entry.get("id") or default_tenant_id))
            return TenantSeed(tenant, exists=True)
        if not isinstance(domain, str) or not isinstance(entry.get("displayName", ""), str):
            raise _bad(where, "'domain' and 'displayName' must be strings")
        try:
            return TenantSeed(identity.find_tenant(self.store, str(entry.get("id") or domain)), exists=True)
        except identity.IdentityError:
            pass
        try:
            tid = str(entry.get("id") or ids.new_id()).lower()
            if not ids.is_guid(tid):
                raise identity.IdentityError(f"tenant id must be a GUID: {entry.get('id')!r}")
            first = identity.check_domain(domain)
            doms = [first] + [d for d in (identity.check_domain(x) for x in _strings(where + ".domains", entry.get("domains", []))) if d != first]
            for d in doms:
                if d in self.domains_taken:
                    raise identity.IdentityError(f"domain {d} is given to two tenants")
                self._domain_free(d)
        except identity.IdentityError as exc:
            raise _bad(where, str(exc)) from None
        self.domains_taken.update(doms)
        tenant = {"id": tid, "displayName": entry.get("displayName") or first, "domain": first, "props": {"domains": doms}}
        return TenantSeed(tenant, exists=False)

    def _found_tenant(self, where: str, key: str) -> dict[str, Any]:
        try:
            return identity.find_tenant(self.store, key)
        except identity.IdentityError as exc:
            raise _bad(where, str(exc)) from None

    def _domain_free(self, domain: str) -> None:
        try:
            other = identity.find_tenant(self.store, domain)
        except identity.IdentityError:
            return
        raise identity.IdentityError(f"domain {domain} already belongs to tenant {other['id']}")

    # -- applications ----------------------------------------------------------------------------------
    def app(self, where: str, t: TenantSeed, raw: Any, seen: set[str]) -> AppSeed:
        a = _dict(where, raw, "an application")
        for key in a:
            if key not in _APP_KEYS:
                raise _bad(where, f"unknown key {key!r} (expected one of {', '.join(sorted(_APP_KEYS))})")
        name, app_id, secret = a.get("displayName"), a.get("appId"), a.get("secret", True)
        if not isinstance(name, str) or not name:
            raise _bad(where, "'displayName' (a string) is required")
        if app_id is not None and not (isinstance(app_id, str) and ids.is_guid(app_id)):
            raise _bad(where, f"'appId' must be a GUID, got {app_id!r}")
        if not isinstance(secret, str | bool) or not isinstance(a.get("publicClient", False), bool):
            raise _bad(where, "'secret' must be a string or a boolean and 'publicClient' a boolean")
        key = (app_id or name).lower()
        if key in seen:
            raise _bad(where, f"application {app_id or name!r} is given twice")
        seen.add(key)
        found = self._find_app(t, app_id, name)
        if found is not None:
            return AppSeed(found, None, False, exists=True)
        value = apps.new_secret_value() if secret is True else (secret or None)
        built = apps.build_app(t.tenant["id"], name, app_id=app_id, roles=_strings(where + ".roles", a.get("roles", [])),
                               scopes=_strings(where + ".scopes", a.get("scopes", [])), public_client=bool(a.get("publicClient")),
                               redirect_uris=_strings(where + ".redirectUris", a.get("redirectUris", [])), secret=value)  # fmt: skip
        return AppSeed(built, value, secret is True)

    def _find_app(self, t: TenantSeed, app_id: str | None, name: str) -> StoredApp | None:
        if not t.exists:
            return None
        if app_id:
            return self.store.sync(self.store.get_application(t.tenant["id"], app_id.lower()))
        return next((a for a in self.store.sync(self.store.list_applications(t.tenant["id"])) if a.display_name.lower() == name.lower()), None)

    # -- objects -----------------------------------------------------------------------------------------
    def objects(self, where: str, t: TenantSeed, items: list[tuple[str, Any]]) -> None:
        by_key: dict[str, StoredObject] = {}
        links: list[tuple[str, ObjectSeed, dict[str, Any]]] = []
        for path, raw in items:
            seed, extra = self.object(path, t, _dict(path, raw, "a directory object"), by_key)
            t.objects.append(seed)
            links.append((path, seed, extra))
            for key in (seed.obj.id, str(seed.obj.props.get("userPrincipalName") or "").lower()):
                if key:
                    by_key[key] = seed.obj
        for path, seed, extra in links:
            if seed.exists:
                continue
            seed.members = [self._ref(f"{path}.members", t, m, by_key) for m in _strings(f"{path}.members", extra.get("members", []), text=False)]
            seed.owners = [self._ref(f"{path}.owners", t, o, by_key) for o in _strings(f"{path}.owners", extra.get("owners", []), text=False)]
            if (seed.members or seed.owners) and seed.obj.type != "group":
                raise _bad(path, "only groups have members and owners")
            try:
                seed.roles = identity.role_ids(_strings(f"{path}.roles", extra.get("roles", [])))
            except identity.IdentityError as exc:
                raise _bad(f"{path}.roles", str(exc)) from None

    def object(self, where: str, t: TenantSeed, raw: dict[str, Any], by_key: dict[str, StoredObject]) -> tuple[ObjectSeed, dict[str, Any]]:
        item = dict(raw)
        type_ = item.pop("@type", None) or item.pop("type", "user")
        if type_ not in SCHEMAS:
            raise SeedError(where, errors.bad_request(f"Unknown object type '{type_}'."))
        extra = {k: item.pop(k) for k in _LINK_KEYS if k in item}
        password = item.pop("password", None)
        schema, resource = SCHEMAS[type_], RESOURCE_NAMES[type_]
        props: dict[str, Any] = {}
        for key, value in item.items():
            name = canonical(schema, key)
            if name is None:
                raise SeedError(where, errors.property_not_found(key, TYPE_NAMES[type_]))
            if not check_value(schema[name], value) or (name == "id" and not ids.is_guid(str(value))):
                raise SeedError(where, errors.invalid_property_value(name, resource))
            props[name] = value
        if password is not None:
            if type_ != "user" or not isinstance(password, str) or not password:
                raise SeedError(where, errors.invalid_property_value("password", resource))
            props["passwordProfile"] = {"forceChangePasswordNextSignIn": False, "hash": hash_password(password)}
            props.setdefault("accountEnabled", True)
        upn = props.get("userPrincipalName")
        if type_ == "user":
            props.setdefault("displayName", str(upn or "user").partition("@")[0])
            if upn is not None:
                self._check_upn(where, t, str(upn))
        if not isinstance(props.get("displayName"), str):
            raise SeedError(where, errors.required_property("displayName"))
        found = self._find_object(where, t, type_, props, by_key)
        if found is not None:
            if self.existing == "refuse":
                raise SeedError(where, errors.bad_request(_DUPLICATE.format("userPrincipalName" if found.id != props.get("id") else "id")))
            return ObjectSeed(found, exists=True), extra
        return ObjectSeed(build_seed_object(t.tenant["id"], type_, props, str(t.tenant["domain"]))), extra

    def _check_upn(self, where: str, t: TenantSeed, upn: str) -> None:
        alias, _, domain = upn.rpartition("@")
        domains = {str(t.tenant["domain"]).lower(), *(str(d).lower() for d in t.tenant.get("props", {}).get("domains", []))}
        if not alias:
            raise SeedError(where, errors.invalid_property_value("userPrincipalName", "User"))
        if domain.lower() not in domains:
            raise SeedError(where, errors.bad_request(
                "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization."
            ))  # fmt: skip

    def _find_object(self, where: str, t: TenantSeed, type_: str, props: dict[str, Any], by_key: dict[str, StoredObject]) -> StoredObject | None:
        """An object with the same key: its id, else a user's userPrincipalName, else (the command
        only) the same type and displayName."""
        oid, upn = props.get("id"), props.get("userPrincipalName")
        if oid and str(oid).lower() in by_key or upn and str(upn).lower() in by_key:
            raise _bad(where, f"object {oid or upn!r} is given twice")
        if not t.exists:
            return None
        tid = t.tenant["id"]
        if oid:
            return self.store.sync(self.store.get(tid, str(oid).lower()))
        if upn:
            return self.store.sync(self.store.get_by_upn(tid, str(upn)))
        if self.existing == "keep":
            page = self.store.sync(self.store.list_objects(tid, (type_,), ListQuery(where=Compare("displayName", "eq", props["displayName"]), top=1)))
            return page.items[0] if page.items else None
        return None

    def _ref(self, where: str, t: TenantSeed, key: str, by_key: dict[str, StoredObject]) -> StoredObject:
        k = key.strip().lower()
        obj = by_key.get(k)
        if obj is None and t.exists:
            tid = t.tenant["id"]
            if "@" in k:
                obj = self.store.sync(self.store.get_by_upn(tid, key))
            elif ids.is_guid(k):
                obj = self.store.sync(self.store.get(tid, k))
        if obj is None or obj.deleted is not None:
            raise SeedError(where, errors.not_found(key))
        return obj


def plan(store: Store, default_tenant_id: str, data: Any, existing: Existing = "keep", tenants: bool = True) -> list[TenantSeed]:
    """Check a whole seed (:class:`SeedError` at the first problem); nothing is written."""
    planner = _Planner(store, existing)
    if isinstance(data, dict) and "tenants" in data:
        if not tenants:
            raise _bad("tenants", "tenants and applications are seeded with `graphdir seed`; send a list of objects")
        if set(data) != {"tenants"}:
            raise _bad("", "a seed with 'tenants' has no other top-level key")
        out: list[TenantSeed] = []
        seen_ids: set[str] = set()
        for i, raw in enumerate(_list("tenants", data["tenants"])):
            where = f"tenants[{i}]"
            entry = _dict(where, raw, "a tenant")
            t = planner.tenant(where, entry, default_tenant_id)
            if t.tenant["id"] in seen_ids:
                raise _bad(where, f"tenant {t.tenant['id']} is given twice")
            seen_ids.add(t.tenant["id"])
            seen_apps: set[str] = set()
            t.apps = [planner.app(f"{where}.applications[{j}]", t, a, seen_apps) for j, a in enumerate(_list(where, entry.get("applications", [])))]
            users = [(f"{where}.users[{j}]", {"type": "user", **_dict(f"{where}.users[{j}]", u, "a user")})
                     for j, u in enumerate(_list(where, entry.get("users", [])))]  # fmt: skip
            objects = [(f"{where}.objects[{j}]", o) for j, o in enumerate(_list(where, entry.get("objects", [])))]
            planner.objects(where, t, users + objects)
            out.append(t)
        return out
    if not isinstance(data, list | dict):
        raise _bad("", "a seed is a list of objects, one object, or {\"tenants\": [...]}")
    t = TenantSeed(planner._found_tenant("", default_tenant_id), exists=True)
    items = data if isinstance(data, list) else [data]
    planner.objects("", t, [(f"[{i}]" if isinstance(data, list) else "", o) for i, o in enumerate(items)])
    return [t]


def _writer(t: TenantSeed) -> Callable[[Txn], None]:
    def fn(tx: Txn) -> None:
        for a in t.apps:
            if not a.exists:
                tx.put_application(a.app)
        for s in t.objects:
            if s.exists:
                continue
            # checked by plan(); a concurrent writer may have won since: the same Graph errors
            if tx.get(s.obj.id) is not None:  # pragma: no cover
                raise errors.bad_request(_DUPLICATE.format("id"))
            try:
                tx.insert(s.obj)
            except Conflict:  # pragma: no cover
                raise errors.bad_request(_DUPLICATE.format("userPrincipalName")) from None
            tx.record(Change(s.obj.id, s.obj.type, "create", actor="seed"))
        for s in t.objects:
            for m in s.members:
                tx.add_member(s.obj.id, m.id, m.type)
            for o in s.owners:
                tx.add_owner(s.obj.id, o.id, o.type)
            for rid in s.roles:
                tx.assign_role(s.obj.id, rid)

    return fn


def write_sync(store: Store, seeds: list[TenantSeed]) -> None:
    """Write a planned seed (code without an event loop: the command)."""
    for t in seeds:
        if not t.exists:
            identity.create_tenant(store, t.tenant["displayName"], t.tenant["domain"], t.tenant["id"], t.tenant["props"]["domains"])
        store.write_sync(t.tenant["id"], _writer(t))


async def write(store: Store, seed: TenantSeed) -> None:
    """Write one existing tenant's planned objects (the HTTP route)."""
    await store.write(seed.tenant["id"], _writer(seed))


def report(seeds: list[TenantSeed], echo: Echo) -> None:
    """One line per tenant, application and object; ``exists`` for those left as they were."""
    for t in seeds:
        echo(f"tenant\t{t.tenant['id']}\t{t.tenant['domain']}" + ("\texists" if t.exists else "\tcreated"))
        for a in t.apps:
            shown = "exists (left as it is)" if a.exists else a.secret if a.generated else "(as given)" if a.secret else "(none)"
            echo(f"application\t{a.app.app_id}\t{a.app.display_name}\tsecret: {shown}")
        for s in t.objects:
            name = s.obj.props.get("userPrincipalName") or s.obj.props.get("displayName")
            echo(f"{s.obj.type}\t{s.obj.id}\t{name}" + ("\texists" if s.exists else ""))
