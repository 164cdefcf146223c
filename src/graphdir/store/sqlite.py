"""The embedded SQLite store (stdlib ``sqlite3``), the default backend.

WAL mode; one writer thread with group commit and ``synchronous=FULL`` (a
``2xx`` write is on disk before the response); WAL checkpoints run on a
background thread, off the write path; reads use one connection per thread.
Membership is one row per edge, paginated by keyset (never OFFSET), so a page
costs the same at any depth of a 1,000,000-member group.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from graphdir.private_files import private_dir, private_file, tighten
from graphdir.query import ListQuery
from graphdir.store.base import (
    Change,
    Conflict,
    EdgeWrite,
    InvalidInput,
    InvalidPosition,
    Page,
    Renderer,
    Renderings,
    StoredApp,
    StoredObject,
    StoreError,
    Unavailable,
)
from graphdir.store.migrations import MIGRATIONS
from graphdir.store.sqlfilter import compile_predicate, compile_search
from graphdir.store.writer import Writer

T = TypeVar("T")
log = logging.getLogger("graphdir.store")

#: Start the WAL over once it holds this many frames (1 GiB of 4 KiB pages; PostgreSQL's default
#: ``max_wal_size`` is 1 GB too). Below it the background checkpointer alone keeps the log short
#: whenever writes pause for a moment; only a steady stream of writes reaches it, and the writer then
#: holds its lock for one checkpoint of the last pass's tail: one fsync of the database file, 5-110 ms
#: on this project's virtual disk, so not often.
WAL_RESTART_FRAMES = 262_144
#: Seconds a write waits for another process's write lock before it fails (503).
BUSY_WAIT = 10.0
_BUSY_MS = int(BUSY_WAIT * 1000)
#: Groups the writer keeps decoded (see :meth:`SqliteTxn.peek`).
CACHE_GROUPS = 50_000
#: The WAL file is truncated back to this size when it starts over.
WAL_SIZE_LIMIT = 64 * 1024 * 1024

_COLS = "o.tenant_id, o.id, o.type, o.props, o.created, o.deleted"
_GET_OBJECT = f"SELECT {_COLS} FROM objects o WHERE o.tenant_id=? AND o.id=?"


def _row(r: tuple[Any, ...]) -> StoredObject:
    return StoredObject(r[0], r[1], r[2], orjson.loads(r[3]), r[4], r[5])


def _rendered(r: tuple[Any, ...], render: Renderer) -> tuple[str, bytes]:
    """(type, rendering) of a row read as (id, type, stored bytes or NULL, props or NULL): the stored
    bytes when they were made with the projection asked for, else rendered now from the attributes."""
    if r[2] is not None:
        return r[1], r[2]
    return r[1], render(r[1], r[0], orjson.loads(r[3]))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_INSERT_OBJECT = (
    "INSERT INTO objects (tenant_id, id, type, display_name, upn, mail_nickname, created, deleted, props, rendered, rendered_version) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)


def _columns(obj: StoredObject, renderings: Renderings | None) -> tuple[Any, ...]:
    p = obj.props
    upn = p.get("userPrincipalName")
    if renderings is None:
        rendered, version = None, None
    else:
        version = renderings.stored
        rendered = renderings.render[version](obj.type, obj.id, p)
    return (
        obj.tenant_id,
        obj.id,
        obj.type,
        p.get("displayName") or "",
        upn.lower() if isinstance(upn, str) else None,
        p.get("mailNickname"),
        obj.created,
        obj.deleted,
        orjson.dumps(p).decode(),
        rendered,
        version,
    )


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY: another connection holds the lock ("database is locked")."""
    return (int(getattr(exc, "sqlite_errorcode", 0)) & 0xFF) == sqlite3.SQLITE_BUSY


#: SQLite's primary result codes for a database that cannot be used right now (503, retried):
#: another connection holds a lock, the disk failed or is full, the file cannot be opened.
_UNAVAILABLE = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL}
)


