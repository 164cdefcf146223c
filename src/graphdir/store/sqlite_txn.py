"""The SQLite writer's transaction objects and the row codecs they share with the store.

:class:`SqliteView` is a checked write's read-only view of the writer's transaction,
:class:`SqliteTxn` a write function's (reads and writes); :func:`translate` turns SQLite's
exceptions into the :class:`~graphdir.store.base.StoreError` that says whose fault they are.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import orjson

from graphdir import stalls
from graphdir.query import ListQuery
from graphdir.store.base import (
    Change,
    Conflict,
    InvalidInput,
    Page,
    Renderer,
    Renderings,
    StoredApp,
    StoredObject,
    StoreError,
    Unavailable,
)

#: Groups the writer keeps decoded (see :meth:`SqliteView.peek`).
CACHE_GROUPS = 50_000

COLS = "o.tenant_id, o.id, o.type, o.props, o.created, o.deleted"
GET_OBJECT = f"SELECT {COLS} FROM objects o WHERE o.tenant_id=? AND o.id=?"


def row_object(r: tuple[Any, ...]) -> StoredObject:
    return StoredObject(r[0], r[1], r[2], orjson.loads(r[3]), r[4], r[5])


#: The columns :func:`tenant_row` and :func:`app_row` read (both backends select them in this order).
TENANT_COLS = "id, display_name, domain, props, created"
APP_COLS = "tenant_id, app_id, display_name, props, created"


def tenant_row(r: tuple[Any, ...]) -> dict[str, Any]:
    """A ``tenants`` row read as :data:`TENANT_COLS`."""
    return {"id": r[0], "displayName": r[1], "domain": r[2], "props": orjson.loads(r[3]), "created": r[4]}


def app_row(r: tuple[Any, ...]) -> StoredApp:
    """An ``applications`` row read as :data:`APP_COLS`."""
    return StoredApp(r[0], r[1], r[2], orjson.loads(r[3]), r[4])


def rendered_row(r: tuple[Any, ...], render: Renderer) -> tuple[str, bytes]:
    """(type, rendering) of a row read as (id, type, stored bytes or NULL, props or NULL): the stored
    bytes when they were made with the projection asked for, else rendered now from the attributes."""
    if r[2] is not None:
        return r[1], r[2]
    return r[1], render(r[1], r[0], orjson.loads(r[3]))


def page_columns(
    renderings: Renderings | None, q: ListQuery, rendered_cols: str
) -> tuple[str, list[Any], int, Renderer | None]:
    """The columns a page selects over ``o`` (both stores), their parameters, how many there are (the
    keys follow) and the renderer when the query asks for rendered items. ``rendered_cols`` is the
    store's spelling of (id, type, the stored bytes when made with the projection asked for, else the
    attributes), with two placeholders for the rendering key."""
    render = renderings.render.get(q.rendered) if q.rendered is not None and renderings is not None else None
    if render is None:
        return COLS, [], 6, None
    return rendered_cols, [q.rendered, q.rendered], 4, render


def pack_page(rows: list[tuple[Any, ...]], width: int, render: Renderer | None, count: int | None, top: int) -> Page:
    """A listing's page from up to ``top + 1`` rows (one more tells that more follow), each read as
    :data:`COLS` or as a rendered row when ``render`` is given, its keys from column ``width`` on (both
    stores): the next position is the last row's keys."""
    more = len(rows) > top
    rows = rows[:top]
    nxt = tuple(str(v) for v in rows[-1][width:]) if more and rows else None
    if render is not None:
        return Page([], nxt, count, rendered=[rendered_row(r, render) for r in rows])
    return Page([row_object(r) for r in rows], nxt, count)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


