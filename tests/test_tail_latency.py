"""Tail latency (issue 9): the mechanisms behind the stalls bench/tail.py found, tested without timing
(bench/README.md#tail-latency has the measurements).

* the WAL file is not truncated inside the COMMIT that starts the log over;
* before the writer copies the WAL's tail under its lock, the checkpointer syncs the database file and
  copies the frames written meanwhile, so the writer is left a short tail;
* the server's garbage-collector tuning freezes what start-up allocated (it ran before start-up);
* after another connection's commit the writer finds the last change sequence number without reading
  the whole change log on the event loop;
* flushing the database file never drops this process's POSIX locks on it (its descriptor is never
  closed), so no other process takes the database for unused while the server runs;
* the opt-in stall log (``stall_log``) records what the bench attributes stalls to.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import subprocess
import sys
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

from graphdir import stalls
from graphdir.auth.tokens import mint
from graphdir.settings import load_settings
from graphdir.store import sqlite as sqlite_mod
from graphdir.store import sqlite_txn
from graphdir.store.base import Change
from graphdir.store.sqlite import TAIL_PASSES, SqliteStore, SqliteTxn
from graphdir.store.sqlite_backend import max_seq
from graphdir.web.app import build_app

with warnings.catch_warnings():  # Starlette's TestClient (sync, runs the lifespan) announces a move to httpx2
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BLOB = 4_000_000


def _put(key: str, size: int) -> Any:
    def fn(tx: SqliteTxn) -> None:
        tx.conn.execute("INSERT INTO meta VALUES (?, zeroblob(?))", (key, size))

    return fn


def _checkpoint(db: Path) -> tuple[int, int]:
    """A passive checkpoint from another connection: (frames in the log, frames copied)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        _busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        conn.close()
    return int(log), int(done)


def test_the_wal_file_keeps_its_size_when_the_log_starts_over(tmp_path: Path) -> None:
    """A log of ~72 MB, fully copied; the next write starts it over. With a ``journal_size_limit`` SQLite
    truncated the file to the limit (64 MiB) inside that write's COMMIT — 100-250 ms of truncation and
    metadata sync with every write waiting, at the start of every burst that followed a pause."""
    db = tmp_path / "wal.db"
    wal = Path(f"{db}-wal")
    store = SqliteStore(db, checkpoint_interval=3600)  # no background checkpoints: this test makes them
    store.open()
    try:

        async def big() -> None:
            await asyncio.gather(*(store.write("t", _put(f"blob{i}", BLOB)) for i in range(18)))

        asyncio.run(big())
        log, done = _checkpoint(db)
        assert log == done and log * 4096 > 70_000_000  # every frame copied: the next write starts the log over
        before = wal.stat().st_size

        async def small() -> None:
            await store.write("t", _put("after", 10))

        asyncio.run(small())
        log, _ = _checkpoint(db)
        assert log < 100, "the log did not start over"
        assert wal.stat().st_size >= before, "the WAL file was truncated by the COMMIT that started the log over"
    finally:
        store.close()
    assert wal.stat().st_size == 0 if wal.exists() else True  # closing the store truncates it


def test_the_checkpointer_syncs_and_copies_before_the_writer_copies_the_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under steady writes the writer copies the WAL's tail under its lock; the checkpointer first syncs
    the database file and copies what was written meanwhile, ``TAIL_PASSES`` times, so that the
    writer's checkpoint has a short tail to copy and few pages to sync (120-180 ms before, ~30 ms after)."""
    events: list[str] = []
    real_flush = sqlite_mod.flush_file

    def flush(path: Path) -> None:
        events.append("flush")
        real_flush(path)

    monkeypatch.setattr(sqlite_mod, "flush_file", flush)
    db = tmp_path / "tail.db"
    store = SqliteStore(db, checkpoint_interval=0.01)
    store.wal_restart_frames = 40
    real_request = store._writer.request_checkpoint

    def request() -> None:
        events.append("request")
        real_request()

    monkeypatch.setattr(store._writer, "request_checkpoint", request)
    store.open()
    try:

        async def run() -> None:
            for start in range(0, 1500, 20):  # 75 batches back to back, no pause between them
                await asyncio.gather(*(store.write("t", _put(f"b{i}", 3000)) for i in range(start, start + 20)))

        asyncio.run(run())
    finally:
        store.close()
    assert "request" in events, "the log never reached the restart threshold"
    since = 0
    for e in events:
        if e == "flush":
            since += 1
        else:
            assert since >= TAIL_PASSES, f"the writer was asked to copy the tail after {since} flushes: {events[:20]}"
            since = 0


