"""``graphdir tenant|app|user|role|keys``: manage identities without hand-editing a database.

Every command takes ``--config``/``--db`` like ``serve`` and works on a stopped or a
running service (writes go through the store's single writer; a running service
sees new tenants, apps, users and roles at once, and rotated or removed keys at once).
``--tenant`` accepts a tenant id or one of its domains and defaults to the default tenant.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from graphdir import identity
from graphdir.auth import apps
from graphdir.auth.tokens import KeyRing
from graphdir.cli_common import UserError, config_option, db_option, json_option, load, opened_store, tenant_id_for
from graphdir.cli_common import tenant_option as _tenant

_config = config_option
_db = db_option
_json = json_option


def _print(rows: list[tuple[str, str, Any]], as_json: bool) -> None:
    """``(label, jsonKey, value)`` rows: ``label: value`` lines, or a JSON object with camelCase keys and null."""
    if as_json:
        click.echo(json.dumps({key: value for _, key, value in rows}, indent=2))
        return
    for label, _, v in rows:
        shown = "(none)" if v is None else ", ".join(map(str, v)) if isinstance(v, list) else v
        click.echo(f"{label}: {shown}")


# -- tenants --------------------------------------------------------------------------------------
@click.group()
def tenant() -> None:
    """Tenants: each has its own users, groups, apps and token authority at /{tenant-id}/."""


@tenant.command("create")
@_config
@_db
@click.option("--name", required=True, help="Display name, e.g. Fabrikam.")
@click.option("--domain", required=True, help="Initial verified domain, e.g. fabrikam.onmicrosoft.com.")
@click.option("--id", "tenant_id", default=None, help="Tenant id (GUID); default: a new one.")
@_json
def tenant_create(config: str | None, database_url: str | None, name: str, domain: str, tenant_id: str | None, as_json: bool) -> None:
    """Create a tenant."""
    try:
        identity.check_domain(domain)
    except identity.IdentityError as exc:
        raise click.BadParameter(str(exc), param_hint="'--domain'") from None
    settings = load(config, database_url=database_url)
    with opened_store(settings, create=True) as store:
        t = identity.create_tenant(store, name, domain, tenant_id)
        _print([("tenant id", "id", t["id"]), ("display name", "displayName", t["displayName"]), ("domain", "domain", t["domain"])], as_json)


@tenant.command("list")
@_config
@_db
@_json
def tenant_list(config: str | None, database_url: str | None, as_json: bool) -> None:
    """List tenants (the default one first)."""
    settings = load(config, database_url=database_url)
    with opened_store(settings) as store:
        default = tenant_id_for(store, settings, None)
        rows = [{"id": t["id"], "displayName": t["displayName"], "domains": t.get("props", {}).get("domains", [t["domain"]]),
                 "default": t["id"] == default} for t in store.sync(store.list_tenants())]  # fmt: skip
    rows.sort(key=lambda r: not r["default"])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        mark = "\t(default)" if r["default"] else ""
        click.echo(f"{r['id']}\t{r['displayName']}\t{','.join(r['domains'])}{mark}")


# -- applications ----------------------------------------------------------------------------------
@click.group()
def app() -> None:
    """App registrations: client id, client secrets, application permissions (roles) and delegated scopes."""


@app.command("create")
@_config
@_db
@_tenant
@click.option("--name", required=True, help="Display name.")
@click.option("--roles", default="", help="Granted application permissions, comma-separated (client-credentials tokens' roles).")
@click.option("--scopes", default="", help="Consented delegated permissions, comma-separated (user tokens' scp).")
@click.option("--public-client", is_flag=True, help="Allow public client flows (password / code grants without a secret).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Redirect URI for the authorization code flow (repeatable).")
@click.option("--no-secret", is_flag=True, help="Create no client secret.")
@click.option("--app-id", default=None, help="Client id (GUID); default: a new one.")
@_json
def app_create(config: str | None, database_url: str | None, tenant: str | None, name: str, roles: str, scopes: str, public_client: bool,
               redirect_uris: tuple[str, ...], no_secret: bool, app_id: str | None, as_json: bool) -> None:  # fmt: skip
    """Register an application; prints its client id and a generated client secret (shown only once)."""
    settings = load(config, database_url=database_url)
    with opened_store(settings, create=True) as store:
        tid = tenant_id_for(store, settings, tenant)
        a, secret = identity.create_app(store, tid, name, roles=apps.split_list(roles), scopes=apps.split_list(scopes),
                                        public_client=public_client, redirect_uris=list(redirect_uris), secret=not no_secret, app_id=app_id)  # fmt: skip
        _print([("tenant id", "tenantId", tid), ("client id", "clientId", a.app_id), ("client secret", "clientSecret", secret or None),
                 ("roles", "roles", a.props["roles"]), ("scopes", "scopes", a.props["scopes"])], as_json)  # fmt: skip


@app.command("list")
@_config
@_db
@_tenant
def app_list(config: str | None, database_url: str | None, tenant: str | None) -> None:
    """List a tenant's applications (secrets are shown by hint only)."""
    settings = load(config, database_url=database_url)
    with opened_store(settings) as store:
        tid = tenant_id_for(store, settings, tenant)
        click.echo(json.dumps([apps.public_view(a) for a in store.sync(store.list_applications(tid))], indent=2))


