"""The embedded SQLite store (stdlib ``sqlite3``), the default backend.

WAL mode; one writer thread with group commit and ``synchronous=FULL`` (a
``2xx`` write is on disk before the response); WAL checkpoints run on a
background thread, off the write path; reads use one connection per thread.
Membership is one row per edge, paginated by keyset (never OFFSET), so a page
costs the same at any depth of a 1,000,000-member group.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from graphdir import stalls
from graphdir.private_files import private_dir, private_file, tighten
from graphdir.query import ListQuery
from graphdir.store.base import (
    CHANGE_COLS,
    EDGE_COLUMNS,
    Conflict,
    EdgeRelation,
    EdgeWrite,
    InvalidPosition,
    Page,
    RecordedChange,
    Renderer,
    Renderings,
    StoredApp,
    StoredObject,
    recorded_change,
    run_now,
)
from graphdir.store.migrations import MIGRATIONS
from graphdir.store.sqlfilter import compile_predicate, compile_search
from graphdir.store.sqlite_backend import BUSY_MS, BUSY_WAIT, SqliteBackend
from graphdir.store.sqlite_txn import (
    APP_COLS,
    CACHE_GROUPS,
    COLS,
    INSERT_OBJECT,
    TENANT_COLS,
    SqliteTxn,
    SqliteView,
    app_row,
    now,
    object_columns,
    pack_page,
    page_columns,
    row_object,
    tenant_row,
    translate,
)
from graphdir.store.transitive import FEW_DELETED, first_member_ids, merge_arms, reached_deleted
from graphdir.store.writer import Writer

__all__ = ["BUSY_WAIT", "CACHE_GROUPS", "Conflict", "SqliteStore", "SqliteTxn", "SqliteView", "translate"]

T = TypeVar("T")
log = logging.getLogger("graphdir.store")

#: Start the WAL over once it holds this many frames (1 GiB of 4 KiB pages; PostgreSQL's default
#: ``max_wal_size`` is 1 GB too). Below it the background checkpointer alone keeps the log short
#: whenever writes pause for a moment; only a steady stream of writes reaches it, and the writer then
#: holds its lock for one checkpoint of a short tail (see ``_checkpoint_loop``): ~30 ms measured, once
#: per GiB of log (every ~15 s at 7,000 removals/s).
WAL_RESTART_FRAMES = 262_144


#: Flush-and-copy passes the checkpointer makes before the writer copies the WAL's tail.
TAIL_PASSES = 2


#: One descriptor per database file (by device and inode), opened on first use and never closed while
#: the process lives: closing *any* descriptor of a file drops every POSIX lock the process holds on
#: it, SQLite's own included, and another process could then take the database for unused and
#: checkpoint or reset its WAL under this one's feet ("database disk image is malformed"; see
#: https://www.sqlite.org/howtocorrupt.html, "POSIX advisory locks canceled by a separate thread
#: doing close()"). The inode stays open with its descriptor, so its number is never reused.
_FLUSH_FDS: dict[tuple[int, int], int] = {}
_FLUSH_LOCK = threading.Lock()

#: A rendered page's columns (:func:`~graphdir.store.sqlite_txn.page_columns`): the stored bytes when
#: they were made with the projection asked for, else the attributes.
_RENDERED_COLS = (
    "o.id, o.type, CASE WHEN o.rendered_version=? THEN o.rendered END, "
    "CASE WHEN o.rendered_version IS ? AND o.rendered IS NOT NULL THEN NULL ELSE o.props END"
)

#: The live groups that hold an object, directly or through live nested groups (a ``WITH`` clause
#: defining ``up(g)``; parameters: tenant, object, tenant). UNION, not UNION ALL: a group reached
#: twice is walked once, and a cycle (which the writes refuse) would still end. ``CROSS JOIN`` fixes
#: SQLite's join order (https://www.sqlite.org/optoverview.html#manual_control_of_query_plans_using_cross_join):
#: left to itself the planner scans the tenant's every edge once per step, the recursive table inside.
_UP = (
    "WITH RECURSIVE up(g) AS ("
    "SELECT m.group_id FROM members m JOIN objects x ON x.tenant_id=m.tenant_id AND x.id=m.group_id "
    "WHERE m.tenant_id=? AND m.member_id=? AND x.deleted IS NULL "
    "UNION SELECT m.group_id FROM up CROSS JOIN members m ON m.tenant_id=? AND m.member_id=up.g "
    "CROSS JOIN objects x ON x.tenant_id=m.tenant_id AND x.id=m.group_id WHERE x.deleted IS NULL)"
)
#: A group and the live groups nested in it at any depth (``down(g)``; parameters: group, tenant),
#: over the partial index ``members_nested`` (group-typed edges only). Checking each group's row
#: costs more than the walk: :data:`_DOWN_ALL` and :data:`_UP_ALL` walk without it, and the checked
#: walks run only when one of the tenant's soft-deleted groups (:data:`_DELETED_GROUPS`) was reached.
_DOWN = (
    "WITH RECURSIVE down(g) AS (SELECT ? "
    "UNION SELECT m.member_id FROM down CROSS JOIN members m INDEXED BY members_nested ON m.tenant_id=? AND m.group_id=down.g AND m.member_type='group' "
    "CROSS JOIN objects x ON x.tenant_id=m.tenant_id AND x.id=m.member_id WHERE x.deleted IS NULL)"
)
_DOWN_ALL = (
    "WITH RECURSIVE down(g) AS (SELECT ? "
    "UNION SELECT m.member_id FROM down CROSS JOIN members m INDEXED BY members_nested ON m.tenant_id=? AND m.group_id=down.g "
    "AND m.member_type='group')"
)
_UP_ALL = (
    "WITH RECURSIVE up(g) AS (SELECT group_id FROM members WHERE tenant_id=? AND member_id=? "
    "UNION SELECT m.group_id FROM up CROSS JOIN members m ON m.tenant_id=? AND m.member_id=up.g)"
)
#: The tenant's soft-deleted groups, at most :data:`FEW_DELETED` + 1 of them, from the partial index
#: of the soft-deleted objects (usually none: a deleted group stays restorable for 30 days).
_DELETED_GROUPS = "SELECT id FROM objects INDEXED BY objects_deleted WHERE tenant_id=? AND type='group' AND deleted IS NOT NULL LIMIT ?"


def flush_file(path: Path) -> None:
    """``fdatasync`` the database file (``fsync`` where there is none), through a descriptor that is never
    closed (see ``_FLUSH_FDS``); a failure only leaves more for SQLite's own sync."""
    try:
        st = os.stat(path)
        key = (st.st_dev, st.st_ino)
        with _FLUSH_LOCK:
            fd = _FLUSH_FDS.get(key)
            if fd is None:
                fd = _FLUSH_FDS[key] = os.open(path, os.O_RDONLY)  # fdatasync needs no write access
        getattr(os, "fdatasync", os.fsync)(fd)
    except OSError as exc:  # pragma: no cover - e.g. a file system that refuses it
        log.debug("flushing the database file failed: %s", exc)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def statements(script: str) -> list[str]:
    """The statements of a migration script, whole (a trigger's body holds semicolons of its own)."""
    out: list[str] = []
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf)
            buf = ""
    if buf.strip(" \n;"):
        out.append(buf)
    return out


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
        self._writer: Writer[SqliteTxn, SqliteView] = Writer(SqliteBackend(self.path, render, mmap_size), batch_max)
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
                    for stmt in statements(sql):
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
            conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
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
        copied and the next write transaction starts it over (the file keeps its size: see
        ``SqliteBackend.connect``).

        That copy must be short, as every write waits for it (bench/README.md#tail-latency). A PASSIVE
        checkpoint that does not catch up with the log writes pages into the database file but never
        syncs it: only the checkpoint that copies the last frame does, and it then flushes every page
        copied since the last such one (up to 1 GiB of log's worth: 120-180 ms measured on this
        project's disk, with the writer waiting). So before asking, this thread flushes the database
        file itself and copies the frames written meanwhile, twice (:meth:`_shorten_tail`): the writer
        is left a few milliseconds of frames and of pages to sync.
        """
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=1000")
        last = 0
        try:
            while not self._stop.wait(self._checkpoint_interval):
                start = time.perf_counter()
                try:
                    _busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:  # pragma: no cover - busy; try again next tick
                    continue
                rec = stalls.RECORDER
                if rec is not None:
                    rec.event("checkpoint", start, log=log, done=done, wal=_size(f"{self.path}-wal"))
                    if 0 <= log < last:
                        rec.count("wal_restart", before=last, log=log)
                last = max(log, 0)
                if log >= self.wal_restart_frames:
                    self._shorten_tail(conn)
                    self._writer.request_checkpoint()
        finally:
            conn.close()

    def _shorten_tail(self, conn: sqlite3.Connection) -> None:
        """Before the writer copies the WAL's tail under its lock: sync the pages copied so far and copy
        the frames written meanwhile, twice, here, where no write waits."""
        start = time.perf_counter()
        for _ in range(TAIL_PASSES):
            flush_file(self.path)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:  # pragma: no cover - busy: the writer copies a longer tail
                break
        rec = stalls.RECORDER
        if rec is not None:
            rec.event("tail_prepare", start)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            conn.execute("PRAGMA query_only=1")
            conn.execute(f"PRAGMA mmap_size={int(self._mmap_size)}")
            self._local.conn = conn
        return conn

    def _q(self, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, tuple(params)).fetchall()
        except (sqlite3.Error, OverflowError) as exc:
            raise translate(exc) from exc

    async def open_reads(self) -> None:
        """Nothing to do: reads use a connection per thread, opened on first use."""

    async def close_reads(self) -> None:
        """Nothing to do (see :meth:`open_reads`)."""

    def sync(self, aw: Awaitable[T]) -> T:
        """A read from code without an event loop: SQLite's reads never suspend, so it runs here, now."""
        return run_now(aw)

    # -- writes ---------------------------------------------------------------
    def write(self, tenant_id: str, fn: Callable[[SqliteTxn], T]) -> Awaitable[T]:
        return self._writer.submit(tenant_id, fn)

    def write_one(self, tenant_id: str, check: Callable[[SqliteView], EdgeWrite]) -> Awaitable[None]:
        return self._writer.submit_checked(tenant_id, check)

    def write_sync(self, tenant_id: str, fn: Callable[[SqliteTxn], T]) -> T:
        return self._writer.submit_sync(tenant_id, fn)  # type: ignore[no-any-return]

    # -- tenants and meta -----------------------------------------------------
    async def get_tenant(self, tenant_id: str) -> dict[str, Any] | None:
        rows = self._q(f"SELECT {TENANT_COLS} FROM tenants WHERE id=?", (tenant_id,))
        return tenant_row(rows[0]) if rows else None

    async def list_tenants(self) -> list[dict[str, Any]]:
        return [tenant_row(r) for r in self._q(f"SELECT {TENANT_COLS} FROM tenants ORDER BY created, id", ())]


    def put_tenant(self, tenant: dict[str, Any]) -> None:
        def fn(tx: SqliteTxn) -> None:
            tx.conn.execute(
                "INSERT INTO tenants VALUES (?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET display_name=excluded.display_name, "
                "domain=excluded.domain, props=excluded.props",
                (tenant["id"], tenant["displayName"], tenant["domain"], orjson.dumps(tenant.get("props", {})).decode(),
                 tenant.get("created") or now()),
            )

        self.write_sync(tenant["id"], fn)

    async def get_meta(self, key: str) -> str | None:
        rows = self._q("SELECT value FROM meta WHERE key=?", (key,))
        return str(rows[0][0]) if rows else None

    def put_meta(self, key: str, value: str) -> None:
        self.write_sync("", lambda tx: tx.conn.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value)))

    # -- objects --------------------------------------------------------------
    async def get(self, tenant_id: str, object_id: str) -> StoredObject | None:
        rows = self._q(f"SELECT {COLS} FROM objects o WHERE o.tenant_id=? AND o.id=?", (tenant_id, object_id))
        return row_object(rows[0]) if rows else None

    async def get_by_upn(self, tenant_id: str, upn: str) -> StoredObject | None:
        rows = self._q(f"SELECT {COLS} FROM objects o WHERE o.tenant_id=? AND o.upn=?", (tenant_id, upn.lower()))
        return row_object(rows[0]) if rows else None

    async def get_many(self, tenant_id: str, ids: Iterable[str]) -> list[StoredObject]:
        ids = list(ids)
        out: list[StoredObject] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out += [row_object(r) for r in self._q(f"SELECT {COLS} FROM objects o WHERE o.tenant_id=? AND o.id IN ({marks})", [tenant_id, *chunk])]
        return out

    async def list_objects(self, tenant_id: str, types: tuple[str, ...], q: ListQuery) -> Page:
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

    async def list_members(self, tenant_id: str, group_id: str, q: ListQuery) -> Page:
        return self._edge_page("members", "group_id", "member_id", tenant_id, group_id, q)

    async def list_owners(self, tenant_id: str, group_id: str, q: ListQuery) -> Page:
        return self._edge_page("owners", "group_id", "owner_id", tenant_id, group_id, q)

    async def list_member_of(self, tenant_id: str, object_id: str, q: ListQuery) -> Page:
        return self._edge_page("members", "member_id", "group_id", tenant_id, object_id, q)

    async def list_edges_many(self, tenant_id: str, relation: EdgeRelation, anchor_ids: Sequence[str], per_anchor_limit: int) -> dict[str, list[StoredObject]]:
        """One statement per 500 anchors: for each anchor (a ``json_each`` row), an index lookup of
        the objects its correlated ``LIMIT`` subquery names, so a huge group costs its first few rows."""
        table, near, far = EDGE_COLUMNS[relation]
        out: dict[str, list[StoredObject]] = {}
        anchors = list(dict.fromkeys(anchor_ids))
        for i in range(0, len(anchors), 500):
            rows = self._q(
                f"SELECT a.value, {COLS} FROM json_each(?) a JOIN objects o ON o.tenant_id=? AND o.id IN ("
                f"SELECT m.{far} FROM {table} m JOIN objects r ON r.tenant_id=m.tenant_id AND r.id=m.{far} "
                f"WHERE m.tenant_id=? AND m.{near}=a.value AND r.deleted IS NULL ORDER BY m.{far} LIMIT ?) "
                "ORDER BY a.value, o.id",
                (orjson.dumps(anchors[i : i + 500]).decode(), tenant_id, tenant_id, per_anchor_limit),
            )
            for r in rows:
                out.setdefault(r[0], []).append(row_object(r[1:]))
        return out

    async def is_member(self, tenant_id: str, group_id: str, member_id: str) -> bool:
        return bool(self._q("SELECT 1 FROM members WHERE tenant_id=? AND group_id=? AND member_id=?", (tenant_id, group_id, member_id)))

    async def is_owner(self, tenant_id: str, group_id: str, owner_id: str) -> bool:
        return bool(self._q("SELECT 1 FROM owners WHERE tenant_id=? AND group_id=? AND owner_id=?", (tenant_id, group_id, owner_id)))

    def _page(self, frm: str, params: list[Any], id_col: str, q: ListQuery) -> Page:
        """Keyset pagination: ``WHERE (key) > (last key) ORDER BY key LIMIT top+1`` — never OFFSET."""
        where, args = self._clauses(q)
        count = int(self._q(f"SELECT count(*) {frm}{where}", [*params, *args])[0][0]) if q.count else None
        rows, width, render = self._arm(frm, [*params, *args], where, id_col, q)
        return pack_page(rows, width, render, count, q.top)

    @staticmethod
    def _clauses(q: ListQuery) -> tuple[str, list[Any]]:
        """The query's cast, ``$filter`` and ``$search`` as ``AND …`` clauses over ``o`` and their parameters."""
        where = ""
        args: list[Any] = []
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
        return where, args

    def _arm(self, frm: str, args: list[Any], where: str, id_col: str, q: ListQuery) -> tuple[list[tuple[Any, ...]], int, Renderer | None]:
        """At most ``top + 1`` rows of ``frm`` past the query's position, in its order, each ending with
        its keys (from column ``width`` on); ``args`` are ``frm``'s parameters, then ``where``'s."""
        keys = ["o.display_name", id_col] if q.order_by == "displayName" else [id_col]
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
        cols, col_args, width, render = page_columns(self._render, q, _RENDERED_COLS)
        rows = self._q(f"SELECT {cols}, {key_sel} {frm}{page_where} ORDER BY {order} LIMIT ?", [*col_args, *page_args, q.top + 1])
        return rows, width, render

    # -- transitive relationships (graphdir.store.transitive) ----------------------
    async def transitive_group_ids(self, tenant_id: str, object_id: str) -> set[str]:
        found = {r[0] for r in self._q(f"{_UP_ALL} SELECT g FROM up", (tenant_id, object_id, tenant_id))}
        if found and self._reached_deleted(tenant_id, found):
            return {r[0] for r in self._q(f"{_UP} SELECT g FROM up", (tenant_id, object_id, tenant_id))}
        return found

    def _reached_deleted(self, tenant_id: str, reached: Iterable[str]) -> bool:
        """Might an unchecked walk have reached one of the tenant's soft-deleted groups?"""
        return reached_deleted({r[0] for r in self._q(_DELETED_GROUPS, (tenant_id, FEW_DELETED + 1))}, reached)

    async def list_transitive_member_of(self, tenant_id: str, object_id: str, q: ListQuery) -> Page:
        frm = f"FROM ({_UP} SELECT g FROM up) a CROSS JOIN objects o ON o.tenant_id=? AND o.id=a.g WHERE o.deleted IS NULL"
        return self._page(frm, [tenant_id, object_id, tenant_id, tenant_id], "o.id", q)

    async def list_transitive_members(self, tenant_id: str, group_id: str, q: ListQuery) -> Page:
        groups = [r[0] for r in self._q(f"{_DOWN_ALL} SELECT g FROM down", (group_id, tenant_id))]
        if len(groups) > 1 and self._reached_deleted(tenant_id, groups[1:]):
            groups = [r[0] for r in self._q(f"{_DOWN} SELECT g FROM down", (group_id, tenant_id))]
        if len(groups) <= 1:  # no nested group: the direct members, paged as they are
            return self._edge_page("members", "group_id", "member_id", tenant_id, group_id, q)
        where, args = self._clauses(q)
        count = None
        if q.count:
            frm = (
                "FROM (SELECT DISTINCT member_id FROM members WHERE tenant_id=? AND group_id IN (SELECT value FROM json_each(?))) t "
                "CROSS JOIN objects o ON o.tenant_id=? AND o.id=t.member_id WHERE o.deleted IS NULL"
            )
            count = int(self._q(f"SELECT count(*) {frm}{where}", [tenant_id, orjson.dumps(groups).decode(), tenant_id, *args])[0][0])
        if q.where is None and q.search is None and q.order_by is None:
            page = self._id_arms(tenant_id, groups, q, count)
            if page is not None:
                return page
        frm = "FROM members m JOIN objects o ON o.tenant_id=m.tenant_id AND o.id=m.member_id WHERE m.tenant_id=? AND m.group_id=? AND o.deleted IS NULL"
        arms = []
        width, render = 6, None
        for g in groups:
            rows, width, render = self._arm(frm, [tenant_id, g, *args], where, "m.member_id", q)
            arms.append(rows)
        return pack_page(merge_arms(arms, width, q.top, q.order_by == "displayName", q.descending), width, render, count, q.top)

    def _id_arms(self, tenant_id: str, groups: list[str], q: ListQuery, count: int | None) -> Page | None:
        """A page in id order with no filter: :func:`first_member_ids` reads member ids alone from the
        edges' key (a cast compares the edge's member type), then the page's objects are read in one
        statement. None when one of them turned out soft-deleted: the joined arms, which skip those,
        answer instead."""
        if q.after and len(q.after) != 1:
            raise InvalidPosition(f"a position of {len(q.after)} values for an order of 1 key")
        typed = f" AND member_type IN ({','.join('?' * len(q.types))})" if q.types else ""
        direction = " DESC" if q.descending else ""

        async def fetch(asks: list[tuple[str, str | None, int]]) -> list[list[str]]:
            bound = f" AND member_id {'<' if q.descending else '>'} json_extract(a.value, '$[1]')" if asks[0][1] is not None else ""
            rows = self._q(
                "SELECT (SELECT json_group_array(member_id) FROM (SELECT member_id FROM members "
                f"WHERE tenant_id=? AND group_id=json_extract(a.value, '$[0]'){typed}{bound} "
                f"ORDER BY member_id{direction} LIMIT ?)) FROM json_each(?) a ORDER BY a.key",
                [tenant_id, *(q.types or ()), asks[0][2], orjson.dumps(asks).decode()],
            )
            return [orjson.loads(r[0]) for r in rows]

        page_ids = run_now(first_member_ids(fetch, groups, q.after[0] if q.after else None, q.top, q.descending))
        cols, col_args, width, render = page_columns(self._render, q, _RENDERED_COLS)
        rows = self._q(
            f"SELECT {cols}, o.id FROM json_each(?) a CROSS JOIN objects o ON o.tenant_id=? AND o.id=a.value "
            "WHERE o.deleted IS NULL ORDER BY a.key",
            [*col_args, orjson.dumps(page_ids).decode(), tenant_id],
        )
        return pack_page(rows, width, render, count, q.top) if len(rows) == len(page_ids) else None

    # -- change records -----------------------------------------------------------
    async def list_changes(self, tenant_id: str, after: int = 0, limit: int = 1000) -> list[RecordedChange]:
        rows = self._q(f"SELECT {CHANGE_COLS} FROM changes WHERE tenant_id=? AND seq>? ORDER BY seq LIMIT ?", (tenant_id, after, limit))
        return [recorded_change(r) for r in rows]

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

        for chunk in chunks(object_columns(o, self._render) for o in objects):
            insert(INSERT_OBJECT, chunk)
        for chunk in chunks((tenant_id, g, m, t) for g, m, t in members):
            insert("INSERT OR IGNORE INTO members VALUES (?,?,?,?)", chunk)

    # -- identity (issue 3) ---------------------------------------------------------
    async def get_application(self, tenant_id: str, app_id: str) -> StoredApp | None:
        rows = self._q(f"SELECT {APP_COLS} FROM applications WHERE tenant_id=? AND app_id=?", (tenant_id, app_id))
        return app_row(rows[0]) if rows else None

    async def list_applications(self, tenant_id: str) -> list[StoredApp]:
        rows = self._q(f"SELECT {APP_COLS} FROM applications WHERE tenant_id=? ORDER BY created, app_id", (tenant_id,))
        return [app_row(r) for r in rows]

    async def role_ids(self, tenant_id: str, principal_id: str) -> list[str]:
        rows = self._q("SELECT role_id FROM role_assignments WHERE tenant_id=? AND principal_id=? ORDER BY role_id", (tenant_id, principal_id))
        return [str(r[0]) for r in rows]

    async def list_role_assignments(self, tenant_id: str) -> list[tuple[str, str]]:
        rows = self._q("SELECT principal_id, role_id FROM role_assignments WHERE tenant_id=? ORDER BY principal_id, role_id", (tenant_id,))
        return [(str(r[0]), str(r[1])) for r in rows]

