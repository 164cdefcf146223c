"""The single writer on real SQLite: group commit settles every caller, and a batch the database
rolled back by itself (disk full, I/O error) commits nothing — not even the writes after it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from graphdir.store.base import Change, EdgeWrite, StoredObject, Unavailable
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


@pytest.mark.parametrize("checked", [True, False])
def test_a_batch_the_database_rolled_back_commits_nothing(tmp_path: Path, checked: bool) -> None:
    store = SqliteStore(tmp_path / "w.db")
    store.open()
    try:

        async def run() -> list[object]:
            add = EdgeWrite("members", "add", "g", "u", "user", Change("g", "group", "addMember"))
            third = store.write_one("t", lambda view: add) if checked else store.write("t", _insert("c"))  # type: ignore[arg-type]
            futs = [store.write("t", _insert("a")), store.write("t", _disk_full), third]  # type: ignore[arg-type]
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
    # the control: without the writer's copy the log outgrows the bound (by how much depends on how often the
    # checkpointer happens to find it fully copied between two batches on a loaded machine: 2,259 to ~3,000 frames)
    grows = _wal_frames_under_steady_writes(tmp_path / "grows.db", 10**9)
    bounded = _wal_frames_under_steady_writes(tmp_path / "bounded.db", 40)
    assert bounded < 1_000 < grows, (bounded, grows)


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


# -- the event loop never waits for the writer ------------------------------------------------------
def test_a_sync_write_on_another_thread_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """A synchronous write (the token endpoint's code redemption runs one on a worker thread) is
    held inside its transaction while the loop queues a write of its own: the loop keeps turning
    (it hands its batch to the committer instead of waiting for the writer), and both writes land."""
    store = SqliteStore(tmp_path / "held.db")
    store.open()
    entered, release = threading.Event(), threading.Event()
    held: list[bool] = []

    def slow(tx: SqliteTxn) -> str:
        entered.set()
        held.append(release.wait(5))  # inside the transaction until the loop has shown it still turns
        tx.conn.execute("INSERT INTO meta VALUES ('slow', '1')")
        return "slow"

    async def run() -> tuple[bool, int, object, object]:
        side_result: list[object] = []
        side = threading.Thread(target=lambda: side_result.append(store.write_sync("t", slow)))  # type: ignore[arg-type]
        side.start()
        assert await asyncio.to_thread(entered.wait, 5)
        fut = store.write("t", _insert("a"))  # type: ignore[arg-type]
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        beat = asyncio.ensure_future(heartbeat())
        while ticks < 50 and not held:  # a blocked loop reaches this line only once the hold timed out
            await asyncio.sleep(0)
        turning = not held  # the loop turned 50 times while the sync write was still held
        beat.cancel()
        release.set()
        value = await asyncio.wait_for(fut, 10)
        await asyncio.to_thread(side.join, 10)
        return turning, ticks, value, side_result[0] if side_result else None

    try:
        turning, ticks, value, side_value = asyncio.run(run())
    finally:
        store.close()
    assert turning and ticks >= 50, "the event loop waited for the writer while a sync write held it"
    assert held == [True] and (value, side_value) == ("a", "slow")
    conn = sqlite3.connect(tmp_path / "held.db")
    try:
        assert {r[0] for r in conn.execute("SELECT key FROM meta WHERE key IN ('a', 'slow')")} == {"a", "slow"}
    finally:
        conn.close()


def test_write_sync_on_an_event_loop_thread_is_refused(tmp_path: Path) -> None:
    """On a thread that runs an event loop a synchronous write would block every request: it is a
    programming error (use ``await store.write(...)``), refused before it touches the database."""
    store = SqliteStore(tmp_path / "loop.db")
    store.open()

    async def run() -> None:
        with pytest.raises(RuntimeError, match="await store.write"):
            store.write_sync("t", _insert("on-loop"))  # type: ignore[arg-type]

    try:
        asyncio.run(run())
        assert store.write_sync("t", _insert("off-loop")) == "off-loop"  # type: ignore[arg-type]
    finally:
        store.close()
    conn = sqlite3.connect(tmp_path / "loop.db")
    try:
        assert [r[0] for r in conn.execute("SELECT key FROM meta WHERE key LIKE '%-loop' ORDER BY key")] == ["off-loop"]
    finally:
        conn.close()


# -- a write that raises leaves nothing behind --------------------------------------------------------
T = "11111111-1111-4111-8111-111111111111"
G = "33333333-3333-4333-8333-333333333333"
U = "22222222-2222-4222-8222-222222222222"


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_a_write_that_changes_rows_and_then_raises_leaves_nothing_behind(tmp_path: Path) -> None:
    """Whatever a write function changed before it raised is undone, its change records too; a
    checked write (``write_one``) cannot change anything before its one mutation, and when that
    mutation finds nothing to do it writes nothing either."""
    db = tmp_path / "undo.db"
    store = SqliteStore(db)
    store.open()
    store.bulk_load(T, [StoredObject(T, G, "group", {"displayName": "g"}, "2026-01-01T00:00:00Z"),
                        StoredObject(T, U, "user", {"displayName": "u"}, "2026-01-01T00:00:00Z")], [(G, U, "user")])

    def writes_then_raises(tx: SqliteTxn) -> None:
        tx.remove_member(G, U)
        tx.record(Change(G, "group", "removeMember", related_id=U))
        tx.insert(StoredObject(T, "44444444-4444-4444-8444-444444444444", "user", {}, "2026-01-01T00:00:00Z"))
        raise ValueError("refused after writing")

    def check_that_writes(view: Any) -> EdgeWrite:
        view.remove_member(G, U)  # a read-only view: there is no such method
        return EdgeWrite("members", "remove", G, U)

    def check_nothing_to_remove(view: Any) -> EdgeWrite:
        return EdgeWrite("members", "remove", G, "55555555-5555-4555-8555-555555555555", change=Change(G, "group", "removeMember"),
                         unchanged=lambda: LookupError("not a member"))

    def check_that_raises(view: Any) -> EdgeWrite:
        assert view.has_member(G, U)
        raise PermissionError("refused by a check")

    try:
        store.write_sync(T, lambda tx: None)
        before = _dump(db)

        async def run() -> list[object]:
            futs = [store.write(T, writes_then_raises), store.write_one(T, check_that_writes),  # type: ignore[arg-type]
                    store.write_one(T, check_nothing_to_remove), store.write_one(T, check_that_raises)]
            return await asyncio.gather(*futs, return_exceptions=True)

        results = asyncio.run(run())
    finally:
        store.close()
    assert [type(r) for r in results] == [ValueError, AttributeError, LookupError, PermissionError], results
    assert _dump(db) == before


def test_a_checked_write_commits_its_one_mutation_and_its_change(tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    store = SqliteStore(db)
    store.open()
    store.bulk_load(T, [StoredObject(T, G, "group", {"displayName": "g"}, "2026-01-01T00:00:00Z"),
                        StoredObject(T, U, "user", {"displayName": "u"}, "2026-01-01T00:00:00Z")], [])
    try:

        async def run() -> list[object]:
            add = EdgeWrite("members", "add", G, U, "user", change=Change(G, "group", "addMember", related_id=U), unchanged=lambda: KeyError("already"))
            first = await store.write_one(T, lambda view: add)
            again = await asyncio.gather(store.write_one(T, lambda view: add), return_exceptions=True)
            owner = EdgeWrite("owners", "add", G, U, "user", change=Change(G, "group", "addOwner", related_id=U))
            await store.write_one(T, lambda view: owner)
            gone = EdgeWrite("owners", "remove", G, U, change=Change(G, "group", "removeOwner", related_id=U))
            await store.write_one(T, lambda view: gone)
            return [first, *again]

        results = asyncio.run(run())
    finally:
        store.close()
    assert results[0] is None and isinstance(results[1], KeyError)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT group_id, member_id FROM members").fetchall() == [(G, U)]
        assert conn.execute("SELECT count(*) FROM owners").fetchone()[0] == 0
        assert [r[0] for r in conn.execute("SELECT action FROM changes ORDER BY seq")] == ["addMember", "addOwner", "removeOwner"]
    finally:
        conn.close()


@pytest.mark.anyio
@pytest.mark.parametrize("op", ["add", "remove"])
async def test_a_membership_write_that_fails_after_its_checks_changes_nothing(api: Any, monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    """Through the app: if building the change record fails (a bug), the membership write is
    answered 500 and neither the membership nor any change record is left half-written."""
    from graphdir.directory import membership

    user = await api.create_user()
    other = await api.create_user()
    group = await api.create_group()
    assert (await api.add_member(group["id"], user["id"])).status_code == 204

    async def state() -> tuple[Any, ...]:
        """What the write could have touched, read through the store (either backend): the group's
        members, the three objects and the whole change log."""
        store, tid = api.graph.store, api.tenant_id
        objects = [await store.get(tid, o["id"]) for o in (user, other, group)]
        return await api.member_ids(group["id"]), objects, await store.list_changes(tid)

    before = await state()

    def broken(*_a: Any, **_kw: Any) -> Change:
        raise RuntimeError("the change record could not be built")

    monkeypatch.setattr(membership, "Change", broken)
    if op == "add":
        resp = await api.add_member(group["id"], other["id"])
    else:
        resp = await api.delete(f"/v1.0/groups/{group['id']}/members/{user['id']}/$ref")
    assert resp.status_code == 500, resp.text
    assert await state() == before


def test_several_loops_and_sync_writers_share_the_writer_without_deadlock(tmp_path: Path) -> None:
    """Three event loops (each on its own thread) and two threads of synchronous writes, all at once:
    whoever holds the connection, the others queue behind it and nobody waits for a job queued after
    their own; every write lands exactly once."""
    db = tmp_path / "many.db"
    store = SqliteStore(db, batch_max=16)
    store.open()
    errors: list[BaseException] = []

    def loop_writer(n: int) -> None:
        async def run() -> None:
            for start in range(0, 300, 30):
                futs = [store.write("t", _insert(f"l{n}-{i}")) for i in range(start, start + 30)]  # type: ignore[arg-type]
                await asyncio.wait_for(asyncio.gather(*futs), 30)

        try:
            asyncio.run(run())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def sync_writer(n: int) -> None:
        try:
            for i in range(50):
                store.write_sync("t", _insert(f"s{n}-{i}"))  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=loop_writer, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=sync_writer, args=(n,)) for n in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "a writer is stuck"
    finally:
        store.close()
    assert errors == []
    conn = sqlite3.connect(db)
    try:
        keys = [r[0] for r in conn.execute("SELECT key FROM meta WHERE key LIKE 'l%' OR key LIKE 's%'")]
        changes = [r[0] for r in conn.execute("SELECT object_id FROM changes")]
    finally:
        conn.close()
    expected = {f"l{n}-{i}" for n in range(3) for i in range(300)} | {f"s{n}-{i}" for n in range(2) for i in range(50)}
    assert len(keys) == len(expected) and set(keys) == expected
    assert sorted(changes) == sorted(expected)