def test_gc_freezes_what_start_up_allocated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``graphdir serve``'s app (graphdir.asgi:create_app) tunes the collector once start-up is done: the
    key ring and everything else the store and the app loaded then are frozen, never walked again."""
    from graphdir.asgi import GC_THRESHOLD, create_app

    monkeypatch.setenv("GRAPHDIR_DATABASE_URL", f"sqlite:///{tmp_path / 'gc.db'}")
    threshold = gc.get_threshold()
    app = create_app()
    try:
        with TestClient(app):
            ring = app.state.graph.ring
            assert ring is not None
            frozen = not any(o is ring for o in gc.get_objects())
            tuned = gc.get_threshold() == GC_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert tuned
    assert frozen, "the key ring, loaded at start-up, is still walked by the collector (gc.freeze ran before start-up)"


def test_the_stall_log_records_what_can_stall_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``stall_log``: through the real app, a write's batch and commit, the checkpoints, a garbage
    collection, the writer's cache cleared by another connection's commit and a cache eviction."""
    monkeypatch.setattr(sqlite_txn, "CACHE_GROUPS", 1)
    path = tmp_path / "stalls.jsonl"
    db = tmp_path / "s.db"
    settings = load_settings(database_url=f"sqlite:///{db}", stall_log=str(path), checkpoint_interval=0.02, env={})
    app = build_app(settings)
    with TestClient(app) as client:
        graph = app.state.graph
        token = mint(graph.ring, graph.tenant["id"], app_id=graph.app_id, roles=["Group.ReadWrite.All", "GroupMember.ReadWrite.All"])
        auth = {"Authorization": f"Bearer {token}"}
        ids = []
        for name in ("one", "two"):
            r = client.post("/v1.0/groups", headers=auth, json={"displayName": name, "mailEnabled": False, "mailNickname": name,
                                                                 "securityEnabled": True})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        other = sqlite3.connect(db, isolation_level=None)  # another process's commit: the writer's cache is stale
        other.execute("INSERT INTO meta VALUES ('other', '1')")
        other.close()
        for gid in ids:  # reads each group into the writer's cache of one: the second evicts the first
            r = client.delete(f"/v1.0/groups/{gid}/members/{uuid.uuid4()}/$ref", headers=auth)
            assert r.status_code == 404, r.text
        gc.collect()
        seen = threading.Event()
        for _ in range(200):
            if path.exists() and '"checkpoint"' in path.read_text():
                seen.set()
                break
            seen.wait(0.05)
    assert stalls.RECORDER is None  # the lifespan closed it
    kinds = {json.loads(line)["kind"] for line in path.read_text().splitlines()}
    assert {"batch", "commit", "checkpoint", "gc", "cache_clear", "evict"} <= kinds, kinds


