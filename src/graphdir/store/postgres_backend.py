"""Transaction verbs for the :class:`~graphdir.store.writer.Writer` on one PostgreSQL connection.

The counterpart of :mod:`graphdir.store.sqlite_backend` for a network database: every batch runs on
the writer's committer thread (``on_loop = False``), so the event loop never waits for a round trip.
One psycopg 3 synchronous connection in autocommit mode, with explicit ``BEGIN`` / ``SAVEPOINT w`` /
``RELEASE w`` / ``ROLLBACK TO w`` / ``COMMIT``.

Change records are numbered per tenant in commit order, with several writers (worker processes) on
one database: at the end of a batch each tenant's counter row is bumped by the number of records the
batch holds for it (tenants in sorted order, so two batches never wait for each other crosswise), and
the row lock this takes is held until ``COMMIT``. A batch that numbers records of a tenant after
another therefore commits after it: per tenant, numbers are gap-free and increase with commit order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.pq import TransactionStatus

from graphdir.store.base import EdgeWrite, Renderings, StoredObject, Unavailable
from graphdir.store.postgres_txn import EDGE_SQL, GET_OBJECTS, PgTxn, PgView, translate
from graphdir.store.sqlite_txn import now, row_object

log = logging.getLogger("graphdir.store.postgres")

#: Bump a tenant's change counter by n and return its new top (the row lock is held until COMMIT).
BUMP_COUNTER = (
    "INSERT INTO change_counters AS c (tenant_id, seq) VALUES (%s, %s) "
    "ON CONFLICT (tenant_id) DO UPDATE SET seq = c.seq + excluded.seq RETURNING c.seq"
)
INSERT_CHANGE = "INSERT INTO changes VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
_LOST = (psycopg.OperationalError, psycopg.InterfaceError)


#: The advisory lock of a tenant's writes: (graphdir's lock class, the tenant id's hash).
LOCK_TENANT = "SELECT pg_advisory_xact_lock(1735551346, hashtext(%s))"


def connect(url: str) -> psycopg.Connection[Any]:
    """A synchronous autocommit connection with the session settings graphdir's SQL relies on."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


#: A batch's edge changes of one kind in one statement; ``RETURNING`` names the edges that changed.
BULK_EDGE_SQL = {
    table: {
        "add": (
            f"INSERT INTO {table} (tenant_id, group_id, {col}, {kind}) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
            f"ON CONFLICT DO NOTHING RETURNING tenant_id, group_id, {col}"
        ),
        "remove": (
            f"DELETE FROM {table} x USING unnest(%s::text[], %s::text[], %s::text[]) AS d(t, g, o) "
            f"WHERE x.tenant_id = d.t AND x.group_id = d.g AND x.{col} = d.o RETURNING x.tenant_id, x.group_id, x.{col}"
        ),
    }
    for table, col, kind in (("members", "member_id", "member_type"), ("owners", "owner_id", "owner_type"))
}


@dataclass(slots=True)
class _Op:
    """A queued edge change of a checked write: ``edge`` is (tenant, group, other, relation)."""

    relation: str
    kind: str  # "add" | "remove"
    edge: tuple[str, str, str, str]
    other_type: str
    change: tuple[Any, ...] | None


class _SendingFirst:
    """A cursor for a check's reads that sends the queued edge changes before each statement."""

    __slots__ = ("_cur", "_send")

    def __init__(self, cur: psycopg.Cursor[Any], send: Callable[[], None]) -> None:
        self._cur = cur
        self._send = send

    def execute(self, query: Any, params: Any = None) -> psycopg.Cursor[Any]:
        self._send()
        return self._cur.execute(query, params)


class _Miss(Exception):
    """A dry-run check asked for something the transaction's cache does not hold (see ``prefetch``)."""

    def __init__(self, object_id: str | None) -> None:
        super().__init__(object_id)
        self.object_id = object_id