INSERT_OBJECT = (
    "INSERT INTO objects (tenant_id, id, type, display_name, upn, mail_nickname, created, deleted, props, rendered, rendered_version) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)


def has_nul(value: Any) -> bool:
    """Does a string anywhere in ``value`` (keys included) hold a NUL character?"""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def object_columns(obj: StoredObject, renderings: Renderings | None) -> tuple[Any, ...]:
    """An object as ``objects`` columns. A NUL character in any of its strings is refused
    (:class:`InvalidInput`) on every backend: PostgreSQL's text cannot hold one, and SQLite's ``LIKE``
    and ``NOCASE`` stop at one, so the same value would compare differently (docs/scaling.md)."""
    p = obj.props
    upn = p.get("userPrincipalName")
    if renderings is None:
        rendered, version = None, None
    else:
        version = renderings.stored
        rendered = renderings.render[version](obj.type, obj.id, p)
    props = orjson.dumps(p).decode()
    if ("\\u0000" in props and has_nul(p)) or has_nul([obj.tenant_id, obj.id, obj.type]):
        raise InvalidInput("a string holds a NUL character")
    return (
        obj.tenant_id,
        obj.id,
        obj.type,
        p.get("displayName") or "",
        upn.lower() if isinstance(upn, str) else None,
        p.get("mailNickname"),
        obj.created,
        obj.deleted,
        props,
        rendered,
        version,
    )


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY: another connection holds the lock ("database is locked")."""
    return (int(getattr(exc, "sqlite_errorcode", 0)) & 0xFF) == sqlite3.SQLITE_BUSY


#: SQLite's primary result codes for a database that cannot be used right now (503, retried):
#: another connection holds a lock, the disk failed or is full, the file cannot be opened.
_UNAVAILABLE = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL}
)


#: The Graph property (or relationship) each of SQLite's uniqueness rules protects, by the columns
#: its "UNIQUE constraint failed: …" message names: a Conflict names that, never the database's text.
_UNIQUE_SUBJECTS = (("objects.upn", "userPrincipalName"), ("members.", "members"), ("owners.", "owners"), ("applications.", "appId"))


def conflict(exc: sqlite3.IntegrityError) -> Conflict:
    """A uniqueness violation as a :class:`Conflict` naming what is duplicated (no SQLite text)."""
    text = str(exc)
    return Conflict(next((subject for cols, subject in _UNIQUE_SUBJECTS if cols in text), "id"))


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
        return conflict(exc)
    code = int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if isinstance(exc, sqlite3.DataError) or code == sqlite3.SQLITE_TOOBIG:
        return InvalidInput(str(exc))
    if code in _UNAVAILABLE or (isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc)):
        return Unavailable(str(exc))
    return StoreError(f"{type(exc).__name__}: {exc}")


#: (exists, insert, delete) statements for the two edge tables, keyed (tenant, group, other).
EDGE_SQL = {
    table: (
        f"SELECT 1 FROM {table} WHERE tenant_id=? AND group_id=? AND {col}=?",
        f"INSERT OR IGNORE INTO {table} VALUES (?,?,?,?)",
        f"DELETE FROM {table} WHERE tenant_id=? AND group_id=? AND {col}=?",
    )
    for table, col in (("members", "member_id"), ("owners", "owner_id"))
}


class EdgeVerbs:
    """A write function's member and owner verbs, one statement each (``_edge_sql``: the backend's
    (exists, insert, delete) statements per edge table; ``_cur``: its cursor). True: the edge changed."""

    __slots__ = ()
    _edge_sql: dict[str, tuple[str, str, str]] = EDGE_SQL
    _cur: Any
    tenant_id: str

    def _add(self, table: str, group_id: str, other_id: str, other_type: str) -> bool:
        return bool(self._cur.execute(self._edge_sql[table][1], (self.tenant_id, group_id, other_id, other_type)).rowcount == 1)

    def _remove(self, table: str, group_id: str, other_id: str) -> bool:
        return bool(self._cur.execute(self._edge_sql[table][2], (self.tenant_id, group_id, other_id)).rowcount == 1)

    def add_member(self, group_id: str, member_id: str, member_type: str) -> bool:
        return self._add("members", group_id, member_id, member_type)

    def remove_member(self, group_id: str, member_id: str) -> bool:
        return self._remove("members", group_id, member_id)

    def add_owner(self, group_id: str, owner_id: str, owner_type: str) -> bool:
        return self._add("owners", group_id, owner_id, owner_type)

    def remove_owner(self, group_id: str, owner_id: str) -> bool:
        return self._remove("owners", group_id, owner_id)


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
        another process's commit clears the cache, see ``SqliteBackend.begin``): every membership
        write reads its group. Other objects are read each time: a member is seldom written twice,
        and caching each one would fill the cache, evicting the groups, and give the garbage
        collector tens of thousands of long-lived objects to walk."""
        key = (self.tenant_id, object_id)
        obj = self._cache.get(key)
        if obj is None:
            r = self._cur.execute(GET_OBJECT, key).fetchone()
            if r is None:
                return None
            obj = row_object(r)
            if obj.type == "group":
                if len(self._cache) >= CACHE_GROUPS:
                    del self._cache[next(iter(self._cache))]  # the oldest entry
                    if stalls.RECORDER is not None:
                        stalls.RECORDER.count("evict", size=len(self._cache))
                self._cache[key] = obj
        return obj

    def get(self, object_id: str) -> StoredObject | None:
        """A copy of the object, free to modify (and, in a write function, to pass to ``update``)."""
        obj = self.peek(object_id)
        if obj is None:
            return None
        return StoredObject(obj.tenant_id, obj.id, obj.type, dict(obj.props), obj.created, obj.deleted)

    def get_by_upn(self, upn: str) -> StoredObject | None:
        r = self._cur.execute(f"SELECT {COLS} FROM objects o WHERE o.tenant_id=? AND o.upn=?", (self.tenant_id, upn.lower())).fetchone()
        return row_object(r) if r else None

    def _has(self, table: str, group_id: str, other_id: str) -> bool:
        return self._cur.execute(EDGE_SQL[table][0], (self.tenant_id, group_id, other_id)).fetchone() is not None

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
            "UNION SELECT m.group_id FROM up CROSS JOIN members m ON m.tenant_id=?1 AND m.member_id=up.g) SELECT g FROM up",
            (self.tenant_id, group_id),
        ).fetchall()
        return {r[0] for r in rows}