@app.command("add-secret")
@_config
@_db
@_tenant
@click.option("--app", "app_key", required=True, help="Client id or display name.")
@click.option("--years", type=float, default=2.0, help="Validity in years.")
def app_add_secret(config: str | None, database_url: str | None, tenant: str | None, app_key: str, years: float) -> None:
    """Add a client secret and print it (shown only once)."""
    settings = load(config, database_url=database_url)
    with opened_store(settings) as store:
        a = identity.find_app(store, tenant_id_for(store, settings, tenant), app_key)
        click.echo(apps.add_secret(store, a, years=years))


@app.command("grant")
@_config
@_db
@_tenant
@click.option("--app", "app_key", required=True, help="Client id or display name.")
@click.option("--roles", default="", help="Application permissions to grant, comma-separated.")
@click.option("--scopes", default="", help="Delegated permissions to consent, comma-separated.")
@click.option("--revoke", is_flag=True, help="Remove these permissions instead.")
def app_grant(config: str | None, database_url: str | None, tenant: str | None, app_key: str, roles: str, scopes: str, revoke: bool) -> None:
    """Grant (admin consent) or revoke application permissions and delegated scopes."""
    settings = load(config, database_url=database_url)
    with opened_store(settings) as store:
        a = identity.find_app(store, tenant_id_for(store, settings, tenant), app_key)
        for key, values in (("roles", apps.split_list(roles)), ("scopes", apps.split_list(scopes))):
            current = list(a.props.get(key, []))
            a.props[key] = [v for v in current if v not in values] if revoke else current + [v for v in values if v not in current]
        apps.save_app(store, a)
        _print([("client id", "clientId", a.app_id), ("roles", "roles", a.props["roles"]), ("scopes", "scopes", a.props["scopes"])], False)


# -- users and roles ---------------------------------------------------------------------------------
@click.group()
def user() -> None:
    """Users who can sign in at the token endpoint."""


@user.command("create")
@_config
@_db
@_tenant
@click.option("--upn", required=True, help="userPrincipalName, in one of the tenant's domains.")
@click.option("--password", required=True, help="Password (Graph's complexity rules apply).")
@click.option("--name", default=None, help="Display name (default: the UPN's alias).")
@click.option("--role", "roles", multiple=True, help="Directory role to assign, e.g. 'Groups Administrator' (repeatable).")
@_json
def user_create(config: str | None, database_url: str | None, tenant: str | None, upn: str, password: str, name: str | None,
                roles: tuple[str, ...], as_json: bool) -> None:  # fmt: skip
    """Create a user (as POST /users would) and assign directory roles."""
    from graphdir.directory.service import Directory

    try:
        role_ids = identity.role_ids(roles)
    except identity.IdentityError as exc:
        raise click.BadParameter(str(exc), param_hint="'--role'") from None
    settings = load(config, database_url=database_url)
    with opened_store(settings, create=True) as store:
        tid = tenant_id_for(store, settings, tenant)
        obj = asyncio.run(identity.create_user(Directory(store, settings), tid, upn, password, name, roles=role_ids))
        _print([("tenant id", "tenantId", tid), ("user id", "id", obj.id), ("userPrincipalName", "userPrincipalName", obj.props["userPrincipalName"]),
                ("roles", "roles", [identity.role_name(r) for r in role_ids])], as_json)  # fmt: skip


@click.group()
def role() -> None:
    """Directory role assignments (they become the wids claim of the user's tokens)."""


