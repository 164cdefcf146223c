"""The PostgreSQL writer's transaction objects (the counterparts of :mod:`graphdir.store.sqlite_txn`).

:class:`PgView` is a checked write's read-only view of the writer's transaction, :class:`PgTxn` a
write function's (reads and writes), both on one psycopg 3 synchronous cursor; :func:`translate`
turns psycopg's exceptions into the :class:`~graphdir.store.base.StoreError` that says whose fault
they are, with neutral messages: no database text ever reaches a client.
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
from psycopg import errors as pg_errors

from graphdir.store.base import (
    Change,
    Conflict,
    Gone,
    InvalidInput,
    Renderings,
    StoredApp,
    StoredObject,
    StoreError,
    Unavailable,
)
from graphdir.store.pg_migrations import CONFLICT_NAMES
from graphdir.store.sqlite_txn import CACHE_GROUPS, EdgeVerbs, object_columns, row_object

COLS = "o.tenant_id, o.id, o.type, o.props, o.created, o.deleted"
GET_OBJECT = f"SELECT {COLS} FROM objects o WHERE o.tenant_id=%s AND o.id=%s"
GET_OBJECTS = f"SELECT {COLS} FROM objects o WHERE o.tenant_id=%s AND o.id = ANY(%s)"
GET_BY_UPN = f"SELECT {COLS} FROM objects o WHERE o.tenant_id=%s AND o.upn=%s"
INSERT_OBJECT = (
    "INSERT INTO objects (tenant_id, id, type, display_name, upn, mail_nickname, created, deleted, props, rendered, rendered_version) "
    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)
UPDATE_OBJECT = (
    "UPDATE objects SET display_name=%s, upn=%s, mail_nickname=%s, deleted=%s, props=%s, rendered=%s, rendered_version=%s "
    "WHERE tenant_id=%s AND id=%s"
)

#: (exists, insert, delete) statements for the two edge tables, keyed (tenant, group, other).
EDGE_SQL = {
    table: (
        f"SELECT 1 FROM {table} WHERE tenant_id=%s AND group_id=%s AND {col}=%s",
        f"INSERT INTO {table} VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
        f"DELETE FROM {table} WHERE tenant_id=%s AND group_id=%s AND {col}=%s",
    )
    for table, col in (("members", "member_id"), ("owners", "owner_id"))
}


def conflict_what(exc: psycopg.Error) -> str:
    """The neutral name of the rule a unique violation broke (a Graph property or relation name)."""
    name = exc.diag.constraint_name or ""
    return CONFLICT_NAMES.get(name, "a unique value")


def translate(exc: BaseException) -> BaseException:
    """A psycopg exception as the :class:`StoreError` that says whose fault it is; others unchanged.

    * a unique violation → :class:`Conflict` naming the Graph property or relation (400);
    * a foreign key that found no row (the object was deleted meanwhile) → :class:`Gone` (404);
    * a value PostgreSQL cannot hold or compare (a NUL character, out of range, too long, an index
      row over its size limit: SQLSTATE classes 22 and 54) → :class:`InvalidInput` (400);
    * a connection lost, refused or closed, an administrator shutdown, a deadlock or serialization
      failure (SQLSTATE classes 08, 40, 53, 57, 58) → :class:`Unavailable` (503, worth retrying);
    * anything else (a syntax error, an undefined column) is a bug → :class:`StoreError` (500).

    Messages are fixed texts: the database's own never reach a client.
    """
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, OverflowError):
        return InvalidInput("a value too large for the store")
    if not isinstance(exc, psycopg.Error):
        return exc
    if isinstance(exc, pg_errors.UniqueViolation):
        return Conflict(conflict_what(exc))
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return Gone("the object was deleted meanwhile")
    state = exc.sqlstate or ""
    if isinstance(exc, psycopg.DataError) or state[:2] in ("22", "54"):
        return InvalidInput("a value the store cannot hold or compare")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) or state[:2] in ("08", "40", "53", "57", "58"):
        return Unavailable("the database is unavailable")
    return StoreError(f"{type(exc).__name__} (SQLSTATE {state or 'none'})")


class PgView:
    """A checked write's read-only view of the writer's transaction (see :class:`graphdir.store.base.TxnView`).

    The group cache lives for one transaction (other workers write too); see ``PostgresBackend.begin``."""

    __slots__ = ("_cur", "tenant_id", "_cache")

    def __init__(self, cur: psycopg.Cursor[Any], tenant_id: str, cache: dict[tuple[str, str], StoredObject]) -> None:
        self._cur = cur
        self.tenant_id = tenant_id
        self._cache = cache

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self._cur.execute(sql, params).fetchone()

    def peek(self, object_id: str) -> StoredObject | None:
        """The object as the transaction sees it: read-only, never to be modified (groups are cached)."""
        key = (self.tenant_id, object_id)
        obj = self._cache.get(key)
        if obj is None:
            r = self._one(GET_OBJECT, key)
            if r is None:
                return None
            obj = row_object(r)
            if obj.type == "group":
                if len(self._cache) >= CACHE_GROUPS:
                    del self._cache[next(iter(self._cache))]
                self._cache[key] = obj
        return obj

    def get(self, object_id: str) -> StoredObject | None:
        """A copy of the object, free to modify (and, in a write function, to pass to ``update``)."""
        obj = self.peek(object_id)
        if obj is None:
            return None
        return StoredObject(obj.tenant_id, obj.id, obj.type, dict(obj.props), obj.created, obj.deleted)

    def get_by_upn(self, upn: str) -> StoredObject | None:
        r = self._one(GET_BY_UPN, (self.tenant_id, upn.lower()))
        return row_object(r) if r else None

    def _has(self, table: str, group_id: str, other_id: str) -> bool:
        return self._one(EDGE_SQL[table][0], (self.tenant_id, group_id, other_id)) is not None

    def has_member(self, group_id: str, member_id: str) -> bool:
        return self._has("members", group_id, member_id)

    def has_owner(self, group_id: str, owner_id: str) -> bool:
        return self._has("owners", group_id, owner_id)

    def count_owners(self, group_id: str) -> int:
        r = self._one(
            "SELECT count(*) FROM owners o JOIN objects x ON x.tenant_id=o.tenant_id AND x.id=o.owner_id "
            "WHERE o.tenant_id=%s AND o.group_id=%s AND x.deleted IS NULL",
            (self.tenant_id, group_id),
        )
        assert r is not None
        return int(r[0])

    def ancestors(self, group_id: str) -> set[str]:
        rows = self._cur.execute(
            "WITH RECURSIVE up(g) AS (SELECT group_id FROM members WHERE tenant_id=%(t)s AND member_id=%(g)s "
            "UNION SELECT m.group_id FROM members m JOIN up ON m.tenant_id=%(t)s AND m.member_id=up.g) SELECT g FROM up",
            {"t": self.tenant_id, "g": group_id},
        ).fetchall()
        return {r[0] for r in rows}


class PgTxn(PgView, EdgeVerbs):
    """The writer's view of one write function (see :class:`graphdir.store.base.Txn`): reads and writes.

    ``conn``/``cur`` are the writer's connection and cursor (``%s`` placeholders)."""

    __slots__ = ("conn", "changes", "render")
    _edge_sql = EDGE_SQL  # %s placeholders

    def __init__(
        self, conn: psycopg.Connection[Any], tenant_id: str, render: Renderings | None = None,
        cache: dict[tuple[str, str], StoredObject] | None = None, cur: psycopg.Cursor[Any] | None = None,
    ) -> None:
        super().__init__(conn.cursor() if cur is None else cur, tenant_id, {} if cache is None else cache)
        self.conn = conn
        self.changes: list[Change] = []
        self.render = render

    @property
    def cur(self) -> psycopg.Cursor[Any]:
        return self._cur

    def _guarded(self, sql: str, params: tuple[Any, ...]) -> None:
        """One statement under a savepoint of its own: a failing statement aborts a PostgreSQL
        transaction, a SQLite one goes on, and a write function may catch the :class:`Conflict`
        (e.g. to answer a duplicate userPrincipalName) and carry on, as it can on SQLite."""
        cur = self._cur
        cur.execute("SAVEPOINT s")
        try:
            cur.execute(sql, params)
        except psycopg.Error as exc:
            if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                cur.execute("ROLLBACK TO SAVEPOINT s")
                cur.execute("RELEASE SAVEPOINT s")
            if isinstance(exc, pg_errors.UniqueViolation):
                raise Conflict(conflict_what(exc)) from exc
            raise translate(exc) from exc
        cur.execute("RELEASE SAVEPOINT s")

    def insert(self, obj: StoredObject) -> None:
        self._cache.pop((self.tenant_id, obj.id), None)
        self._guarded(INSERT_OBJECT, object_columns(obj, self.render))

    def update(self, obj: StoredObject) -> None:
        self._cache.pop((self.tenant_id, obj.id), None)
        c = object_columns(obj, self.render)
        self._guarded(UPDATE_OBJECT, (c[3], c[4], c[5], c[7], c[8], c[9], c[10], c[0], c[1]))

    def purge(self, object_id: str) -> None:
        t = self.tenant_id
        self._cache.pop((t, object_id), None)
        # the edges go with the object (ON DELETE CASCADE), as SQLite's explicit deletes do
        self._cur.execute("DELETE FROM objects WHERE tenant_id=%s AND id=%s", (t, object_id))


    def record(self, change: Change) -> None:
        self.changes.append(change)

    # -- identity (issue 3) -----------------------------------------------------
    def put_application(self, app: StoredApp) -> None:
        self._cur.execute(
            "INSERT INTO applications VALUES (%s,%s,%s,%s,%s) ON CONFLICT (tenant_id, app_id) DO UPDATE SET "
            "display_name=excluded.display_name, props=excluded.props",
            (self.tenant_id, app.app_id, app.display_name, orjson.dumps(app.props).decode(), app.created),
        )

    def delete_application(self, app_id: str) -> bool:
        return self._cur.execute("DELETE FROM applications WHERE tenant_id=%s AND app_id=%s", (self.tenant_id, app_id)).rowcount == 1

    def assign_role(self, principal_id: str, role_id: str) -> bool:
        sql = "INSERT INTO role_assignments VALUES (%s,%s,%s) ON CONFLICT DO NOTHING"
        return self._cur.execute(sql, (self.tenant_id, principal_id, role_id)).rowcount == 1

    def unassign_role(self, principal_id: str, role_id: str) -> bool:
        sql = "DELETE FROM role_assignments WHERE tenant_id=%s AND principal_id=%s AND role_id=%s"
        return self._cur.execute(sql, (self.tenant_id, principal_id, role_id)).rowcount == 1

    def put_auth_code(self, code_hash: str, props: dict[str, Any], expires: float) -> None:
        self._cur.execute("DELETE FROM authorization_codes WHERE tenant_id=%s AND expires < %s", (self.tenant_id, expires - 86400))
        self._cur.execute(
            "INSERT INTO authorization_codes VALUES (%s,%s,%s,%s)", (self.tenant_id, code_hash, orjson.dumps(props).decode(), expires)
        )

    def take_auth_code(self, code_hash: str) -> tuple[dict[str, Any], float] | None:
        """Read and delete a code in one step: a code is redeemable once."""
        r = self._one(
            "DELETE FROM authorization_codes WHERE tenant_id=%s AND code_hash=%s RETURNING props, expires", (self.tenant_id, code_hash)
        )
        return (orjson.loads(r[0]), float(r[1])) if r else None

    def change_rows(self, at: str) -> list[tuple[Any, ...]]:
        """This write's change records as ``changes`` rows without their number: the backend numbers a
        batch's rows per tenant at its end, under the tenant's counter row lock."""
        rows = [
            (self.tenant_id, at, ch.object_id, ch.object_type, ch.action, ch.related_id, ch.actor,
             orjson.dumps(ch.detail).decode() if ch.detail else None)
            for ch in self.changes
        ]
        self.changes.clear()
        return rows
