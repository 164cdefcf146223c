"""One settings object: defaults → TOML file → ``GRAPHDIR_*`` environment.

Every field is documented in ``docs/configuration.md``. The database is chosen
by URL: ``sqlite:///path/to/file.db``; by default ``$XDG_DATA_HOME/graphdir/graphdir.db``
(``~/.local/share/graphdir/graphdir.db``), whatever the working directory. Other
backends (``postgresql://…``) are refused until they land.

Every value is checked: a boolean spelled in no known way, a file value of the wrong type,
an unknown key or an unsupported database URL raise :class:`SettingsError`, whose
message is one line naming the setting and where it came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "GRAPHDIR_"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """A setting that cannot be used; the message is one line for the user."""


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/graphdir`` (``~/.local/share/graphdir`` when unset): independent of the working directory."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "graphdir"


#: URL schemes of the PostgreSQL backend.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def redact_url(url: str) -> str:
    """A database URL fit to print: a password in it is replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def default_database_url(env: Mapping[str, str] | None = None) -> str:
    return "sqlite:///" + str(default_data_dir(env) / "graphdir.db")


@dataclass(frozen=True)
class Settings:
    #: Database URL; ``sqlite:///relative.db`` or ``sqlite:////absolute.db``; default
    #: ``sqlite:///$XDG_DATA_HOME/graphdir/graphdir.db`` (``~/.local/share/graphdir/graphdir.db``).
    database_url: str = field(default_factory=default_database_url)
    #: Interface and port ``graphdir serve`` listens on.
    host: str = "127.0.0.1"
    port: int = 8080
    #: Public base URL (scheme://host[:port]) used in ``@odata.nextLink``; empty = the request's own origin.
    public_base_url: str = ""
    #: ``allow`` (the 2015 seed page: membership of mail-enabled security groups can be changed)
    #: or ``refuse`` (today's Graph: 400 "Cannot Update a mail-enabled security groups and or distribution list.").
    mail_enabled_security_membership: str = "allow"
    #: Reproduce the v1.0 known issue: service principals missing from members/owners lists.
    hide_service_principals_v1: bool = False
    #: Largest request body accepted, in bytes (Graph's limit is 4 MB).
    max_body_bytes: int = 4 * 1024 * 1024
    #: Lifetime of tokens minted by ``graphdir token`` / the token endpoint, seconds.
    token_lifetime: int = 3600
    #: Clock skew tolerated on ``exp``/``nbf``, seconds (Entra allows 5 minutes).
    clock_skew: int = 300
    #: Name of the default tenant's initial domain (``<name>.onmicrosoft.com``).
    default_domain: str = "contoso.onmicrosoft.com"
    #: Writer: most requests committed in one transaction (group commit).
    writer_batch_max: int = 512
    #: Seconds between background WAL checkpoints (SQLite).
    checkpoint_interval: float = 0.5
    #: Bytes of the SQLite file read through a memory map instead of ``read()`` calls (0 = off;
    #: the SQLite build caps it, at 2 GiB on Debian's).
    sqlite_mmap_size: int = 2**31
    #: Debugging tail latency: a file to which the server appends, as JSON lines, every commit, WAL
    #: checkpoint and restart, garbage collection, writer-cache eviction and event-loop lag
    #: (graphdir.stalls; bench/tail.py reads it). Empty = off (the default).
    stall_log: str = ""
    #: ``$top`` above 999: ``error`` (400) or ``cap`` (silently 999).
    top_over_max: str = "error"
    #: Server worker processes for ``graphdir serve``; more than 1 only on PostgreSQL, where every
    #: worker writes (a SQLite file has one writer: docs/scaling.md#workers).
    workers: int = 1
    #: Serve HTTPS (``graphdir serve --tls``). MSAL and azure-identity accept only https authorities.
    tls: bool = False
    #: PEM certificate chain and key to serve; empty = a CA and server certificate generated once in ``tls_dir``.
    tls_cert: str = ""
    tls_key: str = ""
    #: Where the generated CA and server certificate live; empty = ``tls/`` next to the SQLite file.
    tls_dir: str = ""
    #: JSON file listing external token issuers (e.g. a real Entra ID tenant) trusted per tenant
    #: (graphdir.auth.external); empty = only graphdir's own tokens are accepted.
    external_issuers_file: str = ""
    #: Seconds a connection may take to deliver a complete request head, counted from its opening or
    #: from the end of its previous response: the idle (keep-alive) and the header-read timeout in one,
    #: as granian's HTTP/1 server (hyper) runs one timer for both. The connection is closed after it.
    header_read_timeout: float = 30.0
    #: Seconds a request may take to deliver its whole body once the service starts reading it; after
    #: that it gets ``408`` with Graph's error JSON and the connection is closed (docs/behaviour.md#connection-limits).
    body_read_timeout: float = 30.0
    #: Open connections one server worker serves at once (granian's ``backpressure``); further
    #: connections wait in the listen backlog until one closes.
    max_connections: int = 8192
    #: Length of the listening socket's queue of connections not yet accepted (the kernel caps it
    #: at ``net.core.somaxconn``).
    listen_backlog: int = 2048
    #: Longest request target (path and query string) in bytes; longer ones get ``414`` with Graph's
    #: error JSON (up to 65,534 bytes, beyond which granian answers ``414`` itself, with an empty body).
    max_uri_bytes: int = 16384
    #: Largest total size of the request's header names and values in bytes; larger ones get ``431``
    #: with Graph's error JSON (docs/behaviour.md#http-layer-errors).
    max_header_bytes: int = 65536

    @property
    def is_sqlite(self) -> bool:
        """Is the database an embedded SQLite file (else PostgreSQL)?"""
        return self.database_url.startswith("sqlite:///")

    @property
    def data_dir(self) -> Path:
        """The directory of the database file (generated TLS material lives there)."""
        if self.is_sqlite:
            return self.sqlite_path.parent
        return default_data_dir()

    @property
    def sqlite_path(self) -> Path:
        if not self.database_url.startswith("sqlite:///"):
            raise ValueError(f"not a sqlite URL: {self.database_url}")
        return Path(self.database_url[len("sqlite:///"):])


