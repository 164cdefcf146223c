"""Transaction verbs for the :class:`~graphdir.store.writer.Writer` on the SQLite writer's own connection."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from graphdir import stalls
from graphdir.store.base import EdgeWrite, Renderings, StoredObject, Unavailable
from graphdir.store.sqlite_txn import EDGE_SQL, SqliteTxn, SqliteView, is_busy, now, translate

#: Seconds a write waits for another process's write lock before it fails (503).
BUSY_WAIT = 10.0
BUSY_MS = int(BUSY_WAIT * 1000)
#: ``journal_size_limit`` of the writer's connection: -1, the WAL file is never truncated while the
#: store is open (see ``connect``).
WAL_SIZE_LIMIT = -1


#: The largest change sequence number of any tenant. ``changes`` is keyed by (tenant, seq), so a bare
#: ``max(seq)`` reads the whole change log (24-64 ms on the event loop at 200,000-400,000 changes,
#: growing without bound, after every commit by another connection: bench/README.md#tail-latency);
#: this skips from tenant to tenant and asks each for its largest, two B-tree descents per tenant.
MAX_SEQ_SQL = """
WITH RECURSIVE t(id) AS (
    SELECT (SELECT min(tenant_id) FROM changes)
    UNION ALL
    SELECT (SELECT min(tenant_id) FROM changes WHERE tenant_id > t.id) FROM t WHERE t.id IS NOT NULL
)
SELECT coalesce(max((SELECT max(seq) FROM changes WHERE tenant_id = t.id)), 0) FROM t WHERE t.id IS NOT NULL
"""


def groups_version(conn: sqlite3.Connection) -> str | None:
    """The count of group-row writes kept by migration 6's triggers (None before that migration)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'groups_version'").fetchone()
    return None if row is None else str(row[0])


def max_seq(conn: sqlite3.Connection) -> int:
    """The largest change sequence number in the database (0 when there is none)."""
    return int(conn.execute(MAX_SEQ_SQL).fetchone()[0])


