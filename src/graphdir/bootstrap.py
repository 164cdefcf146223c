"""First start: the default tenant, the default application and the signing keys."""

from __future__ import annotations

import uuid
from typing import Any

from graphdir.settings import POSTGRES_SCHEMES, Settings, redact_url
from graphdir.store.base import Store


def default_tenant(store: Store, settings: Settings) -> dict[str, Any]:
    """Create the default tenant once; later starts find it in ``meta``."""
    tid = store.sync(store.get_meta("default_tenant"))
    if tid:
        tenant = store.sync(store.get_tenant(tid))
        if tenant:
            return tenant
    tid = tid or str(uuid.uuid4())
    tenant = {"id": tid, "displayName": "graphdir", "domain": settings.default_domain, "props": {"domains": [settings.default_domain]}}
    store.put_tenant(tenant)
    store.put_meta("default_tenant", tid)
    return store.sync(store.get_tenant(tid)) or tenant


def default_app_id(store: Store) -> str:
    """The client id that ``graphdir token`` puts in ``appid`` (a registered app comes with issue 3's CLI)."""
    app_id = store.sync(store.get_meta("default_app_id"))
    if not app_id:
        app_id = str(uuid.uuid4())
        store.put_meta("default_app_id", app_id)
    return app_id


def open_store(settings: Settings) -> Store:
    url = settings.database_url
    if url.startswith("sqlite:///"):
        from graphdir.odata.serialize import renderings
        from graphdir.store.sqlite import SqliteStore

        return SqliteStore(
            settings.sqlite_path, settings.writer_batch_max, settings.checkpoint_interval, render=renderings(),
            mmap_size=settings.sqlite_mmap_size,
        )
    if url.startswith(POSTGRES_SCHEMES):
        from graphdir.odata.serialize import renderings
        from graphdir.store.postgres import PostgresStore

        store: Store = PostgresStore(url, settings.writer_batch_max, render=renderings())
        return store
    raise ValueError(f"unsupported database URL {redact_url(url)!r} (supported: sqlite:///path, postgresql://…)")
