"""The PostgreSQL store: :class:`graphdir.store.base.Store` on a PostgreSQL database (psycopg 3).

Writes go through the same group-commit :class:`~graphdir.store.writer.Writer` as SQLite's, on one
synchronous connection whose batches run on the committer thread (``PostgresBackend.on_loop`` is
false). Reads are ``async`` and use an :class:`psycopg_pool.AsyncConnectionPool` per event loop
(granian runs one loop per worker thread), in autocommit: each read sees the latest commit.
Listings are keyset-paginated exactly like SQLite's (same :class:`Page`, same positions).

Ordering and case folding are SQLite's: text is ``COLLATE "C"`` (bytewise) and ``lower()`` of it
folds ASCII letters only, as NOCASE does. Where PostgreSQL cannot behave exactly like SQLite:

* **NUL characters**: text and jsonb cannot hold one; a write or a query value with one is
  :class:`~graphdir.store.base.InvalidInput` (400) where SQLite stores or compares it.
* **Indexed values too large for an index entry** (an id, a userPrincipalName, a displayName over
  ~2,700 bytes once compressed: B-tree entries are limited to a third of a page) are InvalidInput;
  SQLite takes up to its 1 GB length limit.
* **Datetime filters** cast the stored value: one that is no datetime makes the query InvalidInput,
  where SQLite's ``julianday()`` makes the clause false. A JSON *string* "true" in a boolean
  property compares equal to ``true`` (SQLite: unequal).
* **Concurrency**: SQLite has one writer per database; here several workers' transactions run
  side by side under READ COMMITTED. Rules backed by a unique index or a foreign key hold
  (:class:`Conflict`, :class:`Gone`), but a check a write function makes in Python (the last owner,
  a nesting cycle) can race with another worker's write; deadlocks and lost connections are
  :class:`Unavailable`. A COMMIT whose connection was lost may have committed.
* **Change numbers** are gap-free per tenant from 1 (SQLite's come from one counter for all tenants).
* **Edges need their objects** (foreign keys): ``bulk_load`` of an edge to a missing object fails,
  where SQLite stores it. Global ``meta`` rows live under the tenant id ``''``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from graphdir.query import ListQuery
from graphdir.store.base import (
    CHANGE_COLS,
    EDGE_COLUMNS,
    EdgeRelation,
    EdgeWrite,
    InvalidPosition,
    Page,
    RecordedChange,
    Renderer,
    Renderings,
    StoredApp,
    StoredObject,
    StoreError,
    Unavailable,
    recorded_change,
)
from graphdir.store.pg_migrations import MIGRATIONS, SCHEMA_VERSION_TABLE
from graphdir.store.postgres_backend import PostgresBackend, connect
from graphdir.store.postgres_txn import COLS, INSERT_OBJECT, PgTxn, PgView, translate
from graphdir.store.sqlfilter import compile_predicate, compile_search
from graphdir.store.sqlite_txn import APP_COLS, TENANT_COLS, app_row, now, object_columns, pack_page, page_columns, row_object, tenant_row
from graphdir.store.transitive import FEW_DELETED, first_member_ids, reached_deleted
from graphdir.store.writer import Writer, on_event_loop

T = TypeVar("T")
log = logging.getLogger("graphdir.store.postgres")

#: ``pg_advisory_lock`` key serialising schema migrations between processes ("graphdir" in ASCII).
MIGRATION_LOCK = 0x6772617068646972
_DIALECT = "postgresql"
#: A rendered page's columns (:func:`~graphdir.store.sqlite_txn.page_columns`), as SQLite's.
_RENDERED_COLS = (
    "o.id, o.type, CASE WHEN o.rendered_version=%s::text THEN o.rendered END, "
    "CASE WHEN o.rendered_version IS NOT DISTINCT FROM %s::text AND o.rendered IS NOT NULL THEN NULL ELSE o.props END"
)

#: The live groups that hold an object, directly or through live nested groups (``up(g)``;
#: parameters: tenant, object, tenant), as SQLite's (graphdir.store.transitive).
_UP = (
    "WITH RECURSIVE up(g) AS ("
    "SELECT m.group_id FROM members m JOIN objects x ON x.tenant_id=m.tenant_id AND x.id=m.group_id "
    "WHERE m.tenant_id=%s AND m.member_id=%s AND x.deleted IS NULL "
    "UNION SELECT m.group_id FROM up JOIN members m ON m.tenant_id=%s AND m.member_id=up.g "
    "JOIN objects x ON x.tenant_id=m.tenant_id AND x.id=m.group_id WHERE x.deleted IS NULL)"
)
#: A group and the live groups nested in it at any depth (``down(g)``; parameters: group, tenant),
#: over the partial index ``members_nested``.
_DOWN = (
    "WITH RECURSIVE down(g) AS (SELECT %s::text COLLATE \"C\" "
    "UNION SELECT m.member_id FROM down JOIN members m ON m.tenant_id=%s AND m.group_id=down.g AND m.member_type='group' "
    "JOIN objects x ON x.tenant_id=m.tenant_id AND x.id=m.member_id WHERE x.deleted IS NULL)"
)
#: The walk down without checking each group's row, and the tenant's soft-deleted groups that make it
#: enough when none was reached (as SQLite's).
_DOWN_ALL = (
    "WITH RECURSIVE down(g) AS (SELECT %s::text COLLATE \"C\" "
    "UNION SELECT m.member_id FROM down JOIN members m ON m.tenant_id=%s AND m.group_id=down.g AND m.member_type='group')"
)
_DELETED_GROUPS = "SELECT id FROM objects WHERE tenant_id=%s AND type='group' AND deleted IS NOT NULL LIMIT %s"




async def _await(aw: Awaitable[T]) -> T:
    return await aw


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")  # datetimes without an offset are UTC, as SQLite's julianday() reads them


def _call(callback: Callable[[], None]) -> None:
    """A listener's callback: a failure is logged, never the end of the listener."""
    try:
        callback()
    except Exception as exc:  # noqa: BLE001 - e.g. the database went away for a moment
        log.warning("a notification's callback failed: %s", exc)


