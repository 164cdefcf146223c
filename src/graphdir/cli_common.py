"""What every ``graphdir`` command shares: options, settings, the store, and user-facing errors.

A user's mistake (a bad option value, a missing or malformed settings or seed file, an
unsupported database URL, a read-only command pointed at a database that does not exist)
ends the command with one line ``Error: …`` and exit code 2 (:class:`UserError`), never a
Python traceback. A request that is well formed but cannot be done (an unknown tenant or
user, a duplicate) ends with exit code 1 (:class:`click.ClickException`). Nothing is written
in either case: commands validate before they write.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from graphdir import bootstrap, errors, identity
from graphdir.settings import Settings, SettingsError, load_settings, redact_url
from graphdir.store.base import Store, StoreError

config_option = click.option("--config", type=click.Path(dir_okay=False), help="TOML settings file (see docs/configuration.md).")
db_option = click.option(
    "--db", "database_url", default=None, help="Database URL (default sqlite:///$XDG_DATA_HOME/graphdir/graphdir.db)."
)
tenant_option = click.option("--tenant", default=None, help="Tenant id or domain (default: the default tenant).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (camelCase keys, null for no value).")


class UserError(click.ClickException):
    """A mistake in what the user asked: one line ``Error: …``, exit code 2 (no usage text)."""

    exit_code = 2


class OneLineErrors(click.Group):
    """A command group whose usage errors (bad option values, unknown options) are one line too:
    ``Error: Invalid value for '--port': … (see 'graphdir serve --help')``, exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if exc.ctx is None:
                raise
            raise UserError(f"{exc.format_message()} (see '{exc.ctx.command_path} --help')") from None


def load(config: str | None, **overrides: Any) -> Settings:
    """:func:`load_settings`, with its errors as :class:`UserError`."""
    try:
        return load_settings(config, **overrides)
    except SettingsError as exc:
        raise UserError(str(exc)) from None


def _missing_database(settings: Settings) -> UserError | None:
    if not settings.is_sqlite:
        return None  # a PostgreSQL database that cannot be reached fails to open, saying so
    path = settings.sqlite_path
    if path.exists():
        return None
    return UserError(
        f"no graphdir database at {path.resolve()}: create it with `graphdir migrate` (or `graphdir serve`), "
        "or point --db / --config / GRAPHDIR_DATABASE_URL at an existing one"
    )


def require_database(settings: Settings) -> None:
    """Refuse (exit 2) when the database does not exist: commands that only read never create one."""
    missing = _missing_database(settings)
    if missing is not None:
        raise missing


@contextlib.contextmanager
def opened_store(settings: Settings, create: bool = False) -> Iterator[Store]:
    """The store, opened (migrated) for one command.

    ``create=False`` (commands that only read, or change what exists) refuses a database that does
    not exist yet, saying where it looked. Identity, Graph and storage errors become one-line CLI
    errors (exit 1).
    """
    if not create:
        require_database(settings)
    made = _to_be_made(settings.sqlite_path) if settings.is_sqlite else []
    store = bootstrap.open_store(settings)
    try:
        store.open()
    except (StoreError, OSError, sqlite3.Error) as exc:  # not a database, a path through a file, no permission…
        store.close()
        _remove(made)
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise UserError(f"cannot open the database {redact_url(settings.database_url)}: {reason}") from None
    failed = True
    try:
        bootstrap.default_tenant(store, settings)
        yield store
        failed = False
    except identity.IdentityError as exc:
        raise click.ClickException(str(exc)) from None
    except errors.GraphError as exc:
        raise click.ClickException(exc.message) from None
    except StoreError as exc:
        raise click.ClickException(f"the database refused the change: {exc}") from None
    finally:
        store.close()
        if failed:
            _remove(made)


def _to_be_made(path: Path) -> list[Path]:
    """The database file and the directories above it that do not exist yet (innermost first)."""
    made: list[Path] = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        made.append(p)
        p = p.parent
    return made


def _remove(made: list[Path]) -> None:
    """A command that failed leaves nothing behind: not even the database it was about to create."""
    if not made:
        return
    db = made[0]
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            db.with_name(db.name + suffix).unlink()
    for d in made[1:]:
        with contextlib.suppress(OSError):
            d.rmdir()


def tenant_id_for(store: Store, settings: Settings, tenant: str | None) -> str:
    """``--tenant`` (id or domain), or the default tenant."""
    if not tenant:
        return str(bootstrap.default_tenant(store, settings)["id"])
    return str(identity.find_tenant(store, tenant)["id"])