def translate(exc: BaseException) -> BaseException:
    """A storage exception as the :class:`StoreError` that says whose fault it is; others unchanged.

    * a uniqueness rule → :class:`Conflict` (400);
    * a value SQLite cannot hold (a string or blob over its length limit, an integer beyond 64 bits),
      which only a request can bring → :class:`InvalidInput` (400);
    * busy or locked, I/O error, disk full, cannot open, a closed connection → :class:`Unavailable` (503);
    * anything else (a syntax error, misuse, a corrupt file) is a bug → :class:`StoreError` (500).
    """
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, OverflowError):  # raised while binding an int beyond SQLite's 64 bits
        return InvalidInput(str(exc))
    if not isinstance(exc, sqlite3.Error):
        return exc
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(str(exc))
    code = int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if isinstance(exc, sqlite3.DataError) or code == sqlite3.SQLITE_TOOBIG:
        return InvalidInput(str(exc))
    if code in _UNAVAILABLE or (isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc)):
        return Unavailable(str(exc))
    return StoreError(f"{type(exc).__name__}: {exc}")


#: (exists, insert, delete) statements for the two edge tables, keyed (tenant, group, other).
_EDGE_SQL = {
    table: (
        f"SELECT 1 FROM {table} WHERE tenant_id=? AND group_id=? AND {col}=?",
        f"INSERT OR IGNORE INTO {table} VALUES (?,?,?,?)",
        f"DELETE FROM {table} WHERE tenant_id=? AND group_id=? AND {col}=?",
    )
    for table, col in (("members", "member_id"), ("owners", "owner_id"))
}


class SqliteView:
    """A checked write's read-only view of the writer's transaction (see :class:`graphdir.store.base.TxnView`).

    It has no write methods: a check cannot change anything, so there is nothing to undo when it raises."""

    __slots__ = ("_cur", "tenant_id", "_cache")

    def __init__(self, cur: sqlite3.Cursor, tenant_id: str, cache: dict[tuple[str, str], StoredObject]) -> None:
        #: the writer's one cursor for the hot statements (``conn.execute`` makes a cursor per call)
        self._cur = cur
        self.tenant_id = tenant_id
        self._cache = cache

    def peek(self, object_id: str) -> StoredObject | None:
        """The object as the transaction sees it: a read-only view, never to be modified.

        Groups the writer reads are cached until written (every write goes through this writer;
        another process's commit clears the cache, see ``_SqliteBackend.begin``): every membership
        write reads its group. Other objects are read each time: a member is seldom written twice,
        and caching each one would fill the cache, evicting the groups, and give the garbage
        collector tens of thousands of long-lived objects to walk."""
        key = (self.tenant_id, object_id)
        obj = self._cache.get(key)
        if obj is None:
            r = self._cur.execute(_GET_OBJECT, key).fetchone()
            if r is None:
                return None
            obj = _row(r)
            if obj.type == "group":
                if len(self._cache) >= CACHE_GROUPS:
                    del self._cache[next(iter(self._cache))]  # the oldest entry
                self._cache[key] = obj
        return obj

    def get(self, object_id: str) -> StoredObject | None:
        """A copy of the object, free to modify (and, in a write function, to pass to ``update``)."""
        obj = self.peek(object_id)
        if obj is None:
            return None
        return StoredObject(obj.tenant_id, obj.id, obj.type, dict(obj.props), obj.created, obj.deleted)

    def get_by_upn(self, upn: str) -> StoredObject | None:
        r = self._cur.execute(f"SELECT {_COLS} FROM objects o WHERE o.tenant_id=? AND o.upn=?", (self.tenant_id, upn.lower())).fetchone()
        return _row(r) if r else None

    def _has(self, table: str, group_id: str, other_id: str) -> bool:
        return self._cur.execute(_EDGE_SQL[table][0], (self.tenant_id, group_id, other_id)).fetchone() is not None

    def has_member(self, group_id: str, member_id: str) -> bool:
        return self._has("members", group_id, member_id)

    def has_owner(self, group_id: str, owner_id: str) -> bool:
        return self._has("owners", group_id, owner_id)

    def count_owners(self, group_id: str) -> int:
        return int(
            self._cur.execute(
                "SELECT count(*) FROM owners o JOIN objects x ON x.tenant_id=o.tenant_id AND x.id=o.owner_id "
                "WHERE o.tenant_id=? AND o.group_id=? AND x.deleted IS NULL",
                (self.tenant_id, group_id),
            ).fetchone()[0]
        )

    def ancestors(self, group_id: str) -> set[str]:
        rows = self._cur.execute(
            "WITH RECURSIVE up(g) AS (SELECT group_id FROM members WHERE tenant_id=?1 AND member_id=?2 "
            "UNION SELECT m.group_id FROM members m JOIN up ON m.tenant_id=?1 AND m.member_id=up.g) SELECT g FROM up",
            (self.tenant_id, group_id),
        ).fetchall()
        return {r[0] for r in rows}


