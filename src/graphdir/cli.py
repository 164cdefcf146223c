"""``graphdir``: serve the directory, mint tokens, seed objects, migrate the schema."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from graphdir import bootstrap
from graphdir.auth.tokens import KeyRing, mint
from graphdir.settings import ENV_PREFIX, Settings, load_settings

_SERVE_ROLES = ["Directory.ReadWrite.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All", "User.ReadWrite.All", "Graphdir.Admin"]


def _settings(config: str | None, **overrides: Any) -> Settings:
    return load_settings(config, **overrides)


def _token(settings: Settings, roles: list[str], scopes: list[str], user: str | None, lifetime: int | None, tenant: str | None) -> tuple[str, str]:
    store = bootstrap.open_store(settings)
    store.open()
    try:
        t = bootstrap.default_tenant(store, settings)
        tid = tenant or t["id"]
        app_id = bootstrap.default_app_id(store)
        ring = KeyRing(store, max_token_lifetime=max(settings.token_lifetime, 86400))
        user_id = upn = None
        wids: list[str] = []
        if user:
            obj = store.get(tid, user.lower()) if "@" not in user else store.get_by_upn(tid, user)
            if obj is None or obj.type != "user":
                raise click.ClickException(f"no user {user!r} in tenant {tid}")
            user_id, upn = obj.id, obj.props.get("userPrincipalName")
            wids = list(obj.props.get("_roles", []))
        token = mint(ring, tid, app_id=app_id, roles=None if user else roles, scopes=scopes if user else None,
                     user_id=user_id, upn=upn, wids=wids, lifetime=lifetime or settings.token_lifetime)
        return tid, token
    finally:
        store.close()


@click.group()
@click.version_option(package_name="graphdir")
def main() -> None:
    """A Microsoft Graph-compatible directory service."""


@main.command()
@click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file.")
@click.option("--host", default=None, help="Interface to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8080).")
@click.option("--db", "database_url", default=None, help="Database URL, e.g. sqlite:///graphdir.db.")
@click.option("--workers", type=int, default=None, help="Server worker processes (keep 1 on SQLite).")
def serve(config: str | None, host: str | None, port: int | None, database_url: str | None, workers: int | None) -> None:
    """Start the service; prints the base URL and a ready-to-use bearer token."""
    settings = _settings(config, host=host, port=port, database_url=database_url, workers=workers)
    for key, value in {"host": settings.host, "port": settings.port, "database_url": settings.database_url, "workers": settings.workers}.items():
        os.environ[ENV_PREFIX + key.upper()] = str(value)
    if config:
        os.environ[ENV_PREFIX + "CONFIG"] = str(Path(config).resolve())
    tid, token = _token(settings, _SERVE_ROLES, [], None, None, None)
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"graphdir {_version()} serving {settings.database_url}")
    click.echo(f"base URL:  {base}/v1.0  (and {base}/beta)")
    click.echo(f"tenant id: {tid}")
    click.echo(f"token:     {token}")
    click.echo(f"try:       curl -H 'Authorization: Bearer <token>' {base}/v1.0/groups")
    sys.stdout.flush()
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "graphdir.asgi:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        factory=True,
        log_level="warning",  # type: ignore[arg-type]
    ).serve()


@main.command()
@click.option("--config", type=click.Path(dir_okay=False))
@click.option("--db", "database_url", default=None)
@click.option("--roles", default="GroupMember.ReadWrite.All", help="Comma-separated application permissions.")
@click.option("--user", default=None, help="Mint a delegated token for this user (id or userPrincipalName).")
@click.option("--scopes", default="GroupMember.ReadWrite.All User.Read", help="Delegated scopes (with --user).")
@click.option("--lifetime", type=int, default=None, help="Seconds until the token expires.")
@click.option("--tenant", default=None, help="Tenant id (default: the default tenant).")
def token(config: str | None, database_url: str | None, roles: str, user: str | None, scopes: str, lifetime: int | None, tenant: str | None) -> None:
    """Print a bearer token for the default tenant."""
    settings = _settings(config, database_url=database_url)
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    scope_list = scopes.replace(",", " ").split()
    _, tok = _token(settings, role_list, scope_list, user, lifetime, tenant)
    click.echo(tok)


@main.command()
@click.option("--config", type=click.Path(dir_okay=False))
@click.option("--db", "database_url", default=None)
@click.argument("file", type=click.File("r"))
def seed(config: str | None, database_url: str | None, file: Any) -> None:
    """Create objects from a JSON file: [{"type": "group", "displayName": ..., "mailEnabled": true, ...}, ...]."""
    from graphdir.directory.service import Directory

    settings = _settings(config, database_url=database_url)
    store = bootstrap.open_store(settings)
    store.open()
    try:
        tid = bootstrap.default_tenant(store, settings)["id"]
        directory = Directory(store, settings)
        items = json.load(file)

        async def run() -> None:
            for item in items if isinstance(items, list) else [items]:
                item = dict(item)
                type_ = item.pop("type")
                members = item.pop("members", [])
                obj = await directory.seed_object(tid, type_, item, members)
                click.echo(f"{obj.type}\t{obj.id}\t{obj.props.get('displayName')}")

        asyncio.run(run())
    finally:
        store.close()


@main.command()
@click.option("--config", type=click.Path(dir_okay=False))
@click.option("--db", "database_url", default=None)
def migrate(config: str | None, database_url: str | None) -> None:
    """Create or upgrade the database schema and print its version."""
    settings = _settings(config, database_url=database_url)
    store = bootstrap.open_store(settings)
    store.open()
    try:
        click.echo(f"schema version {store.schema_version()}")  # type: ignore[attr-defined]
    finally:
        store.close()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("graphdir")
    except PackageNotFoundError:  # pragma: no cover
        return "0"
