"""The single writer on real SQLite: group commit settles every caller, and a batch the database
rolled back by itself (disk full, I/O error) commits nothing — not even the writes after it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from graphdir.store.base import Change, Unavailable
from graphdir.store.sqlite import SqliteStore, SqliteTxn


def _insert(key: str) -> object:
    def fn(tx: SqliteTxn) -> str:
        tx.conn.execute("INSERT INTO meta VALUES (?, '1')", (key,))
        tx.record(Change(key, "group", "addMember"))
        return key

    return fn


def _disk_full(tx: SqliteTxn) -> None:
    """One statement that fails with SQLITE_FULL, which makes SQLite roll back the whole transaction."""
    pages = tx.conn.execute("PRAGMA page_count").fetchone()[0]
    tx.conn.execute(f"PRAGMA max_page_count={pages + 1}")
    try:
        tx.conn.execute("INSERT INTO meta VALUES ('full', zeroblob(1000000))")
    finally:
        tx.conn.execute("PRAGMA max_page_count=1073741823")


def _rows(path: Path) -> tuple[list[str], list[str]]:
    conn = sqlite3.connect(path)
    try:
        meta = [r[0] for r in conn.execute("SELECT key FROM meta WHERE key IN ('a', 'c', 'full') ORDER BY key")]
        changes = [r[0] for r in conn.execute("SELECT object_id FROM changes ORDER BY seq")]
        return meta, changes
    finally:
        conn.close()


@pytest.mark.parametrize("atomic", [True, False])
def test_a_batch_the_database_rolled_back_commits_nothing(tmp_path: Path, atomic: bool) -> None:
    store = SqliteStore(tmp_path / "w.db")
    store.open()
    try:

        async def run() -> list[object]:
            futs = [store.write("t", _insert("a")), store.write("t", _disk_full, atomic=atomic), store.write("t", _insert("c"), atomic=True)]  # type: ignore[arg-type]
            return await asyncio.gather(*futs, return_exceptions=True)

        results = asyncio.run(run())
    finally:
        store.close()
    assert all(isinstance(r, Unavailable) for r in results), results
    assert _rows(tmp_path / "w.db") == ([], [])


def test_group_commit_settles_every_caller_even_with_batch_max_zero(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "z.db", batch_max=0)
    store.open()
    try:

        async def run() -> list[object]:
            return await asyncio.wait_for(asyncio.gather(*(store.write("t", _insert(k)) for k in ("a", "c"))), 10)  # type: ignore[arg-type]

        assert asyncio.run(run()) == ["a", "c"]
    finally:
        store.close()
    assert _rows(tmp_path / "z.db") == (["a", "c"], ["a", "c"])
