"""``graphdir``: serve the directory, mint tokens, seed objects, migrate the schema.

Identity management (``tenant``, ``app``, ``user``, ``role``, ``keys``) lives in
:mod:`graphdir.cli_identity` and is registered on the same command group.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from graphdir import bootstrap, cli_identity, identity
from graphdir.auth.tokens import KeyRing, mint
from graphdir.cli_common import OneLineErrors, UserError, config_option, db_option, load, opened_store, require_database, tenant_id_for
from graphdir.settings import ENV_PREFIX, Settings, redact_url

_SERVE_ROLES = ["Directory.ReadWrite.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All", "User.ReadWrite.All", "Graphdir.Admin"]


def _settings(config: str | None, **overrides: Any) -> Settings:
    return load(config, **overrides)


def _token(
    settings: Settings, roles: list[str], scopes: list[str], user: str | None, lifetime: int | None, tenant: str | None, create: bool = False
) -> tuple[str, str]:
    with opened_store(settings, create=create) as store:
        tid = tenant_id_for(store, settings, tenant)
        app_id = bootstrap.default_app_id(store)
        ring = KeyRing(store, max_token_lifetime=max(settings.token_lifetime, 86400))
        user_id = upn = None
        wids: list[str] = []
        if user:
            obj = identity.find_user(store, tid, user)
            user_id, upn = obj.id, obj.props.get("userPrincipalName")
            wids = store.sync(store.role_ids(tid, obj.id))  # directory role template ids (graphdir role assign)
            wids += [w for w in obj.props.get("_roles", []) if w not in wids]
        token = mint(ring, tid, app_id=app_id, roles=None if user else roles, scopes=scopes if user else None,
                     user_id=user_id, upn=upn, wids=wids, lifetime=lifetime or settings.token_lifetime)  # fmt: skip
        return tid, token


@click.group(cls=OneLineErrors)
@click.version_option(package_name="graphdir")
def main() -> None:
    """A Microsoft Graph-compatible directory service."""


@main.command()
@config_option
@click.option("--host", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8080, with or without --tls).")
@db_option
@click.option("--workers", type=int, default=None, help="Server worker processes (keep 1 on SQLite).")
@click.option("--tls/--no-tls", default=None, help="Serve HTTPS with a locally generated CA (see `graphdir ca-path`); same port 8080 by default.")
def serve(config: str | None, host: str | None, port: int | None, database_url: str | None, workers: int | None, tls: bool | None) -> None:
    """Start the service; prints the base URL, the token authority and a ready-to-use bearer token."""
    settings = _settings(config, host=host, port=port, database_url=database_url, workers=workers, tls=tls)
    from graphdir import serving

    try:
        serving.check_address(settings.host, settings.port)  # before anything else; serving.run checks again
    except serving.AddressInUse as exc:
        raise click.ClickException(str(exc)) from None
    for key, value in {"host": settings.host, "port": settings.port, "database_url": settings.database_url, "workers": settings.workers}.items():
        os.environ[ENV_PREFIX + key.upper()] = str(value)
    if config:
        os.environ[ENV_PREFIX + "CONFIG"] = str(Path(config).resolve())
    tid, token = _token(settings, _SERVE_ROLES, [], None, None, None, create=True)
    ssl: dict[str, Any] = {}
    scheme = "http"
    if settings.tls:
        from graphdir import tls as tls_files

        files = tls_files.files_for(settings)
        ssl = {"ssl_cert": files.cert, "ssl_key": files.key}
        scheme = "https"
    base = f"{scheme}://{settings.host}:{settings.port}"
    click.echo(f"graphdir {_version()} serving {redact_url(settings.database_url)}")
    click.echo(f"base URL:  {base}/v1.0  (and {base}/beta)")
    click.echo(f"tenant id: {tid}")
    click.echo(f"authority: {base}/{tid}  (token endpoint {base}/{tid}/oauth2/v2.0/token)")
    if ssl:
        click.echo(f"CA file:   {files.ca}  (export SSL_CERT_FILE and REQUESTS_CA_BUNDLE to it)")
    click.echo(f"token:     {token}")
    click.echo(f"try:       curl{' --cacert ' + str(files.ca) if ssl else ''} -H 'Authorization: Bearer <token>' {base}/v1.0/groups")
    sys.stdout.flush()
    try:
        serving.run(settings, **ssl)
    except serving.AddressInUse as exc:
        raise click.ClickException(str(exc)) from None


@main.command("ca-path")
@config_option
@db_option
def ca_path(config: str | None, database_url: str | None) -> None:
    """Print the CA certificate file of `serve --tls` (created if missing), for SSL_CERT_FILE / REQUESTS_CA_BUNDLE.

    The CA lives next to the database (or in tls_dir): without tls_dir the database must exist.
    """
    from graphdir import tls as tls_files

    settings = _settings(config, database_url=database_url)
    if settings.tls_cert:
        click.echo(str(Path(settings.tls_cert).resolve()))
        return
    if not settings.tls_dir:
        require_database(settings)
    click.echo(str(tls_files.ensure(tls_files.tls_directory(settings), settings.host).ca.resolve()))


@main.command()
@config_option
@db_option
@click.option("--roles", default="GroupMember.ReadWrite.All", help="Comma-separated application permissions.")
@click.option("--user", default=None, help="Mint a delegated token for this user (id or userPrincipalName); wids = the user's roles.")
@click.option("--scopes", default="GroupMember.ReadWrite.All User.Read", help="Delegated scopes (with --user).")
@click.option("--lifetime", type=click.IntRange(min=1), default=None, help="Seconds until the token expires (default: token_lifetime, 3600).")
@click.option("--tenant", default=None, help="Tenant id or domain (default: the default tenant).")
def token(config: str | None, database_url: str | None, roles: str, user: str | None, scopes: str, lifetime: int | None, tenant: str | None) -> None:
    """Print a bearer token (the token endpoint issues the same tokens to registered apps)."""
    settings = _settings(config, database_url=database_url)
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    scope_list = scopes.replace(",", " ").split()
    _, tok = _token(settings, role_list, scope_list, user, lifetime, tenant)
    click.echo(tok)


@main.command()
@config_option
@db_option
@click.argument("file", type=click.Path(dir_okay=False))
def seed(config: str | None, database_url: str | None, file: str) -> None:
    """Create tenants, applications, users and objects from a JSON FILE, or standard input for `-` (format: docs/seeding.md).

    The whole file is checked first; each tenant is written in one transaction. Running it again
    changes nothing: what already exists (same key) is left as it is and reported `exists`.
    """
    from graphdir import seeding

    settings = _settings(config, database_url=database_url)
    try:
        if file == "-":
            data = json.load(sys.stdin)
        else:
            with open(file, encoding="utf-8") as fh:
                data = json.load(fh)
    except OSError as exc:
        raise UserError(f"cannot read seed file {file!r}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"seed file {file!r} is not valid JSON: {exc}") from None
    with opened_store(settings, create=True) as store:
        tid = tenant_id_for(store, settings, None)
        try:
            plans = seeding.plan(store, tid, data, existing="keep")
        except seeding.SeedError as exc:
            raise UserError(f"seed file {file!r}: {exc}") from None
        seeding.write_sync(store, plans)
        seeding.report(plans, click.echo)


@main.command()
@config_option
@db_option
def migrate(config: str | None, database_url: str | None) -> None:
    """Create or upgrade the database schema and print its version."""
    settings = _settings(config, database_url=database_url)
    with opened_store(settings, create=True) as store:
        click.echo(f"schema version {store.schema_version()}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("graphdir")
    except PackageNotFoundError:  # pragma: no cover
        return "0"


cli_identity.register(main)  # tenant, app, user, role, keys
