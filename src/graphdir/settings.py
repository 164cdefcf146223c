"""One settings object: defaults → TOML file → ``GRAPHDIR_*`` environment.

Every field is documented in ``docs/configuration.md``. The database is chosen
by URL: ``sqlite:///path/to/file.db`` (the embedded default) or, once that
backend lands, ``postgresql://…``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "GRAPHDIR_"


@dataclass(frozen=True)
class Settings:
    #: Database URL; ``sqlite:///relative.db`` or ``sqlite:////absolute.db``.
    database_url: str = "sqlite:///.graphdir/graphdir.db"
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
    #: ASGI server workers for ``graphdir serve`` (one writer per database: keep 1 on SQLite).
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

    @property
    def data_dir(self) -> Path:
        """The directory of the database file (generated TLS material lives there)."""
        if self.database_url.startswith("sqlite:///"):
            return self.sqlite_path.parent
        return Path(".graphdir")

    @property
    def sqlite_path(self) -> Path:
        if not self.database_url.startswith("sqlite:///"):
            raise ValueError(f"not a sqlite URL: {self.database_url}")
        return Path(self.database_url[len("sqlite:///"):])


def _coerce(value: str, kind: type) -> Any:
    if kind is bool:
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    return value


def load_settings(file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, then a TOML file, then ``GRAPHDIR_*`` variables, then overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(Settings)}
    kinds = {name: {"int": int, "float": float, "bool": bool}.get(str(t), str) for name, t in types.items()}
    path = file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        data = data.get("graphdir", data)
        for key, val in data.items():
            if key not in types:
                raise ValueError(f"unknown setting {key!r} in {path}")
            values[key] = val
    for name in types:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _coerce(raw, kinds[name])
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)
    if settings.mail_enabled_security_membership not in {"allow", "refuse"}:
        raise ValueError("mail_enabled_security_membership must be 'allow' or 'refuse'")
    if settings.top_over_max not in {"error", "cap"}:
        raise ValueError("top_over_max must be 'error' or 'cap'")
    return settings