class PostgresStore:
    """:class:`graphdir.store.base.Store` on PostgreSQL."""

    def __init__(
        self, url: str, batch_max: int = 512, render: Renderings | None = None, pool_min: int = 1, pool_max: int = 8,
        pool_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._render = render
        self._writer: Writer[PgTxn, PgView] = Writer(PostgresBackend(url, render), batch_max)
        self._pool_args = {"min_size": pool_min, "max_size": pool_max, "timeout": pool_timeout}
        self._pools: dict[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool[Any]]] = {}
        self._pools_lock = threading.Lock()
        self._sync_loop: asyncio.AbstractEventLoop | None = None
        self._sync_thread: threading.Thread | None = None
        self._listeners: list[threading.Thread] = []
        self._channels: set[str] = set()
        self._stop_listening = threading.Event()
        self._opened = False

    # -- notifications (LISTEN/NOTIFY) -----------------------------------------------
    def listen(self, channel: str, callback: Callable[[], None], interval: float) -> None:
        """Call ``callback`` on a thread of its own whenever ``channel`` is notified, once when listening
        starts (and after each reconnection: notifications sent meanwhile were lost) and every
        ``interval`` seconds in between, until the store closes. The thread keeps one connection."""
        self._stop_listening.clear()

        def run() -> None:
            while not self._stop_listening.is_set():
                try:
                    with psycopg.connect(self.url, autocommit=True) as conn:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                        _call(callback)
                        last = time.monotonic()
                        while not self._stop_listening.is_set():
                            notified = any(True for _ in conn.notifies(timeout=interval, stop_after=1))
                            if self._stop_listening.is_set():
                                break  # close() woke it (see close())
                            if notified or time.monotonic() - last >= interval:
                                _call(callback)
                                last = time.monotonic()
                except psycopg.Error as exc:
                    log.warning("listening for %s failed (%s): trying again in %s s", channel, exc, interval)
                    self._stop_listening.wait(interval)

        self._channels.add(channel)
        thread = threading.Thread(target=run, name=f"graphdir-listen-{channel}", daemon=True)
        thread.start()
        self._listeners.append(thread)

    def notify(self, channel: str) -> None:
        """``NOTIFY channel`` (after the change it announces was committed)."""
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(sql.SQL("NOTIFY {}").format(sql.Identifier(channel)))
        except psycopg.Error as exc:
            raise translate(exc) from exc

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> None:
        if self._opened:
            return
        self.migrate()
        try:
            self.refresh_renderings()
            self._writer.start()
        except psycopg.Error as exc:
            raise translate(exc) from exc
        self._opened = True

    def close(self) -> None:
        """Commit what is queued, close the writer's connection, the listeners and every read pool (any thread)."""
        self._stop_listening.set()
        for channel in self._channels:
            try:
                self.notify(channel)  # wakes its listener at once, which then sees the stop
            except StoreError as exc:  # the database is gone: the listener's wait ends on its own
                log.debug("could not wake the %s listener: %s", channel, exc)
        for listener in self._listeners:
            listener.join(timeout=5)
        self._listeners, self._channels = [], set()
        self._writer.stop()
        with self._pools_lock:
            pools, self._pools = self._pools, {}
        for pool_loop, task in pools.items():
            self._close_pool(pool_loop, task)
        sync_loop, thread = self._sync_loop, self._sync_thread
        self._sync_loop = self._sync_thread = None
        if sync_loop is not None and thread is not None:
            sync_loop.call_soon_threadsafe(sync_loop.stop)
            thread.join(timeout=5)
            sync_loop.close()
        self._opened = False

    @staticmethod
    def _close_pool(loop: asyncio.AbstractEventLoop, task: asyncio.Task[AsyncConnectionPool[Any]]) -> None:
        async def close() -> None:
            try:
                pool = await task
            except BaseException:  # noqa: BLE001 - never opened: nothing to close
                return
            await pool.close()

        if loop.is_closed():
            return  # its connections went with it
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(close())  # closed once this turn of the loop ends
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        else:
            loop.run_until_complete(close())

    async def open_reads(self) -> None:
        """Give the calling event loop a read pool of its own (a server's loop, at start-up): its reads
        then run on it directly. Reads awaited on any other loop run on the store's private loop (one
        hop between threads): a pool is bound to the loop that made it, and one on a loop the store does
        not see end (a short ``asyncio.run``) would be cancelled half-open at that loop's shutdown."""
        loop = asyncio.get_running_loop()
        with self._pools_lock:
            if loop not in self._pools:
                self._pools[loop] = loop.create_task(self._open_pool())
        await self._pool()

    async def close_reads(self) -> None:
        """Close the calling event loop's read pool (:meth:`open_reads`), before that loop ends."""
        loop = asyncio.get_running_loop()
        with self._pools_lock:
            task = self._pools.pop(loop, None)
        if task is not None:
            await (await task).close()


    def _private_loop(self) -> asyncio.AbstractEventLoop:
        """The store's own event loop, on a daemon thread: :meth:`sync` and reads awaited on loops
        without a pool of their own run there."""
        with self._pools_lock:
            loop = self._sync_loop
            if loop is None:
                loop = self._sync_loop = asyncio.new_event_loop()
                self._sync_thread = threading.Thread(target=loop.run_forever, name="graphdir-pg-sync", daemon=True)
                self._sync_thread.start()
            return loop

    def migrate(self) -> int:
        """Create or upgrade the schema; returns the schema version now recorded. Processes starting
        together migrate one after the other (an advisory lock); each migration is one transaction."""
        try:
            with connect(self.url) as conn:
                conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
                try:
                    conn.execute(SCHEMA_VERSION_TABLE)
                    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
                    current = int(row[0]) if row else 0
                    for version, _title, sql in MIGRATIONS:
                        if version <= current:
                            continue
                        with conn.transaction():
                            conn.execute(sql.encode())
                            conn.execute("INSERT INTO schema_version (tenant_id, version) VALUES ('', %s)", (version,))
                        current = version
                    return current
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        except psycopg.Error as exc:
            raise translate(exc) from exc

    def refresh_renderings(self, chunk: int = 2000) -> int:
        """Re-render the rows whose stored rendering was made with another projection than the current
        one; returns how many (see ``SqliteStore.refresh_renderings``). Each chunk is read ``FOR UPDATE``
        and rewritten in one transaction, so a concurrent writer cannot slip a newer row in between."""
        if self._render is None:
            return 0
        key = self._render.stored
        render = self._render.render[key]
        with connect(self.url) as conn:
            row = conn.execute("SELECT value FROM meta WHERE tenant_id='' AND key='rendered_version'").fetchone()
            if row is not None and row[0] == key:
                return 0
            done, last = 0, ("", "")
            while True:
                with conn.transaction():
                    rows = conn.execute(
                        "SELECT tenant_id, id, type, props FROM objects WHERE (tenant_id, id) > (%s, %s) "
                        "AND rendered_version IS DISTINCT FROM %s ORDER BY tenant_id, id LIMIT %s FOR UPDATE",
                        (*last, key, chunk),
                    ).fetchall()
                    with conn.cursor() as cur:
                        cur.executemany(
                            "UPDATE objects SET rendered=%s, rendered_version=%s WHERE tenant_id=%s AND id=%s",
                            [(render(t, i, orjson.loads(p)), key, tid, i) for tid, i, t, p in rows],
                        )
                    if not rows:
                        conn.execute(
                            "INSERT INTO meta (tenant_id, key, value) VALUES ('', 'rendered_version', %s) "
                            "ON CONFLICT (tenant_id, key) DO UPDATE SET value=excluded.value",
                            (key,),
                        )
                if not rows:
                    break
                done += len(rows)
                last = (rows[-1][0], rows[-1][1])
            if done:
                log.info("re-rendered %d objects for rendering %s", done, key)
            return done

    def schema_version(self) -> int:
        try:
            with connect(self.url) as conn:
                row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
                return int(row[0]) if row else 0
        except psycopg.Error as exc:
            raise translate(exc) from exc

    # -- reads: one pool per event loop ------------------------------------------------------
    async def _pool(self) -> AsyncConnectionPool[Any]:
        loop = asyncio.get_running_loop()
        task = self._pools.get(loop)
        if task is None:
            with self._pools_lock:
                task = self._pools.get(loop)
                if task is None:
                    task = self._pools[loop] = loop.create_task(self._open_pool())
        try:
            return await asyncio.shield(task)
        except BaseException:
            if task.done() and not task.cancelled() and task.exception() is not None:
                with self._pools_lock:
                    if self._pools.get(loop) is task:
                        del self._pools[loop]  # the next read tries again
            raise

    async def _open_pool(self) -> AsyncConnectionPool[Any]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.url, kwargs={"autocommit": True}, configure=_configure, open=False, name="graphdir-reads",
            min_size=int(self._pool_args["min_size"]), max_size=int(self._pool_args["max_size"]),
            timeout=float(self._pool_args["timeout"]),
        )
        await pool.open()
        return pool

    async def _q(self, sql: str, params: Iterable[Any], custom: bool = False) -> list[tuple[Any, ...]]:
        """One read on a pooled connection; ``custom``: never prepared, so planned for its values each
        time (a listing over a recursive walk or over per-group arms: the generic plan PostgreSQL
        switches a prepared statement to after five executions ran a transitiveMemberOf page ~10x
        slower, 7 ms against 0.6 ms measured). A connection found lost (the server restarted, an
        administrator ended it while idle in the pool) is dropped, the pool's idle connections are
        checked, and the read tried once more: reads change nothing, so a retry is safe."""
        args = tuple(params)
        if any(isinstance(a, str) and "\x00" in a for a in args):
            return []  # no stored string holds a NUL (object_columns refuses it): nothing matches, as on SQLite
        loop = asyncio.get_running_loop()
        if loop is not self._sync_loop and loop not in self._pools:  # a loop without a pool: hop
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._q(sql, args, custom), self._private_loop()))
        try:
            pool = await self._pool()
            for attempt in range(2):
                async with pool.connection() as conn:
                    try:
                        cur = await conn.execute(sql, args, prepare=False if custom else None)
                        rows: list[tuple[Any, ...]] = await cur.fetchall()
                        return rows
                    except psycopg.OperationalError:
                        if attempt or not conn.broken:
                            raise
                # the broken connection went back to the pool, which discarded it; the others idle
                # there were probably lost with it: check them all before the second try
                await pool.check()
            raise AssertionError("unreachable")  # pragma: no cover
        except psycopg.Error as exc:
            raise translate(exc) from exc

    def sync(self, aw: Awaitable[T]) -> T:
        """Run an awaitable of this store (a read) from code without an event loop (CLI, start-up,
        worker threads), on the store's private event loop; refused on an event loop's thread."""
        if on_event_loop():
            if asyncio.iscoroutine(aw):
                aw.close()  # never to run
            raise RuntimeError("a blocking read on an event loop's thread would stall every request: use `await`")
        return asyncio.run_coroutine_threadsafe(_await(aw), self._private_loop()).result()

    # -- writes --------------------------------------------------------------------------
    def write(self, tenant_id: str, fn: Callable[[PgTxn], T]) -> Awaitable[T]:
        return self._writer.submit(tenant_id, fn)

    def write_one(self, tenant_id: str, check: Callable[[PgView], EdgeWrite]) -> Awaitable[None]:
        return self._writer.submit_checked(tenant_id, check)

    def write_sync(self, tenant_id: str, fn: Callable[[PgTxn], T]) -> T:
        return self._writer.submit_sync(tenant_id, fn)  # type: ignore[no-any-return]

    # -- tenants and meta ------------------------------------------------------------------
    async def get_tenant(self, tenant_id: str) -> dict[str, Any] | None:
        rows = await self._q(f"SELECT {TENANT_COLS} FROM tenants WHERE id=%s", (tenant_id,))
        return tenant_row(rows[0]) if rows else None

    async def list_tenants(self) -> list[dict[str, Any]]:
        return [tenant_row(r) for r in await self._q(f"SELECT {TENANT_COLS} FROM tenants ORDER BY created, id", ())]


    def put_tenant(self, tenant: dict[str, Any]) -> None:
        def fn(tx: PgTxn) -> None:
            tx.cur.execute(
                f"INSERT INTO tenants ({TENANT_COLS}) VALUES (%s,%s,%s,%s,%s) ON CONFLICT (id) DO UPDATE SET "
                "display_name=excluded.display_name, domain=excluded.domain, props=excluded.props",
                (tenant["id"], tenant["displayName"], tenant["domain"], orjson.dumps(tenant.get("props", {})).decode(),
                 tenant.get("created") or now()),
            )

        self.write_sync(tenant["id"], fn)

    async def get_meta(self, key: str) -> str | None:
        rows = await self._q("SELECT value FROM meta WHERE tenant_id='' AND key=%s", (key,))
        return str(rows[0][0]) if rows else None

    def put_meta(self, key: str, value: str) -> None:
        """Global settings (the tenant id ``''``)."""

        def fn(tx: PgTxn) -> None:
            tx.cur.execute(
                "INSERT INTO meta (tenant_id, key, value) VALUES ('', %s, %s) ON CONFLICT (tenant_id, key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

        self.write_sync("", fn)

    # -- objects -------------------------------------------------------------------------------
    async def get(self, tenant_id: str, object_id: str) -> StoredObject | None:
        rows = await self._q(f"SELECT {COLS} FROM objects o WHERE o.tenant_id=%s AND o.id=%s", (tenant_id, object_id))
        return row_object(rows[0]) if rows else None

    async def get_by_upn(self, tenant_id: str, upn: str) -> StoredObject | None:
        rows = await self._q(f"SELECT {COLS} FROM objects o WHERE o.tenant_id=%s AND o.upn=%s", (tenant_id, upn.lower()))
        return row_object(rows[0]) if rows else None

    async def get_many(self, tenant_id: str, ids: Iterable[str]) -> list[StoredObject]:
        ids = list(ids)
        out: list[StoredObject] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            sql = f"SELECT {COLS} FROM objects o WHERE o.tenant_id=%s AND o.id = ANY(%s) ORDER BY o.id"
            out += [row_object(r) for r in await self._q(sql, (tenant_id, chunk))]
        return out

    async def list_objects(self, tenant_id: str, types: tuple[str, ...], q: ListQuery) -> Page:
        return await self._page("FROM objects o WHERE o.tenant_id=%s AND o.type = ANY(%s) AND o.deleted IS NULL", [tenant_id, list(types)], "o.id", q)

    # -- relationships ---------------------------------------------------------------------------
    async def _edge_page(self, table: str, near: str, far: str, tenant_id: str, anchor: str, q: ListQuery) -> Page:
        frm = (
            f"FROM {table} m JOIN objects o ON o.tenant_id=m.tenant_id AND o.id=m.{far} "
            f"WHERE m.tenant_id=%s AND m.{near}=%s AND o.deleted IS NULL"
        )
        return await self._page(frm, [tenant_id, anchor], f"m.{far}", q)

    async def list_members(self, tenant_id: str, group_id: str, q: ListQuery) -> Page:
        return await self._edge_page("members", "group_id", "member_id", tenant_id, group_id, q)

    async def list_owners(self, tenant_id: str, group_id: str, q: ListQuery) -> Page:
        return await self._edge_page("owners", "group_id", "owner_id", tenant_id, group_id, q)

    async def list_member_of(self, tenant_id: str, object_id: str, q: ListQuery) -> Page:
        return await self._edge_page("members", "member_id", "group_id", tenant_id, object_id, q)

    async def list_edges_many(self, tenant_id: str, relation: EdgeRelation, anchor_ids: Sequence[str], per_anchor_limit: int) -> dict[str, list[StoredObject]]:
        """One statement per 500 anchors: a ``LATERAL`` subquery with a ``LIMIT`` per anchor walks the
        relation's primary key, so a huge group costs its first few rows."""
        table, near, far = EDGE_COLUMNS[relation]
        out: dict[str, list[StoredObject]] = {}
        anchors = list(dict.fromkeys(anchor_ids))
        for i in range(0, len(anchors), 500):
            rows = await self._q(
                f"SELECT a.id, {COLS.replace('o.', 'x.')} FROM unnest(%s::text[]) AS a(id) CROSS JOIN LATERAL ("
                f"SELECT {COLS} FROM {table} m JOIN objects o ON o.tenant_id=m.tenant_id AND o.id=m.{far} "
                f"WHERE m.tenant_id=%s AND m.{near}=a.id AND o.deleted IS NULL ORDER BY m.{far} LIMIT %s) x "
                "ORDER BY a.id, x.id",
                (anchors[i : i + 500], tenant_id, per_anchor_limit),
            )
            for r in rows:
                out.setdefault(r[0], []).append(row_object(r[1:]))
        return out

    async def is_member(self, tenant_id: str, group_id: str, member_id: str) -> bool:
        sql = "SELECT 1 FROM members WHERE tenant_id=%s AND group_id=%s AND member_id=%s"
        return bool(await self._q(sql, (tenant_id, group_id, member_id)))

    async def is_owner(self, tenant_id: str, group_id: str, owner_id: str) -> bool:
        return bool(await self._q("SELECT 1 FROM owners WHERE tenant_id=%s AND group_id=%s AND owner_id=%s", (tenant_id, group_id, owner_id)))

    async def _page(self, frm: str, params: list[Any], id_col: str, q: ListQuery, custom: bool = False) -> Page:
        """Keyset pagination: ``WHERE (key) > (last key) ORDER BY key LIMIT top+1`` — never OFFSET.

        Ordered by displayName, the key is SQLite's NOCASE order: ``lower()`` of the "C" text (ASCII
        letters folded, every other byte compared as is), then the id; the position handed back holds
        the display name as stored, as SQLite's does."""
        where, args = self._clauses(q)
        count = int((await self._q(f"SELECT count(*) {frm}{where}", [*params, *args], custom))[0][0]) if q.count else None
        sel, page_args, width, render = self._arm(frm, [*params, *args], where, id_col, q)
        rows = await self._q(sel, [*page_args, q.top + 1], custom)
        return pack_page(rows, width, render, count, q.top)

    @staticmethod
    def _clauses(q: ListQuery) -> tuple[str, list[Any]]:
        """The query's cast, ``$filter`` and ``$search`` as ``AND …`` clauses over ``o`` and their parameters."""
        where = ""
        args: list[Any] = []
        if q.types:
            where += " AND o.type = ANY(%s)"
            args.append(list(q.types))
        if q.where is not None:
            sql, p = compile_predicate(q.where, _DIALECT)
            where += f" AND ({sql})"
            args += p
        if q.search is not None:
            sql, p = compile_search(q.search, _DIALECT)
            where += f" AND ({sql})"
            args += p
        return where, args

    def _arm(self, frm: str, args: list[Any], where: str, id_col: str, q: ListQuery) -> tuple[str, list[Any], int, Renderer | None]:
        """The statement selecting the rows of ``frm`` past the query's position, in its order, each
        ending with its keys (from column ``width`` on), its parameters, and ``LIMIT %s`` left to bind."""
        keyed, key_args = self._keyed(frm, args, where, id_col, q)
        cols, col_args, width, render = page_columns(self._render, q, _RENDERED_COLS)
        return f"SELECT {cols}, {keyed}", [*col_args, *key_args], width, render

    @staticmethod
    def _keyed(frm: str, args: list[Any], where: str, id_col: str, q: ListQuery) -> tuple[str, list[Any]]:
        """``<keys> FROM … past the position ORDER BY … LIMIT %s`` (keys named ``k1``[, ``k2``]) and its
        parameters: what follows the columns of a page's ``SELECT``."""
        if q.order_by == "displayName":
            keys, sel, marks = ["lower(o.display_name)", id_col], f"o.display_name AS k1, {id_col} AS k2", ['lower((%s)::text COLLATE "C")', "%s"]
        else:
            keys, sel, marks = [id_col], f"{id_col} AS k1", ["%s"]
        cmp = "<" if q.descending else ">"
        direction = " DESC" if q.descending else ""
        page_where = where
        page_args = list(args)
        if q.after:
            if len(q.after) != len(keys):  # a forged or foreign $skiptoken: the client's fault
                raise InvalidPosition(f"a position of {len(q.after)} values for an order of {len(keys)} keys")
            page_where += f" AND ({', '.join(keys)}) {cmp} ({', '.join(marks)})"
            page_args += list(q.after)
        order = ", ".join(k + direction for k in keys)
        return f"{sel} {frm}{page_where} ORDER BY {order} LIMIT %s", page_args

    # -- transitive relationships (graphdir.store.transitive) -------------------------------------
    async def transitive_group_ids(self, tenant_id: str, object_id: str) -> set[str]:
        # one round trip: the server checks each group's row as it walks (a round trip costs more
        # than those lookups; SQLite's store walks without them, graphdir.store.sqlite)
        return {r[0] for r in await self._q(f"{_UP} SELECT g FROM up", (tenant_id, object_id, tenant_id))}

    async def _reached_deleted(self, tenant_id: str, reached: Iterable[str]) -> bool:
        """Might an unchecked walk have reached one of the tenant's soft-deleted groups?"""
        return reached_deleted({r[0] for r in await self._q(_DELETED_GROUPS, (tenant_id, FEW_DELETED + 1))}, reached)

    async def list_transitive_member_of(self, tenant_id: str, object_id: str, q: ListQuery) -> Page:
        frm = f"FROM ({_UP} SELECT g FROM up) a JOIN objects o ON o.tenant_id=%s AND o.id=a.g WHERE o.deleted IS NULL"
        return await self._page(frm, [tenant_id, object_id, tenant_id, tenant_id], "o.id", q, custom=True)

    async def list_transitive_members(self, tenant_id: str, group_id: str, q: ListQuery) -> Page:
        """One statement merges every arm: ``CROSS JOIN LATERAL`` runs the page's keyset query once per
        nested group (an index range of at most ``top + 1`` keys each), ``GROUP BY`` drops the members
        reached twice, and only the page's ``top + 1`` keys leave the server; a second statement reads
        their objects. Without a filter, a search or an order by name the arms read the edges alone
        (the objects' soft deletion is checked on the page; the joined arms answer when it hid one)."""
        groups = [r[0] for r in await self._q(f"{_DOWN_ALL} SELECT g FROM down", (group_id, tenant_id))]
        if len(groups) > 1 and await self._reached_deleted(tenant_id, groups[1:]):
            groups = [r[0] for r in await self._q(f"{_DOWN} SELECT g FROM down", (group_id, tenant_id))]
        if len(groups) <= 1:  # no nested group: the direct members, paged as they are
            return await self._edge_page("members", "group_id", "member_id", tenant_id, group_id, q)
        where, args = self._clauses(q)
        count = None
        if q.count:
            frm = (
                "FROM (SELECT DISTINCT member_id FROM members WHERE tenant_id=%s AND group_id = ANY(%s)) t "
                "JOIN objects o ON o.tenant_id=%s AND o.id=t.member_id WHERE o.deleted IS NULL"
            )
            count = int((await self._q(f"SELECT count(*) {frm}{where}", [tenant_id, groups, tenant_id, *args], custom=True))[0][0])
        if q.where is None and q.search is None and q.order_by is None:
            page = await self._id_arms(tenant_id, groups, q, count)
            if page is not None:
                return page
        frm = "FROM members m JOIN objects o ON o.tenant_id=m.tenant_id AND o.id=m.member_id WHERE m.tenant_id=%s AND m.group_id=d.g AND o.deleted IS NULL"
        return await self._merged(tenant_id, groups, frm, [tenant_id], where, args, q, count)

    async def _id_arms(self, tenant_id: str, groups: list[str], q: ListQuery, count: int | None) -> Page | None:
        """A page in id order with no filter, as SQLite's: :func:`first_member_ids` reads member ids
        alone from the edges (one statement a round, every arm a ``LATERAL`` index range), then one
        statement reads the page's objects. None when one of them is soft-deleted."""
        if q.after and len(q.after) != 1:
            raise InvalidPosition(f"a position of {len(q.after)} values for an order of 1 key")
        typed, typed_args = (" AND m.member_type = ANY(%s)", [list(q.types)]) if q.types else ("", [])
        direction = " DESC" if q.descending else ""

        async def fetch(asks: list[tuple[str, str | None, int]]) -> list[list[str]]:
            bound = f' AND m.member_id {"<" if q.descending else ">"} (d.after COLLATE "C")' if asks[0][1] is not None else ""
            rows = await self._q(
                "SELECT d.n, x.k FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY d(g, after, n) CROSS JOIN LATERAL ("
                f"SELECT m.member_id AS k FROM members m WHERE m.tenant_id=%s AND m.group_id=d.g{typed}{bound} "
                f"ORDER BY m.member_id{direction} LIMIT %s) x",
                [[a[0] for a in asks], [a[1] for a in asks], tenant_id, *typed_args, asks[0][2]],
                custom=True,
            )
            got: list[list[str]] = [[] for _ in asks]
            for n, k in rows:
                got[n - 1].append(k)
            return got

        page_ids = await first_member_ids(fetch, groups, q.after[0] if q.after else None, q.top, q.descending)
        rows, width, render = await self._page_objects(tenant_id, page_ids, q, "o.id")
        return pack_page(rows, width, render, count, q.top) if len(rows) == len(page_ids) else None

    async def _page_objects(self, tenant_id: str, page_ids: list[str], q: ListQuery, key_cols: str) -> tuple[list[tuple[Any, ...]], int, Renderer | None]:
        """The live objects of a page's ids, in that order, each row ending with ``key_cols``."""
        cols, col_args, width, render = page_columns(self._render, q, _RENDERED_COLS)
        rows = await self._q(
            f"SELECT {cols}, {key_cols} FROM unnest(%s::text[]) WITH ORDINALITY a(id, n) JOIN objects o ON o.tenant_id=%s AND o.id=a.id "
            "WHERE o.deleted IS NULL ORDER BY a.n",
            [*col_args, page_ids, tenant_id],
        )
        return rows, width, render

    async def _merged(
        self, tenant_id: str, groups: list[str], frm: str, frm_args: list[Any], where: str, args: list[Any], q: ListQuery, count: int | None
    ) -> Page:
        """The page merged from one arm per group of ``frm`` (which names the group ``d.g``)."""
        keyed, key_args = self._keyed(frm, [*frm_args, *args], where, "m.member_id", q)
        direction = " DESC" if q.descending else ""
        by_name = q.order_by == "displayName"
        group_by, order = ("x.k1, x.k2", f"lower(x.k1){direction}, x.k2{direction}") if by_name else ("x.k1", f"x.k1{direction}")
        keys = await self._q(
            f"SELECT {group_by} FROM unnest(%s::text[]) d(g) CROSS JOIN LATERAL (SELECT {keyed}) x GROUP BY {group_by} ORDER BY {order} LIMIT %s",
            [groups, *key_args, q.top + 1, q.top + 1],
            custom=True,
        )
        rows, width, render = await self._page_objects(tenant_id, [k[-1] for k in keys], q, "o.display_name, o.id" if by_name else "o.id")
        return pack_page(rows, width, render, count, q.top)

    # -- bulk ----------------------------------------------------------------------------------
    def bulk_load(self, tenant_id: str, objects: Iterable[StoredObject], members: Iterable[tuple[str, str, str]]) -> None:
        """Insert many objects and (group, member, member_type) edges with ``COPY``, 50,000 rows per
        transaction; an edge already present is skipped (as SQLite's ``INSERT OR IGNORE``)."""

        def chunks(it: Iterable[Any], n: int = 50_000) -> Iterable[list[Any]]:
            buf: list[Any] = []
            for x in it:
                buf.append(x)
                if len(buf) >= n:
                    yield buf
                    buf = []
            if buf:
                yield buf

        obj_cols = INSERT_OBJECT[INSERT_OBJECT.index("(") : INSERT_OBJECT.index(")") + 1]
        for chunk in chunks(object_columns(o, self._render) for o in objects):

            def load_objects(tx: PgTxn, rows: list[Any] = chunk) -> None:
                with tx.cur.copy(f"COPY objects {obj_cols} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)

            self.write_sync(tenant_id, load_objects)
        for chunk in chunks((tenant_id, g, m, t) for g, m, t in members):

            def load_members(tx: PgTxn, rows: list[Any] = chunk) -> None:
                tx.cur.execute("CREATE TEMP TABLE IF NOT EXISTS bulk_members (LIKE members) ON COMMIT DELETE ROWS")
                with tx.cur.copy("COPY bulk_members FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                tx.cur.execute("INSERT INTO members SELECT * FROM bulk_members ON CONFLICT DO NOTHING")

            self.write_sync(tenant_id, load_members)

    # -- change records ----------------------------------------------------------------------------
    async def list_changes(self, tenant_id: str, after: int = 0, limit: int = 1000) -> list[RecordedChange]:
        rows = await self._q(f"SELECT {CHANGE_COLS} FROM changes WHERE tenant_id=%s AND seq>%s ORDER BY seq LIMIT %s", (tenant_id, after, limit))
        return [recorded_change(r) for r in rows]

    # -- identity (issue 3) ------------------------------------------------------------------------
    async def get_application(self, tenant_id: str, app_id: str) -> StoredApp | None:
        rows = await self._q(f"SELECT {APP_COLS} FROM applications WHERE tenant_id=%s AND app_id=%s", (tenant_id, app_id))
        return app_row(rows[0]) if rows else None

    async def list_applications(self, tenant_id: str) -> list[StoredApp]:
        rows = await self._q(f"SELECT {APP_COLS} FROM applications WHERE tenant_id=%s ORDER BY created, app_id", (tenant_id,))
        return [app_row(r) for r in rows]

    async def role_ids(self, tenant_id: str, principal_id: str) -> list[str]:
        rows = await self._q("SELECT role_id FROM role_assignments WHERE tenant_id=%s AND principal_id=%s ORDER BY role_id", (tenant_id, principal_id))
        return [str(r[0]) for r in rows]

    async def list_role_assignments(self, tenant_id: str) -> list[tuple[str, str]]:
        rows = await self._q("SELECT principal_id, role_id FROM role_assignments WHERE tenant_id=%s ORDER BY principal_id, role_id", (tenant_id,))
        return [(str(r[0]), str(r[1])) for r in rows]


__all__ = ["PostgresBackend", "PostgresStore", "Unavailable"]