class _Probe(PgView):
    """A view that answers from the transaction's cache only and records what else a check asks for."""

    __slots__ = ("_absent",)

    def __init__(
        self, cur: psycopg.Cursor[Any], tenant_id: str, cache: dict[tuple[str, str], StoredObject], absent: set[tuple[str, str]]
    ) -> None:
        super().__init__(cur, tenant_id, cache)
        self._absent = absent

    def peek(self, object_id: str) -> StoredObject | None:
        key = (self.tenant_id, object_id)
        obj = self._cache.get(key)
        if obj is None:
            if key in self._absent:
                return None  # looked for and not found: the real run finds nothing either (404)
            raise _Miss(object_id)
        return obj

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        raise _Miss(None)

    def has_member(self, group_id: str, member_id: str) -> bool:
        raise _Miss(None)

    def has_owner(self, group_id: str, owner_id: str) -> bool:
        raise _Miss(None)

    def ancestors(self, group_id: str) -> set[str]:
        raise _Miss(None)


class PostgresBackend:
    """:class:`graphdir.store.writer.Backend` on one psycopg connection (reconnected when lost)."""

    #: every statement is a network round trip: batches run on the committer thread only
    on_loop = False

    def __init__(self, url: str, render: Renderings | None = None) -> None:
        self.url = url
        self.render = render
        self.conn: psycopg.Connection[Any] | None = None
        self.cur: psycopg.Cursor[Any] | None = None
        #: change rows of this batch's successful writes, without their number (see end_batch)
        self._pending: list[tuple[Any, ...]] = []
        #: group rows read in this transaction (other workers write too: cleared at every BEGIN)
        self._cache: dict[tuple[str, str], StoredObject] = {}
        self._savepoint = False
        self._at = now()
        #: queue checked writes' edge changes and send them together: off for a batch run again
        #: statement by statement after a failure of queued changes (restart_unpipelined)
        self.pipelining = True
        self._unpipelined_once = False
        #: edge changes queued and not sent yet, in order
        self._ops: list[_Op] = []
        #: whether each edge change sent in this transaction changed its edge, in order (see settle)
        self._outcomes: list[bool] = []
        #: this transaction queued edge changes (a failure can then not be pinned on one write)
        self._queued_any = False

    # -- connection -------------------------------------------------------------
    def connect(self) -> None:
        self._drop()
        self.conn = connect(self.url)
        self.cur = self.conn.cursor()

    def _drop(self) -> None:
        conn, self.conn, self.cur = self.conn, None, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:  # pragma: no cover - already gone
                pass

    def _c(self) -> psycopg.Cursor[Any]:
        if self.cur is None:
            raise Unavailable("the database connection is closed")
        return self.cur

    def _status(self) -> TransactionStatus:
        conn = self.conn
        if conn is None or conn.closed:
            return TransactionStatus.UNKNOWN
        return conn.info.transaction_status

    # -- transaction verbs --------------------------------------------------------
    def begin(self, wait: bool = True) -> bool:
        """``BEGIN`` (never refused: PostgreSQL has no database-wide write lock). A connection found
        closed, or lost while idle (a server restart, an administrator's termination), is replaced
        first: nothing of the batch has run yet."""
        self._cache.clear()
        self._pending = []
        self._savepoint = False
        self._ops, self._outcomes, self._queued_any = [], [], False
        self.pipelining, self._unpipelined_once = not self._unpipelined_once, False
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.connect()
        try:
            self._c().execute("BEGIN")
        except _LOST:
            log.warning("writer: the database connection was lost; reconnecting")
            self.connect()
            self._c().execute("BEGIN")
        self._at = now()
        return True

    def lock_tenants(self, tenants: list[str]) -> None:
        """One transaction-scoped advisory lock per tenant, in sorted order (no two batches can wait for
        each other): a tenant's write transactions run one at a time across every worker, as on SQLite,
        so a check made in Python (the last owner, a nesting cycle) cannot race another worker's write.
        Writes of different tenants still run side by side."""
        c = self._c()
        for tenant in tenants:
            c.execute(LOCK_TENANT, (tenant,))

    # -- pipelined checked writes ----------------------------------------------------
    def prefetch(self, checks: list[tuple[str, Callable[[Any], EdgeWrite]]]) -> None:
        """Dry-run each check against a view that answers from the transaction's cache only, collect
        the objects the checks ask for, and read them in one statement per tenant; again for what the
        checks ask for next (a member after its group). The real checks then find them in the cache.
        A check that asks for anything else (an owner, the ancestors) stops its dry run; it reads for
        itself when it runs."""
        absent: set[tuple[str, str]] = set()
        pending = checks
        c = self._c()
        for _ in range(2):
            wanted: dict[str, set[str]] = {}
            again: list[tuple[str, Callable[[Any], EdgeWrite]]] = []
            for tenant_id, check in pending:
                try:
                    check(_Probe(c, tenant_id, self._cache, absent))
                except _Miss as miss:
                    if miss.object_id is not None:
                        wanted.setdefault(tenant_id, set()).add(miss.object_id)
                        again.append((tenant_id, check))
                except Exception:  # noqa: BLE001 - the real run raises it again, to its caller
                    pass
            if not wanted:
                return
            for tenant_id, object_ids in wanted.items():
                for r in c.execute(GET_OBJECTS, (tenant_id, sorted(object_ids))).fetchall():
                    obj = row_object(r)
                    self._cache[(obj.tenant_id, obj.id)] = obj
                absent.update((tenant_id, i) for i in object_ids if (tenant_id, i) not in self._cache)
            pending = again

    def _flush_ops(self) -> None:
        """Send the queued edge changes: one statement per kind (add or remove, members or owners) for
        the lot, whose ``RETURNING`` says which edges changed; when one edge is both added and removed
        among them, one statement each, in order (the order then decides)."""
        ops, self._ops = self._ops, []
        if not ops:
            return
        kinds: dict[tuple[str, str], list[int]] = {}
        for i, op in enumerate(ops):
            kinds.setdefault((op.relation, op.kind), []).append(i)
        c = self._c()
        changed = [False] * len(ops)
        if len(kinds) > 1 and len({op.edge for op in ops}) < len({(op.edge, op.kind) for op in ops}):
            for i, op in enumerate(ops):  # the same edge both ways: in order, one by one
                _, insert, delete = EDGE_SQL[op.relation]
                if op.kind == "add":
                    changed[i] = c.execute(insert, (*op.edge[:3], op.other_type)).rowcount == 1
                else:
                    changed[i] = c.execute(delete, op.edge[:3]).rowcount == 1
        else:
            for (relation, kind), idxs in kinds.items():
                cols = [[ops[i].edge[j] for i in idxs] for j in range(3)]
                if kind == "add":
                    cols.append([ops[i].other_type for i in idxs])
                done = {tuple(r) for r in c.execute(BULK_EDGE_SQL[relation][kind], cols).fetchall()}
                for i in idxs:  # the first of duplicates changed the edge; the others found it changed
                    key = ops[i].edge[:3]
                    if key in done:
                        changed[i] = True
                        done.discard(key)
        for op, did in zip(ops, changed, strict=True):
            if did and op.change is not None:
                self._pending.append(op.change)
        self._outcomes += changed

    def settle(self) -> list[bool]:
        self._flush_ops()
        out, self._outcomes = self._outcomes, []
        return out

    def replayable(self) -> bool:
        return self._queued_any

    def restart_unpipelined(self) -> None:
        self.rollback()
        self._unpipelined_once = True
        self.begin(True)

    def savepoint(self) -> None:
        self._flush_ops()  # a write function reads what the queued changes did
        self._c().execute("SAVEPOINT w")
        self._savepoint = True

    def release(self) -> None:
        self._c().execute("RELEASE SAVEPOINT w")
        self._savepoint = False

    def rollback_to(self) -> None:
        self._cache.clear()  # reads inside the undone savepoint may have cached its changes
        c = self._c()
        c.execute("ROLLBACK TO SAVEPOINT w")
        c.execute("RELEASE SAVEPOINT w")
        self._savepoint = False

    def in_transaction(self) -> bool:
        """Is the batch's transaction still usable? A statement that failed under the write's
        savepoint left it aborted until ``ROLLBACK TO``: usable. Aborted outside a savepoint, or the
        connection lost: not (the writer then fails the batch whole)."""
        status = self._status()
        if status == TransactionStatus.INTRANS:
            return True
        return status == TransactionStatus.INERROR and self._savepoint

    def end_batch(self) -> None:
        """Number and write the batch's change records: per tenant (in sorted order) one counter bump,
        whose row lock is held until COMMIT; then every row in one ``executemany`` (pipelined)."""
        self._flush_ops()
        if not self._pending:
            return
        c = self._c()
        by_tenant: dict[str, list[tuple[Any, ...]]] = {}
        for row in self._pending:
            by_tenant.setdefault(row[0], []).append(row)
        out: list[tuple[Any, ...]] = []
        for tenant in sorted(by_tenant):
            rows = by_tenant[tenant]
            r = c.execute(BUMP_COUNTER, (tenant, len(rows))).fetchone()
            assert r is not None
            first = int(r[0]) - len(rows) + 1
            out += [(row[0], first + i, *row[1:]) for i, row in enumerate(rows)]
        c.executemany(INSERT_CHANGE, out)
        self._pending = []

    def commit(self) -> None:
        self._flush_ops()
        if self._status() != TransactionStatus.INTRANS:
            raise Unavailable("the transaction was rolled back by the database")
        self._c().execute("COMMIT")

    def rollback(self) -> None:
        self._ops, self._outcomes = [], []
        self._pending = []
        self._cache.clear()
        self._savepoint = False
        if self._status() in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            try:
                self._c().execute("ROLLBACK")
            except _LOST:
                self._drop()  # the next batch reconnects
        elif self.conn is not None and self.conn.broken:
            self._drop()

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints on its own."""

    def make_txn(self, tenant_id: str) -> PgTxn:
        assert self.conn is not None
        return PgTxn(self.conn, tenant_id, self.render, self._cache, self._c())

    def finish_txn(self, txn: PgTxn) -> None:
        """A write function succeeded: keep its change records for this batch's end."""
        if txn.changes:
            self._pending += txn.change_rows(self._at)

    def make_view(self, tenant_id: str) -> PgView:
        """A check's view: its reads send the queued edge changes first (a check must see them)."""
        return PgView(_SendingFirst(self._c(), self._flush_ops), tenant_id, self._cache)  # type: ignore[arg-type]

    def apply(self, tenant_id: str, m: EdgeWrite) -> bool | None:
        """A checked write's one statement, queued (None: see :meth:`settle`): the statements of a
        batch's checked writes travel together, one round trip for the lot, and a check that reads
        after them waits for them first. The tenant's write lock (:meth:`lock_tenants`) keeps other
        graphdir writers from deleting the objects an added edge names; should anything else have
        deleted one, the foreign key fails the pipeline and the writer runs the batch again statement
        by statement, where the add runs under a savepoint of its own and fails alone (Gone)."""
        ch = m.change
        detail = orjson.dumps(ch.detail).decode() if ch is not None and ch.detail else None
        _, insert, delete = EDGE_SQL[m.relation]
        if self.pipelining:
            row = (tenant_id, self._at, ch.object_id, ch.object_type, ch.action, ch.related_id, ch.actor, detail) if ch is not None else None
            self._ops.append(_Op(m.relation, m.op, (tenant_id, m.group_id, m.other_id, m.relation), m.other_type, row))
            self._queued_any = True
            return None
        c = self._c()
        if m.op == "add":
            c.execute("SAVEPOINT a")
            try:
                changed = c.execute(insert, (tenant_id, m.group_id, m.other_id, m.other_type)).rowcount == 1
            except psycopg.Error:
                if self._status() == TransactionStatus.INERROR:
                    c.execute("ROLLBACK TO SAVEPOINT a")
                    c.execute("RELEASE SAVEPOINT a")
                raise
            c.execute("RELEASE SAVEPOINT a")
        else:
            changed = c.execute(delete, (tenant_id, m.group_id, m.other_id)).rowcount == 1
        if changed and ch is not None:
            self._pending.append((tenant_id, self._at, ch.object_id, ch.object_type, ch.action, ch.related_id, ch.actor, detail))
        return changed

    @staticmethod
    def translate(exc: BaseException) -> BaseException:
        return translate(exc)

    def close(self) -> None:
        self._drop()