def _role_change(config: str | None, database_url: str | None, tenant: str | None, user_key: str, role_name: str, remove: bool) -> None:
    settings = load(config, database_url=database_url)
    with opened_store(settings) as store:
        tid = tenant_id_for(store, settings, tenant)
        obj = identity.find_user(store, tid, user_key)
        if remove:
            done = identity.unassign_role(store, tid, obj, role_name)
            click.echo(f"removed {role_name} from {user_key}" if done else f"{user_key} did not have {role_name}")
        else:
            rid = identity.assign_role(store, tid, obj, role_name)
            click.echo(f"{user_key}: {identity.role_name(rid)} ({rid})")


@role.command("assign")
@_config
@_db
@_tenant
@click.option("--user", "user_key", required=True, help="userPrincipalName or object id.")
@click.option("--role", "role_name", required=True, help="Role name (e.g. 'Groups Administrator') or template id.")
def role_assign(config: str | None, database_url: str | None, tenant: str | None, user_key: str, role_name: str) -> None:
    """Assign a directory role to a user."""
    _role_change(config, database_url, tenant, user_key, role_name, remove=False)


@role.command("remove")
@_config
@_db
@_tenant
@click.option("--user", "user_key", required=True, help="userPrincipalName or object id.")
@click.option("--role", "role_name", required=True, help="Role name (e.g. 'Groups Administrator') or template id.")
def role_remove(config: str | None, database_url: str | None, tenant: str | None, user_key: str, role_name: str) -> None:
    """Remove a directory role assignment."""
    _role_change(config, database_url, tenant, user_key, role_name, remove=True)


@role.command("list")
@_config
@_db
@_tenant
def role_list(config: str | None, database_url: str | None, tenant: str | None) -> None:
    """List role assignments: user, role name, role template id."""
    settings = load(config, database_url=database_url)
    with opened_store(settings) as store:
        tid = tenant_id_for(store, settings, tenant)
        for principal, rid in store.sync(store.list_role_assignments(tid)):
            obj = store.sync(store.get(tid, principal))
            who = obj.props.get("userPrincipalName", principal) if obj else principal
            click.echo(f"{who}\t{identity.role_name(rid)}\t{rid}")


# -- signing keys ---------------------------------------------------------------------------------------
@click.group()
def keys() -> None:
    """Token signing keys (shared by every tenant, like Entra's)."""


@keys.command("rotate")
@_config
@_db
def keys_rotate(config: str | None, database_url: str | None) -> None:
    """Add a new signing key and retire the current one.

    The retired key is kept (published in the JWKS, so tokens it signed keep validating) for
    max(token_lifetime, 1 day) after the rotation, not until every token it signed expires; the
    first rotation after that drops it. A running server uses the new key at once, without a restart.
    """
    settings = load(config, database_url=database_url)
    with opened_store(settings) as store:
        new = KeyRing(store, max_token_lifetime=max(settings.token_lifetime, 86400)).rotate()
        click.echo(f"new signing key: {new.kid}")


@keys.command("remove")
@click.argument("kid")
@_config
@_db
def keys_remove(kid: str, config: str | None, database_url: str | None) -> None:
    """Remove a retired signing key from the JWKS at once (e.g. a leaked key): every token it signed stops
    validating immediately, in running services too. The active key cannot be removed: rotate first."""
    settings = load(config, database_url=database_url)
    with opened_store(settings) as store:
        try:
            KeyRing(store, max_token_lifetime=max(settings.token_lifetime, 86400)).remove(kid)
        except KeyError:
            raise UserError(f"no signing key {kid!r} (see `graphdir keys list`)") from None
        except ValueError as exc:
            raise UserError(str(exc)) from None
        click.echo(f"removed signing key: {kid}")


@keys.command("list")
@_config
@_db
def keys_list(config: str | None, database_url: str | None) -> None:
    """List signing keys: kid, created, retired."""
    import time

    settings = load(config, database_url=database_url)
    with opened_store(settings) as store:
        for k in KeyRing(store).keys:
            fmt = "%Y-%m-%dT%H:%M:%SZ"
            retired = time.strftime(fmt, time.gmtime(k.retired)) if k.retired else "active"
            click.echo(f"{k.kid}\t{time.strftime(fmt, time.gmtime(k.created))}\t{retired}")


def register(main: click.Group) -> None:
    for group in (tenant, app, user, role, keys):
        main.add_command(group)
