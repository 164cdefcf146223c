"""The single writer on real SQLite: group commit settles every caller, and a batch the database
rolled back by itself (disk full, I/O error) commits nothing — not even the writes after it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
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


def test_write_functions_run_on_the_event_loop_thread_and_settle_after_the_commit(tmp_path: Path) -> None:
    """The batch runs on the submitting loop's thread; each caller learns its result only once the
    batch is committed, so another connection already sees the rows when the future settles."""
    store = SqliteStore(tmp_path / "t.db")
    store.open()
    seen: list[int] = []

    def fn(key: str) -> object:
        def write(tx: SqliteTxn) -> str:
            seen.append(threading.get_ident())
            tx.conn.execute("INSERT INTO meta VALUES (?, '1')", (key,))
            return key

        return write

    try:

        async def run() -> list[tuple[str, bool]]:
            async def one(key: str) -> tuple[str, bool]:
                value = await store.write("t", fn(key))  # type: ignore[arg-type]
                with sqlite3.connect(tmp_path / "t.db") as other:
                    committed = other.execute("SELECT count(*) FROM meta WHERE key=?", (value,)).fetchone()[0] == 1
                return value, committed

            return await asyncio.gather(*(one(f"k{i}") for i in range(200)))

        results = asyncio.run(run())
    finally:
        store.close()
    assert results == [(f"k{i}", True) for i in range(200)]
    assert set(seen) == {threading.get_ident()}  # asyncio.run's loop runs on this thread


def test_a_failing_write_is_rolled_back_alone_and_sync_writes_interleave(tmp_path: Path) -> None:
    """One write of a batch raising rolls back its own savepoint only; a synchronous write from another
    thread while the loop writes gets its own transaction; every value lands exactly once."""
    store = SqliteStore(tmp_path / "s.db", batch_max=7)
    store.open()

    def fail(tx: SqliteTxn) -> None:
        tx.conn.execute("INSERT INTO meta VALUES ('half', '1')")
        raise ValueError("refused")

    try:

        async def run() -> list[object]:
            futs = [store.write("t", _insert(f"a{i}")) for i in range(30)]  # type: ignore[arg-type]
            futs.insert(11, store.write("t", fail))  # type: ignore[arg-type]
            side = threading.Thread(target=lambda: [store.write_sync("t", _insert(f"s{i}")) for i in range(20)])  # type: ignore[arg-type]
            side.start()
            out = await asyncio.gather(*futs, return_exceptions=True)
            await asyncio.to_thread(side.join)
            return out

        results = asyncio.run(run())
    finally:
        store.close()
    assert isinstance(results[11], ValueError)
    assert [r for i, r in enumerate(results) if i != 11] == [f"a{i}" for i in range(30)]
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        keys = {r[0] for r in conn.execute("SELECT key FROM meta WHERE key LIKE 'a%' OR key LIKE 's%' OR key='half'")}
        changes = [r[0] for r in conn.execute("SELECT object_id FROM changes ORDER BY seq")]
    finally:
        conn.close()
    assert keys == {f"a{i}" for i in range(30)} | {f"s{i}" for i in range(20)}
    assert sorted(changes) == sorted(keys) and len(changes) == len(set(changes))


def _wal_frames_under_steady_writes(path: Path, restart_frames: int) -> int:
    """Write 3,000 pages in back-to-back batches; the WAL file's largest size, in frames."""
    store = SqliteStore(path, checkpoint_interval=0.01)
    store.wal_restart_frames = restart_frames
    store.open()
    wal = Path(f"{path}-wal")
    frames = 0

    def blob(i: int) -> object:
        def write(tx: SqliteTxn) -> None:
            tx.conn.execute("INSERT INTO meta VALUES (?, ?)", (f"b{i}", "x" * 3000))  # about one page each

        return write

    try:

        async def run() -> None:
            nonlocal frames
            for start in range(0, 3000, 20):  # 150 batches back to back, no pause between them
                await asyncio.gather(*(store.write("t", blob(i)) for i in range(start, start + 20)))  # type: ignore[arg-type]
                frames = max(frames, (wal.stat().st_size - 32) // (4096 + 24))

        asyncio.run(run())
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM meta WHERE key LIKE 'b%'").fetchone()[0] == 3000
    finally:
        conn.close()
    return frames


def test_the_wal_starts_over_under_a_steady_stream_of_writes(tmp_path: Path) -> None:
    """Under writes that never pause, a passive checkpoint never finds the log fully copied, so SQLite
    never starts it over; asked by the checkpointer, the writer copies the last tail itself, and the
    WAL stays near the threshold instead of holding every page ever written."""
    assert _wal_frames_under_steady_writes(tmp_path / "grows.db", 10**9) > 2_500
    assert _wal_frames_under_steady_writes(tmp_path / "bounded.db", 40) < 1_000


def test_the_loop_keeps_serving_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """``graphdir user create`` next to a running server holds SQLite's write lock for a moment: the
    event loop must not sleep in SQLite's busy handler meanwhile (the batch waits on the committer),
    and the write lands once the lock is free."""
    db = tmp_path / "busy.db"
    store = SqliteStore(db)
    store.open()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    progressed = threading.Event()
    result: list[object] = []

    async def run() -> None:
        fut = store.write("t", _insert("while-locked"))  # type: ignore[arg-type]
        for _ in range(5):  # turns of the loop after the batch was flushed
            await asyncio.sleep(0.01)
        progressed.set()
        result.append(await fut)

    loop_thread = threading.Thread(target=lambda: asyncio.run(run()))
    loop_thread.start()
    try:
        assert progressed.wait(5), "the event loop was blocked while another connection held the write lock"
    finally:
        holder.execute("COMMIT")
        holder.close()
        loop_thread.join(15)
        store.close()
    assert result == ["while-locked"]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM meta WHERE key='while-locked'").fetchone()[0] == 1
    finally:
        conn.close()


def test_close_from_another_thread_settles_every_queued_write(tmp_path: Path) -> None:
    """``close()`` while another thread's loop still has writes queued: it returns, and every caller
    learns an outcome (committed, or refused because the store closed); none is left waiting."""
    store = SqliteStore(tmp_path / "c.db", batch_max=5)
    store.open()
    started = threading.Event()
    outcomes: list[object] = []

    def slow(key: str) -> object:
        def write(tx: SqliteTxn) -> str:
            tx.conn.execute("INSERT INTO meta VALUES (?, '1')", (key,))
            return key

        return write

    async def run() -> None:
        futs = [store.write("t", slow(f"q{i}")) for i in range(300)]  # type: ignore[arg-type]
        started.set()
        outcomes.extend(await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), 30))

    loop_thread = threading.Thread(target=lambda: asyncio.run(run()))
    loop_thread.start()
    assert started.wait(5)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(30)
    loop_thread.join(30)
    assert not closer.is_alive() and not loop_thread.is_alive()
    assert len(outcomes) == 300
    assert all(o == f"q{i}" or isinstance(o, Unavailable) for i, o in enumerate(outcomes)), outcomes[:5]
    committed = {o for o in outcomes if isinstance(o, str)}
    conn = sqlite3.connect(tmp_path / "c.db")
    try:
        assert {r[0] for r in conn.execute("SELECT key FROM meta WHERE key LIKE 'q%'")} == committed
    finally:
        conn.close()