def test_the_writer_finds_the_last_change_without_reading_the_change_log(tmp_path: Path) -> None:
    """After another connection's commit (``graphdir user create`` next to a server; the bench's restore),
    the writer re-reads the largest change sequence number before its next batch, on the event loop. A
    bare ``max(seq)`` read the whole change log, (tenant, seq)-keyed: 24-64 ms at 200,000-400,000
    changes, growing without bound. Counted in SQLite VM steps, not time."""
    db = tmp_path / "seq.db"
    store = SqliteStore(db)
    store.open()
    store.close()
    conn = sqlite3.connect(db)
    row = "2026-01-01T00:00:00Z", "o", "group", "addMember", None, None, None
    conn.executemany("INSERT INTO changes VALUES (?,?,?,?,?,?,?,?,?)", [("t1", i, *row) for i in range(1, 20_001)])
    conn.executemany("INSERT INTO changes VALUES (?,?,?,?,?,?,?,?,?)", [("t2", 20_005, *row), ("", 7, *row)])
    conn.commit()
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 1)
    found = max_seq(conn)
    conn.set_progress_handler(None, 1)
    conn.close()
    assert found == 20_005
    assert steps < 1_000, f"{steps} VM steps: the change log was read row by row"

    store = SqliteStore(db)
    store.open()
    try:
        other = sqlite3.connect(db)  # another process's change, after the writer connected
        other.execute("INSERT INTO changes VALUES (?,?,?,?,?,?,?,?,?)", ("t2", 30_000, *row))
        other.commit()
        other.close()

        def write(tx: SqliteTxn) -> None:
            tx.record(Change("g", "group", "addMember"))

        async def run() -> None:
            await store.write("t1", write)

        asyncio.run(run())
    finally:
        store.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT max(seq) FROM changes WHERE tenant_id='t1'").fetchone()[0] == 30_001
    finally:
        conn.close()


def test_flushing_the_database_file_keeps_this_processs_locks(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's own
    included. The checkpointer once closed the descriptor it flushed the database file through when
    its store closed: a connection of this process still open (here ``holder``; in the bench, the
    server's) lost its shared lock, and another process closing its connection took itself for the
    last one and deleted the WAL under it (the bench's next write: "database disk image is malformed")."""
    db = tmp_path / "locks.db"
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE t (x)")
        holder.execute("INSERT INTO t VALUES (1)")
        store = SqliteStore(db)
        store.open()
        try:
            with sqlite3.connect(db, isolation_level=None) as conn:
                store._shorten_tail(conn)  # flushes the database file through its own descriptor
            conn.close()
        finally:
            store.close()
        wal = Path(f"{db}-wal")
        assert wal.exists()
        other = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT count(*) FROM t').fetchone(); c.close()"
        subprocess.run([sys.executable, "-c", other, str(db)], check=True, timeout=60)
        assert wal.exists(), "another process deleted the WAL: this process had lost its lock on the database file"
        assert holder.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        holder.close()


def test_the_writers_group_cache_survives_other_connections_unless_they_write_a_group(tmp_path: Path) -> None:
    """The writer caches the group rows it reads. Another connection's commit used to empty that cache
    whatever it wrote (the bench's membership restore: ~30 ms to refill and a young collection in the
    next batch); migration 6's triggers count writes of group rows, so the cache goes only when one
    was written, by anyone, and a group changed behind the writer's back is never served stale."""
    from graphdir.store.base import StoredObject

    db = tmp_path / "cache.db"
    store = SqliteStore(db)
    store.open()
    try:
        group = StoredObject("t", "g1", "group", {"displayName": "Before"}, "2026-01-01T00:00:00Z")

        def insert(tx: SqliteTxn) -> None:
            tx.insert(group)

        def read(tx: SqliteTxn) -> str:
            obj = tx.get("g1")
            assert obj is not None
            return str(obj.props["displayName"])

        cache = store._writer._backend._cache  # type: ignore[attr-defined]

        async def run(fn: Any) -> Any:
            return await store.write("t", fn)

        asyncio.run(run(insert))
        assert asyncio.run(run(read)) == "Before"
        other = sqlite3.connect(db, isolation_level=None)
        try:
            # the writer's own insert moved the counter too: the first other commit empties the cache once
            other.execute("INSERT INTO members VALUES ('t', 'g1', 'u0', 'user')")
            assert asyncio.run(run(read)) == "Before"
            cached = cache[("t", "g1")]
            other.execute("INSERT INTO members VALUES ('t', 'g1', 'u1', 'user')")  # not a group row
            assert asyncio.run(run(read)) == "Before"
            assert cache.get(("t", "g1")) is cached, "a membership written by another connection emptied the group cache"
            props = json.dumps({"displayName": "After"})
            other.execute("UPDATE objects SET display_name='After', props=?, rendered=NULL WHERE tenant_id='t' AND id='g1'", (props,))
            assert asyncio.run(run(read)) == "After", "a group written by another connection was served from the cache"
        finally:
            other.close()
    finally:
        store.close()