class SqliteBackend:
    """Transaction verbs for the :class:`Writer` on a dedicated connection."""

    #: SQLite statements take microseconds: a batch runs on the loop when the connection is free
    on_loop = True

    def __init__(self, path: Path, render: Renderings | None = None, mmap_size: int = 0) -> None:
        self.path = path
        self.render = render
        self.mmap_size = mmap_size
        self.conn: sqlite3.Connection | None = None
        self.cur: sqlite3.Cursor | None = None
        self.seq = [0]
        self._data_version = 0
        self._groups_version: str | None = None
        self._pending: list[tuple[Any, ...]] = []
        self._cache: dict[tuple[str, str], StoredObject] = {}
        self._at = now()  # the batch's timestamp for its change records

    def connect(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        # The WAL file keeps its size when the log starts over. A limit would have SQLite truncate the
        # file inside the COMMIT that starts the log over: the truncation of hundreds of MB and the
        # metadata it gives that commit's fsync cost 100-250 ms, with every write waiting
        # (bench/README.md#tail-latency). The file is at most the restart threshold plus a tail
        # (sqlite.WAL_RESTART_FRAMES) and is truncated when the store closes.
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        conn.execute("PRAGMA busy_timeout=0")  # see begin()
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute(f"PRAGMA mmap_size={int(self.mmap_size)}")
        self.seq[0] = max_seq(conn)
        self._data_version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        self._groups_version = groups_version(conn)
        self.conn = conn
        self.cur = conn.cursor()

    def _c(self) -> sqlite3.Connection:
        assert self.conn is not None
        return self.conn

    def begin(self, wait: bool = True) -> bool:
        """``BEGIN IMMEDIATE``. The connection has no busy timeout (the event loop must never sleep in
        SQLite's busy handler): when another process holds the write lock, give up at once (``wait``
        false) or let SQLite's busy handler retry for up to ``BUSY_WAIT`` seconds."""
        c = self._c()
        if wait:
            c.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if wait or not is_busy(exc):
                raise
            return False
        finally:
            if wait:
                c.execute("PRAGMA busy_timeout=0")
        self._at = now()
        # Another process (``graphdir user create`` next to a running server) may have committed
        # change records since our last batch: ``data_version`` moves only on other connections'
        # commits, so the change counter is re-read only then (one pragma per batch otherwise).
        version = int(c.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self._data_version = version
            # the cached group rows go only if a group row was written since (migration 6's triggers
            # count every writer's, this one's included, so a move may be ours: emptying is then merely early)
            groups = groups_version(c)
            if groups != self._groups_version:
                self._groups_version = groups
                if stalls.RECORDER is not None:
                    stalls.RECORDER.count("cache_clear", size=len(self._cache), why="another connection wrote a group")
                self._cache.clear()
            self.seq[0] = max(self.seq[0], max_seq(c))
        return True

    def prefetch(self, checks: list[tuple[str, Any]]) -> None:
        """Nothing to do: a read costs microseconds, and the writer's group cache holds the groups."""

    def settle(self) -> list[bool]:
        """Nothing is ever queued: :meth:`apply` answers at once."""
        return []

    def replayable(self) -> bool:
        return False

    def restart_unpipelined(self) -> None:  # pragma: no cover - never asked: nothing is queued
        raise NotImplementedError

    def lock_tenants(self, tenants: list[str]) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` took the database's one write lock."""

    def savepoint(self) -> None:
        self._c().execute("SAVEPOINT w")

    def release(self) -> None:
        self._c().execute("RELEASE w")

    def rollback_to(self) -> None:
        self._cache.clear()  # reads inside the undone savepoint may have cached its changes
        c = self._c()
        c.execute("ROLLBACK TO w")
        c.execute("RELEASE w")

    def end_batch(self) -> None:
        """Write the batch's change records, one statement for the batch (on the executing thread)."""
        if self._pending:
            self._c().executemany("INSERT INTO changes VALUES (?,?,?,?,?,?,?,?,?)", self._pending)
            self._pending = []

    def commit(self) -> None:
        """COMMIT: one fsync of the WAL (``synchronous=FULL``) for the whole batch."""
        c = self._c()
        if not c.in_transaction:
            raise Unavailable("the transaction was rolled back by the database")
        c.execute("COMMIT")

    def in_transaction(self) -> bool:
        return self._c().in_transaction

    def checkpoint(self) -> None:
        """Copy what is left of the WAL into the database, between two write transactions
        (a failure is the writer's to log: the next request retries)."""
        self._c().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def rollback(self) -> None:
        self._pending = []
        self._cache.clear()
        if self._c().in_transaction:
            self._c().execute("ROLLBACK")

    def make_txn(self, tenant_id: str) -> SqliteTxn:
        assert self.conn is not None and self.cur is not None
        return SqliteTxn(self.conn, tenant_id, self.seq, self.render, self._cache, self.cur)

    def finish_txn(self, txn: SqliteTxn) -> None:
        """A write function succeeded: keep its change records for this batch's commit."""
        if txn.changes:
            self._pending += txn.change_rows(self._at)

    def make_view(self, tenant_id: str) -> SqliteView:
        assert self.cur is not None
        return SqliteView(self.cur, tenant_id, self._cache)

    def apply(self, tenant_id: str, m: EdgeWrite) -> bool:
        """A checked write's one statement; its change row is built first (all the Python that can fail)
        and kept only when the statement changed the edge."""
        assert self.cur is not None
        ch = m.change
        detail = orjson.dumps(ch.detail).decode() if ch is not None and ch.detail else None
        _, insert, delete = EDGE_SQL[m.relation]
        if m.op == "add":
            changed = self.cur.execute(insert, (tenant_id, m.group_id, m.other_id, m.other_type)).rowcount == 1
        else:
            changed = self.cur.execute(delete, (tenant_id, m.group_id, m.other_id)).rowcount == 1
        if changed and ch is not None:
            self.seq[0] += 1
            self._pending.append(
                (tenant_id, self.seq[0], self._at, ch.object_id, ch.object_type, ch.action, ch.related_id, ch.actor, detail)
            )
        return changed

    @staticmethod
    def translate(exc: BaseException) -> BaseException:
        return translate(exc)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:  # pragma: no cover
                pass
            self.conn.close()
            self.conn = self.cur = None
