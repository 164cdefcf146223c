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
from typing import Any

import orjson
import psycopg
from psycopg.pq import TransactionStatus

from graphdir.store.base import EdgeWrite, Renderings, StoredObject, Unavailable
from graphdir.store.postgres_txn import EDGE_SQL, PgTxn, PgView, translate
from graphdir.store.sqlite_txn import now

log = logging.getLogger("graphdir.store.postgres")

#: Bump a tenant's change counter by n and return its new top (the row lock is held until COMMIT).
BUMP_COUNTER = (
    "INSERT INTO change_counters AS c (tenant_id, seq) VALUES (%s, %s) "
    "ON CONFLICT (tenant_id) DO UPDATE SET seq = c.seq + excluded.seq RETURNING c.seq"
)
INSERT_CHANGE = "INSERT INTO changes VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
_LOST = (psycopg.OperationalError, psycopg.InterfaceError)


def connect(url: str) -> psycopg.Connection[Any]:
    """A synchronous autocommit connection with the session settings graphdir's SQL relies on."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


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

    def savepoint(self) -> None:
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
        if self._status() != TransactionStatus.INTRANS:
            raise Unavailable("the transaction was rolled back by the database")
        self._c().execute("COMMIT")

    def rollback(self) -> None:
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
        return PgView(self._c(), tenant_id, self._cache)

    def apply(self, tenant_id: str, m: EdgeWrite) -> bool:
        """A checked write's one statement. An added edge whose object another transaction deleted
        meanwhile fails its foreign key: under a savepoint of its own, so the batch goes on (Gone)."""
        c = self._c()
        ch = m.change
        detail = orjson.dumps(ch.detail).decode() if ch is not None and ch.detail else None
        _, insert, delete = EDGE_SQL[m.relation]
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