_KIND_NAMES = {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}


def _coerce(name: str, value: str, kind: type) -> Any:
    """An environment variable's text as the setting's type, or :class:`SettingsError`."""
    where = ENV_PREFIX + name.upper()
    if kind is bool:
        word = value.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise SettingsError(f"{where}={value!r}: expected a boolean (1/true/yes/on or 0/false/no/off)")
    try:
        return kind(value) if kind in (int, float) else value
    except ValueError:
        raise SettingsError(f"{where}={value!r}: expected {_KIND_NAMES[kind]}") from None


def _check_type(name: str, value: Any, kind: type, where: str) -> Any:
    """A settings-file value of the setting's type (an integer is a valid float), or :class:`SettingsError`."""
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise SettingsError(f"{where}: setting {name!r} must be {_KIND_NAMES[kind]}, got {value!r}")
    return value


def _read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"settings file {os.fspath(path)!r} does not exist") from None
    except OSError as exc:
        raise SettingsError(f"settings file {os.fspath(path)!r} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {os.fspath(path)!r} is not valid TOML: {exc}") from None
    section = data.get("graphdir", data)
    if not isinstance(section, dict):
        raise SettingsError(f"settings file {os.fspath(path)!r}: [graphdir] must be a table")
    return section


def _validate(settings: Settings) -> None:
    if settings.mail_enabled_security_membership not in {"allow", "refuse"}:
        raise SettingsError("mail_enabled_security_membership must be 'allow' or 'refuse'")
    if settings.top_over_max not in {"error", "cap"}:
        raise SettingsError("top_over_max must be 'error' or 'cap'")
    if not 0 <= settings.port <= 65535:
        raise SettingsError(f"port must be between 0 and 65535, got {settings.port}")
    url = settings.database_url
    if not (url.startswith(POSTGRES_SCHEMES) or (url.startswith("sqlite:///") and len(url) > len("sqlite:///"))):
        raise SettingsError(
            f"unsupported database URL {redact_url(url)!r} (supported: sqlite:///path/to/file.db, postgresql://user@host:port/database)"
        )
    if settings.workers < 1:
        raise SettingsError(f"workers must be at least 1, got {settings.workers}")
    if settings.workers > 1 and settings.is_sqlite:
        raise SettingsError(
            "workers > 1 needs a postgresql:// database: a SQLite file has one writer, so graphdir serves it "
            "from one process (docs/scaling.md#workers)"
        )


def load_settings(file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, then a TOML file, then ``GRAPHDIR_*`` variables, then overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {"database_url": default_database_url(env)}
    types = {f.name: f.type for f in fields(Settings)}
    kinds = {name: {"int": int, "float": float, "bool": bool}.get(str(t), str) for name, t in types.items()}
    path = file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        where = f"settings file {os.fspath(path)!r}"
        for key, val in _read_file(path).items():
            if key not in types:
                raise SettingsError(f"{where}: unknown setting {key!r}")
            values[key] = _check_type(key, val, kinds[key], where)
    for name in types:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce(name, raw, kinds[name])
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)
    _validate(settings)
    return settings
