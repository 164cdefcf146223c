"""The storage contract's fixture and helpers: one ``store`` per backend, reached only through the seam.

:func:`store` is parametrised ``["sqlite", "postgresql"]``. Both are opened the way graphdir opens
them (:func:`graphdir.bootstrap.open_store` from a database URL); the PostgreSQL one gets a fresh
database per test (:func:`pg_helpers.fresh_database`) and skips, saying why, while the backend
module is missing or no PostgreSQL is configured. Tests use :class:`graphdir.store.base.Store`,
``Txn``/``TxnView`` and the ``StoreError`` classes only: never a connection, never SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from graphdir import bootstrap
from graphdir.query import ListQuery
from graphdir.settings import load_settings
from graphdir.store.base import Page, Store, StoredObject, Txn
from pg_helpers import fresh_database

T = TypeVar("T")

BACKENDS = ["sqlite", "postgresql"]
CREATED = "2024-05-01T12:00:00Z"
#: words a client-facing storage error must never carry (the database's own text)
SQL_WORDS = ("UNIQUE", "constraint", "duplicate key", "violates", "sqlite", "psycopg", "INSERT", "SELECT")


@contextlib.contextmanager
def opened(url: str) -> Iterator[Store]:
    store = bootstrap.open_store(load_settings(env={}, database_url=url))
    store.open()
    _URLS[id(store)] = url
    try:
        yield store
    finally:
        _URLS.pop(id(store), None)
        store.close()


#: the test's event loop: every read and write of a test is awaited on it, as a server worker awaits
#: the store on its one long-lived loop (a read awaited in a short-lived ``asyncio.run`` is
#: ``test_store_contract.py::test_a_read_in_a_short_lived_event_loop``'s business)
_RUNNER: asyncio.Runner | None = None
_URLS: dict[int, str] = {}


@contextlib.contextmanager
def _loop() -> Iterator[None]:
    global _RUNNER
    runner = asyncio.Runner()
    _RUNNER = runner
    try:
        yield
    finally:
        _RUNNER = None
        runner.close()


@pytest.fixture(name="store", params=BACKENDS)
def store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An open, migrated, empty store of each backend (closed before the test's event loop is)."""
    if request.param == "sqlite":
        with _loop(), opened(f"sqlite:///{tmp_path / 'contract.db'}") as s:
            yield s
        return
    pytest.importorskip("graphdir.store.postgres", reason="graphdir.store.postgres is not on this branch yet (PostgreSQL backend)")
    with _loop(), fresh_database() as url, opened(url) as s:
        yield s


def url_of(store: Store) -> str:
    """The database URL the fixture opened ``store`` from (for a test that opens it again in a subprocess)."""
    return _URLS[id(store)]


def backend_of(request: pytest.FixtureRequest) -> str:
    """The backend the ``store`` fixture was made for."""
    return str(request.node.callspec.params["store"])


# -- ids and objects ----------------------------------------------------------------------------------
def uid(n: int | None = None) -> str:
    """A lower-case UUID: ``uid(n)`` is stable (and orders by n), ``uid()`` random."""
    return str(uuid.UUID(int=n)) if n is not None else str(uuid.uuid4())


TENANT = uid(10**30)
OTHER_TENANT = uid(2 * 10**30)


def user(oid: str, name: str = "", upn: str | None = None, tenant: str = TENANT, **props: Any) -> StoredObject:
    p: dict[str, Any] = {"displayName": name, **props}
    if upn is not None:
        p["userPrincipalName"] = upn
    return StoredObject(tenant, oid, "user", p, CREATED)


def group(oid: str, name: str = "", tenant: str = TENANT, **props: Any) -> StoredObject:
    return StoredObject(tenant, oid, "group", {"displayName": name, "securityEnabled": True, **props}, CREATED)


def run(aw: Awaitable[T]) -> T:
    """Await ``aw`` on the test's event loop (the way a request handler awaits the store)."""

    async def main() -> T:
        return await aw

    assert _RUNNER is not None, "run() needs the store fixture"
    return _RUNNER.run(main())


def write(store: Store, fn: Callable[[Txn], T], tenant: str = TENANT) -> T:
    """One ``store.write`` awaited on the test's event loop."""

    async def main() -> T:
        return await store.write(tenant, fn)

    return run(main())


def insert_all(store: Store, objs: list[StoredObject], tenant: str = TENANT) -> None:
    def fn(tx: Txn) -> None:
        for o in objs:
            tx.insert(o)

    write(store, fn, tenant)


def add_members(store: Store, group_id: str, members: list[StoredObject], tenant: str = TENANT) -> None:
    def fn(tx: Txn) -> None:
        for m in members:
            assert tx.add_member(group_id, m.id, m.type)

    write(store, fn, tenant)


ListFn = Callable[[ListQuery], Awaitable[Page]]


def all_pages(list_fn: ListFn, q: ListQuery) -> tuple[list[StoredObject], int]:
    """Follow ``next_after`` from the first page to the last; returns the items and how many pages."""
    items: list[StoredObject] = []
    pages = 0
    after = None
    while True:
        q.after = after
        page = run(list_fn(q))
        pages += 1
        assert len(page.items) <= q.top
        items += page.items
        after = page.next_after
        if after is None:
            return items, pages
        assert pages < 10_000, "paging does not end"


_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def nocase(text: str) -> str:
    """ASCII-only case folding, like SQLite's NOCASE (``É`` stays ``É``)."""
    return text.translate(_ASCII_FOLD)


def name_order(objs: list[StoredObject], descending: bool = False) -> list[str]:
    """Ids in the order ``$orderby=displayName`` lists them: NOCASE name, then id (both reversed when descending)."""
    ordered = sorted(objs, key=lambda o: (nocase(o.props.get("displayName") or ""), o.id), reverse=descending)
    return [o.id for o in ordered]


def ids(items: list[StoredObject]) -> list[str]:
    return [o.id for o in items]