class SqliteTxn(SqliteView, EdgeVerbs):
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
            self.conn.execute(INSERT_OBJECT, object_columns(obj, self.render))
        except sqlite3.IntegrityError as exc:
            raise conflict(exc) from exc

    def update(self, obj: StoredObject) -> None:
        self._cache.pop((self.tenant_id, obj.id), None)
        c = object_columns(obj, self.render)
        try:
            self.conn.execute(
                "UPDATE objects SET display_name=?, upn=?, mail_nickname=?, deleted=?, props=?, rendered=?, rendered_version=? "
                "WHERE tenant_id=? AND id=?",
                (c[3], c[4], c[5], c[7], c[8], c[9], c[10], c[0], c[1]),
            )
        except sqlite3.IntegrityError as exc:
            raise conflict(exc) from exc

    def purge(self, object_id: str) -> None:
        t = self.tenant_id
        self._cache.pop((t, object_id), None)
        self.conn.execute("DELETE FROM members WHERE tenant_id=? AND group_id=?", (t, object_id))
        self.conn.execute("DELETE FROM members WHERE tenant_id=? AND member_id=?", (t, object_id))
        self.conn.execute("DELETE FROM owners WHERE tenant_id=? AND group_id=?", (t, object_id))
        self.conn.execute("DELETE FROM owners WHERE tenant_id=? AND owner_id=?", (t, object_id))
        self.conn.execute("DELETE FROM objects WHERE tenant_id=? AND id=?", (t, object_id))


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