class SqliteTxn(SqliteView):
    """The writer's view of one write function (see :class:`graphdir.store.base.Txn`): reads and writes."""

    __slots__ = ("conn", "changes", "seq", "render")

    def __init__(
        self, conn: sqlite3.Connection, tenant_id: str, seq: list[int], render: Renderings | None = None,
        cache: dict[tuple[str, str], StoredObject] | None = None, cur: sqlite3.Cursor | None = None,
    ) -> None:
        super().__init__(conn.cursor() if cur is None else cur, tenant_id, {} if cache is None else cache)
        self.conn = conn
        self.changes: list[Change] = []
        self.seq = seq
        self.render = render

    def insert(self, obj: StoredObject) -> None:
        self._cache.pop((self.tenant_id, obj.id), None)
        try:
            self.conn.execute(_INSERT_OBJECT, _columns(obj, self.render))
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from exc

    def update(self, obj: StoredObject) -> None:
        self._cache.pop((self.tenant_id, obj.id), None)
        c = _columns(obj, self.render)
        try:
            self.conn.execute(
                "UPDATE objects SET display_name=?, upn=?, mail_nickname=?, deleted=?, props=?, rendered=?, rendered_version=? "
                "WHERE tenant_id=? AND id=?",
                (c[3], c[4], c[5], c[7], c[8], c[9], c[10], c[0], c[1]),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from exc

    def purge(self, object_id: str) -> None:
        t = self.tenant_id
        self._cache.pop((t, object_id), None)
        self.conn.execute("DELETE FROM members WHERE tenant_id=? AND group_id=?", (t, object_id))
        self.conn.execute("DELETE FROM members WHERE tenant_id=? AND member_id=?", (t, object_id))
        self.conn.execute("DELETE FROM owners WHERE tenant_id=? AND group_id=?", (t, object_id))
        self.conn.execute("DELETE FROM owners WHERE tenant_id=? AND owner_id=?", (t, object_id))
        self.conn.execute("DELETE FROM objects WHERE tenant_id=? AND id=?", (t, object_id))

    def _add(self, table: str, group_id: str, other_id: str, other_type: str) -> bool:
        return self._cur.execute(_EDGE_SQL[table][1], (self.tenant_id, group_id, other_id, other_type)).rowcount == 1

    def _remove(self, table: str, group_id: str, other_id: str) -> bool:
        return self._cur.execute(_EDGE_SQL[table][2], (self.tenant_id, group_id, other_id)).rowcount == 1

    def add_member(self, group_id: str, member_id: str, member_type: str) -> bool:
        return self._add("members", group_id, member_id, member_type)

    def remove_member(self, group_id: str, member_id: str) -> bool:
        return self._remove("members", group_id, member_id)

    def add_owner(self, group_id: str, owner_id: str, owner_type: str) -> bool:
        return self._add("owners", group_id, owner_id, owner_type)

    def remove_owner(self, group_id: str, owner_id: str) -> bool:
        return self._remove("owners", group_id, owner_id)

    def record(self, change: Change) -> None:
        self.changes.append(change)

    # -- identity (issue 3) -----------------------------------------------------
    def put_application(self, app: StoredApp) -> None:
        self.conn.execute(
            "INSERT INTO applications VALUES (?,?,?,?,?) ON CONFLICT(tenant_id, app_id) DO UPDATE SET "
            "display_name=excluded.display_name, props=excluded.props",
            (self.tenant_id, app.app_id, app.display_name, orjson.dumps(app.props).decode(), app.created),
        )

    def delete_application(self, app_id: str) -> bool:
        cur = self.conn.execute("DELETE FROM applications WHERE tenant_id=? AND app_id=?", (self.tenant_id, app_id))
        return cur.rowcount == 1

    def assign_role(self, principal_id: str, role_id: str) -> bool:
        cur = self.conn.execute("INSERT OR IGNORE INTO role_assignments VALUES (?,?,?)", (self.tenant_id, principal_id, role_id))
        return cur.rowcount == 1

    def unassign_role(self, principal_id: str, role_id: str) -> bool:
        cur = self.conn.execute(
            "DELETE FROM role_assignments WHERE tenant_id=? AND principal_id=? AND role_id=?", (self.tenant_id, principal_id, role_id)
        )
        return cur.rowcount == 1

    def put_auth_code(self, code_hash: str, props: dict[str, Any], expires: float) -> None:
        self.conn.execute("DELETE FROM authorization_codes WHERE tenant_id=? AND expires < ?", (self.tenant_id, expires - 86400))
        self.conn.execute(
            "INSERT INTO authorization_codes VALUES (?,?,?,?)", (self.tenant_id, code_hash, orjson.dumps(props).decode(), expires)
        )

    def take_auth_code(self, code_hash: str) -> tuple[dict[str, Any], float] | None:
        """Read and delete a code in one step: a code is redeemable once."""
        r = self.conn.execute(
            "DELETE FROM authorization_codes WHERE tenant_id=? AND code_hash=? RETURNING props, expires", (self.tenant_id, code_hash)
        ).fetchone()
        return (orjson.loads(r[0]), float(r[1])) if r else None

    def change_rows(self, at: str) -> list[tuple[Any, ...]]:
        """This write's change records as ``changes`` rows, numbered from the writer's counter."""
        rows = []
        for ch in self.changes:
            self.seq[0] += 1
            rows.append(
                (self.tenant_id, self.seq[0], at, ch.object_id, ch.object_type, ch.action, ch.related_id, ch.actor,
                 orjson.dumps(ch.detail).decode() if ch.detail else None)
            )
        self.changes.clear()
        return rows


class _SqliteBackend:
    """Transaction verbs for the :class:`Writer` on a dedicated connection."""

    def __init__(self, path: Path, render: Renderings | None = None, mmap_size: int = 0) -> None:
        self.path = path
        self.render = render
        self.mmap_size = mmap_size
        self.conn: sqlite3.Connection | None = None
        self.cur: sqlite3.Cursor | None = None
        self.seq = [0]
        self._data_version = 0
        self._pending: list[tuple[Any, ...]] = []
        self._cache: dict[tuple[str, str], StoredObject] = {}
        self._at = _now()  # the batch's timestamp for its change records

    def connect(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        conn.execute("PRAGMA busy_timeout=0")  # see begin()
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute(f"PRAGMA mmap_size={int(self.mmap_size)}")
        self.seq[0] = int(conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])
        self._data_version = int(conn.execute("PRAGMA data_version").fetchone()[0])
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
            c.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if wait or not _is_busy(exc):
                raise
            return False
        finally:
            if wait:
                c.execute("PRAGMA busy_timeout=0")
        self._at = _now()
        # Another process (``graphdir user create`` next to a running server) may have committed
        # change records since our last batch: ``data_version`` moves only on other connections'
        # commits, so the change counter is re-read only then (one pragma per batch otherwise).
        version = int(c.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self._data_version = version
            self._cache.clear()
            self.seq[0] = max(self.seq[0], int(c.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]))
        return True

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
        _, insert, delete = _EDGE_SQL[m.relation]
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
                self.conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:  # pragma: no cover
                pass
            self.conn.close()
            self.conn = self.cur = None


class SqliteStore:
    """:class:`graphdir.store.base.Store` on one SQLite file."""

    def __init__(
        self, path: str | Path, batch_max: int = 512, checkpoint_interval: float = 0.5, render: Renderings | None = None,
        mmap_size: int = 0,
    ) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._render = render
        self._mmap_size = mmap_size
        self._writer: Writer[SqliteTxn, SqliteView] = Writer(_SqliteBackend(self.path, render, mmap_size), batch_max)
        self._checkpoint_interval = checkpoint_interval
        self.wal_restart_frames = WAL_RESTART_FRAMES
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._opened = False

    # -- lifecycle -----------------------------------------------------------
    def open(self) -> None:
        if self._opened:
            return
        self._private()
        self.migrate()
        self.refresh_renderings()
        self._writer.start()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="graphdir-checkpoint", daemon=True)
        self._checkpointer.start()
        self._opened = True

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=5)
        self._writer.stop()
        self._opened = False

    def _private(self) -> None:
        """The database holds secrets (signing keys, hashed secrets and passwords): its directory, when
        graphdir creates it, is 0700 and the file and its -wal and -shm are 0600 (SQLite gives those
        the database file's mode), whatever the umask; wider existing files are tightened."""
        if str(self.path) == ":memory:":
            return
        private_dir(self.path.parent)
        private_file(self.path)
        for suffix in ("-wal", "-shm"):
            tighten(Path(f"{self.path}{suffix}"))

    def migrate(self) -> int:
        """Create or upgrade the schema; returns the schema version now recorded."""
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            current = int(row[0] or 0)
            for version, _title, sql in MIGRATIONS:
                if version <= current:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in [s for s in sql.split(";") if s.strip()]:
                        conn.execute(stmt)
                    conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                current = version
            return current
        finally:
            conn.close()

    def refresh_renderings(self, chunk: int = 2000) -> int:
        """Re-render the rows whose stored rendering was made with another projection than the current
        one (the projection changed, or the rows predate migration 5); returns how many.

        Once per projection: ``meta.rendered_version`` remembers the key every row was brought to. Rows
        an older graphdir writes afterwards (without a key) are rendered on read until rewritten. Each
        chunk is read and rewritten in one write transaction, so a concurrent writer cannot slip a
        newer version of a row in between."""
        if self._render is None:
            return 0
        key = self._render.stored
        render = self._render.render[key]
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
            row = conn.execute("SELECT value FROM meta WHERE key='rendered_version'").fetchone()
            if row is not None and row[0] == key:
                return 0
            done, last = 0, 0
            while True:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    rows = conn.execute(
                        "SELECT rid, type, id, props FROM objects WHERE rid > ? AND rendered_version IS NOT ? ORDER BY rid LIMIT ?", (last, key, chunk)
                    ).fetchall()
                    conn.executemany(
                        "UPDATE objects SET rendered=?, rendered_version=? WHERE rid=?",
                        [(render(t, i, orjson.loads(p)), key, rid) for rid, t, i, p in rows],
                    )
                    if not rows:
                        conn.execute("INSERT OR REPLACE INTO meta VALUES ('rendered_version', ?)", (key,))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                if not rows:
                    break
                done += len(rows)
                last = rows[-1][0]
            if done:
                log.info("re-rendered %d objects for rendering %s", done, key)
            return done
        finally:
            conn.close()

    def schema_version(self) -> int:
        return int(self._conn().execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)

    def _checkpoint_loop(self) -> None:
        """Copy WAL frames into the database file, off the write path, and keep the WAL bounded.

        A PASSIVE checkpoint never waits for the writer, and when writes pause the next write
        transaction finds the log fully copied and starts it over. Under a steady stream of writes the
        log is never fully copied at the moment a write transaction begins, so it would grow without
        bound (~10 KB per removal) and every page read would search a longer WAL index: once it holds
        ``WAL_RESTART_FRAMES``, the writer is asked to copy the frames this pass left (those written
        while it ran) right after its next COMMIT, holding the write lock; the log is then fully
        copied, the next write transaction starts it over, and ``journal_size_limit`` truncates it.
        """
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=1000")
        try:
            while not self._stop.wait(self._checkpoint_interval):
                try:
                    _busy, log, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # pragma: no cover - busy; try again next tick
                    continue
                if log >= self.wal_restart_frames:
                    self._writer.request_checkpoint()
        finally:
            conn.close()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
            conn.execute("PRAGMA query_only=1")
            conn.execute(f"PRAGMA mmap_size={int(self._mmap_size)}")
            self._local.conn = conn
        return conn

    def _q(self, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, tuple(params)).fetchall()
        except (sqlite3.Error, OverflowError) as exc:
            raise translate(exc) from exc

    # -- writes ---------------------------------------------------------------
    def write(self, tenant_id: str, fn: Callable[[SqliteTxn], T]) -> Awaitable[T]:
        return self._writer.submit(tenant_id, fn)

    def write_one(self, tenant_id: str, check: Callable[[SqliteView], EdgeWrite]) -> Awaitable[None]:
        return self._writer.submit_checked(tenant_id, check)

    def write_sync(self, tenant_id: str, fn: Callable[[SqliteTxn], T]) -> T:
        return self._writer.submit_sync(tenant_id, fn)  # type: ignore[no-any-return]

    # -- tenants and meta -----------------------------------------------------
    def get_tenant(self, tenant_id: str) -> dict[str, Any] | None:
        rows = self._q("SELECT id, display_name, domain, props, created FROM tenants WHERE id=?", (tenant_id,))
        return self._tenant(rows[0]) if rows else None

    def list_tenants(self) -> list[dict[str, Any]]:
        return [self._tenant(r) for r in self._q("SELECT id, display_name, domain, props, created FROM tenants ORDER BY created, id", ())]

    @staticmethod
    def _tenant(r: tuple[Any, ...]) -> dict[str, Any]:
        return {"id": r[0], "displayName": r[1], "domain": r[2], "props": orjson.loads(r[3]), "created": r[4]}

    def put_tenant(self, tenant: dict[str, Any]) -> None:
        def fn(tx: SqliteTxn) -> None:
            tx.conn.execute(
                "INSERT INTO tenants VALUES (?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET display_name=excluded.display_name, "
                "domain=excluded.domain, props=excluded.props",
                (tenant["id"], tenant["displayName"], tenant["domain"], orjson.dumps(tenant.get("props", {})).decode(),
                 tenant.get("created") or _now()),
            )

        self.write_sync(tenant["id"], fn)

    def get_meta(self, key: str) -> str | None:
        rows = self._q("SELECT value FROM meta WHERE key=?", (key,))
        return str(rows[0][0]) if rows else None

    def put_meta(self, key: str, value: str) -> None:
        self.write_sync("", lambda tx: tx.conn.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value)))

    # -- objects --------------------------------------------------------------
    def get(self, tenant_id: str, object_id: str) -> StoredObject | None:
        rows = self._q(f"SELECT {_COLS} FROM objects o WHERE o.tenant_id=? AND o.id=?", (tenant_id, object_id))
        return _row(rows[0]) if rows else None

    def get_by_upn(self, tenant_id: str, upn: str) -> StoredObject | None:
        rows = self._q(f"SELECT {_COLS} FROM objects o WHERE o.tenant_id=? AND o.upn=?", (tenant_id, upn.lower()))
        return _row(rows[0]) if rows else None

    def get_many(self, tenant_id: str, ids: Iterable[str]) -> list[StoredObject]:
        ids = list(ids)
        out: list[StoredObject] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out += [_row(r) for r in self._q(f"SELECT {_COLS} FROM objects o WHERE o.tenant_id=? AND o.id IN ({marks})", [tenant_id, *chunk])]
        return out

    def list_objects(self, tenant_id: str, types: tuple[str, ...], q: ListQuery) -> Page:
        marks = ",".join("?" * len(types))
        return self._page(
            f"FROM objects o WHERE o.tenant_id=? AND o.type IN ({marks}) AND o.deleted IS NULL",
            [tenant_id, *types],
            "o.id",
            q,
        )

    # -- relationships -----------------------------------------------------------
    def _edge_page(self, table: str, near: str, far: str, tenant_id: str, anchor: str, q: ListQuery) -> Page:
        frm = (
            f"FROM {table} m JOIN objects o ON o.tenant_id=m.tenant_id AND o.id=m.{far} "
            f"WHERE m.tenant_id=? AND m.{near}=? AND o.deleted IS NULL"
        )
        return self._page(frm, [tenant_id, anchor], f"m.{far}", q)

    def list_members(self, tenant_id: str, group_id: str, q: ListQuery) -> Page:
        return self._edge_page("members", "group_id", "member_id", tenant_id, group_id, q)

    def list_owners(self, tenant_id: str, group_id: str, q: ListQuery) -> Page:
        return self._edge_page("owners", "group_id", "owner_id", tenant_id, group_id, q)

    def list_member_of(self, tenant_id: str, object_id: str, q: ListQuery) -> Page:
        return self._edge_page("members", "member_id", "group_id", tenant_id, object_id, q)

    def is_member(self, tenant_id: str, group_id: str, member_id: str) -> bool:
        return bool(self._q("SELECT 1 FROM members WHERE tenant_id=? AND group_id=? AND member_id=?", (tenant_id, group_id, member_id)))

    def is_owner(self, tenant_id: str, group_id: str, owner_id: str) -> bool:
        return bool(self._q("SELECT 1 FROM owners WHERE tenant_id=? AND group_id=? AND owner_id=?", (tenant_id, group_id, owner_id)))

    def _page(self, frm: str, params: list[Any], id_col: str, q: ListQuery) -> Page:
        """Keyset pagination: ``WHERE (key) > (last key) ORDER BY key LIMIT top+1`` — never OFFSET."""
        where = ""
        args = list(params)
        if q.types:
            where += f" AND o.type IN ({','.join('?' * len(q.types))})"
            args += list(q.types)
        if q.where is not None:
            sql, p = compile_predicate(q.where)
            where += f" AND ({sql})"
            args += p
        if q.search is not None:
            sql, p = compile_search(q.search)
            where += f" AND ({sql})"
            args += p
        count = None
        if q.count:
            count = int(self._q(f"SELECT count(*) {frm}{where}", args)[0][0])
        if q.order_by == "displayName":
            keys = ["o.display_name", id_col]
        else:
            keys = [id_col]
        cmp = "<" if q.descending else ">"
        direction = " DESC" if q.descending else ""
        page_where = where
        page_args = list(args)
        if q.after:
            if len(q.after) != len(keys):  # a forged or foreign $skiptoken: the client's fault
                raise InvalidPosition(f"a position of {len(q.after)} values for an order of {len(keys)} keys")
            page_where += f" AND ({', '.join(keys)}) {cmp} ({', '.join('?' * len(keys))})"
            page_args += list(q.after)
        order = ", ".join(k + direction for k in keys)
        key_sel = ", ".join(keys)
        render = self._render.render.get(q.rendered) if q.rendered is not None and self._render is not None else None
        if render is not None:
            # the stored bytes when they were made with the projection asked for, else the attributes
            cols = (
                "o.id, o.type, CASE WHEN o.rendered_version=? THEN o.rendered END, "
                "CASE WHEN o.rendered_version IS ? AND o.rendered IS NOT NULL THEN NULL ELSE o.props END"
            )
            page_args = [q.rendered, q.rendered, *page_args]
            width = 4
        else:
            cols, width = _COLS, 6
        rows = self._q(f"SELECT {cols}, {key_sel} {frm}{page_where} ORDER BY {order} LIMIT ?", [*page_args, q.top + 1])
        more = len(rows) > q.top
        rows = rows[: q.top]
        nxt = tuple(str(v) for v in rows[-1][width:]) if more and rows else None
        if render is not None:
            return Page([], nxt, count, rendered=[_rendered(r, render) for r in rows])
        return Page([_row(r) for r in rows], nxt, count)

    # -- bulk -------------------------------------------------------------------
    def bulk_load(self, tenant_id: str, objects: Iterable[StoredObject], members: Iterable[tuple[str, str, str]]) -> None:
        """Insert many objects and (group, member, member_type) edges in large transactions."""

        def chunks(it: Iterable[Any], n: int = 50_000) -> Iterable[list[Any]]:
            buf: list[Any] = []
            for x in it:
                buf.append(x)
                if len(buf) >= n:
                    yield buf
                    buf = []
            if buf:
                yield buf

        def insert(sql: str, rows: list[Any]) -> None:
            def fn(tx: SqliteTxn) -> None:
                tx.conn.executemany(sql, rows)

            self.write_sync(tenant_id, fn)

        for chunk in chunks(_columns(o, self._render) for o in objects):
            insert(_INSERT_OBJECT, chunk)
        for chunk in chunks((tenant_id, g, m, t) for g, m, t in members):
            insert("INSERT OR IGNORE INTO members VALUES (?,?,?,?)", chunk)

    # -- identity (issue 3) ---------------------------------------------------------
    def get_application(self, tenant_id: str, app_id: str) -> StoredApp | None:
        rows = self._q("SELECT tenant_id, app_id, display_name, props, created FROM applications WHERE tenant_id=? AND app_id=?", (tenant_id, app_id))
        return StoredApp(rows[0][0], rows[0][1], rows[0][2], orjson.loads(rows[0][3]), rows[0][4]) if rows else None

    def list_applications(self, tenant_id: str) -> list[StoredApp]:
        rows = self._q("SELECT tenant_id, app_id, display_name, props, created FROM applications WHERE tenant_id=? ORDER BY created, app_id", (tenant_id,))
        return [StoredApp(r[0], r[1], r[2], orjson.loads(r[3]), r[4]) for r in rows]

    def role_ids(self, tenant_id: str, principal_id: str) -> list[str]:
        rows = self._q("SELECT role_id FROM role_assignments WHERE tenant_id=? AND principal_id=? ORDER BY role_id", (tenant_id, principal_id))
        return [str(r[0]) for r in rows]

    def list_role_assignments(self, tenant_id: str) -> list[tuple[str, str]]:
        rows = self._q("SELECT principal_id, role_id FROM role_assignments WHERE tenant_id=? ORDER BY principal_id, role_id", (tenant_id,))
        return [(str(r[0]), str(r[1])) for r in rows]

