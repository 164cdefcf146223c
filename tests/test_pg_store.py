"""The PostgreSQL store against a real PostgreSQL server (issue 10).

Runs when ``GRAPHDIR_TEST_PG_URL`` names the run's database (``scripts/test.sh`` makes one; see
tests/pg_helpers.py): a throwaway database is created for the session and dropped at its end.
Skipped otherwise.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphdir.errors import GraphError
from graphdir.odata.filter import parse_filter
from graphdir.odata.search import parse_search
from graphdir.query import Compare, ListQuery, Search, SearchTerm, StartsWith
from graphdir.store.base import (
    Change,
    Conflict,
    EdgeWrite,
    Gone,
    InvalidInput,
    InvalidPosition,
    Renderings,
    StoredObject,
    StoreError,
    Unavailable,
)
from graphdir.store.pg_migrations import LATEST, MIGRATIONS
from graphdir.store.postgres import PostgresStore
from graphdir.store.postgres_txn import PgTxn, PgView
from graphdir.store.sqlite import SqliteStore
from pg_helpers import fresh_database

ADMIN_URL = os.environ.get("GRAPHDIR_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not ADMIN_URL, reason="GRAPHDIR_TEST_PG_URL is not set")
T = TypeVar("T")
TID = "tenant-a"


def _with_db(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database of this run's for the session (tests/pg_helpers.py), dropped at its end."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def url(pg_url: str) -> str:
    """The session database, migrated and emptied."""
    PostgresStore(pg_url).migrate()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'schema_version'").fetchall()
        conn.execute("TRUNCATE " + ", ".join(f'"{r[0]}"' for r in rows))
    return pg_url


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(url)
    s.open()
    yield s
    s.close()


def run(store: PostgresStore, fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` on a fresh event loop, closing that loop's read pool at the end."""

    async def main() -> T:
        try:
            return await fn()
        finally:
            await store.close_reads()

    return asyncio.run(main())


def user(uid: str, name: str, upn: str | None = None, **props: Any) -> StoredObject:
    p: dict[str, Any] = {"displayName": name, **props}
    if upn is not None:
        p["userPrincipalName"] = upn
    return StoredObject(TID, uid, "user", p, "2024-01-01T00:00:00Z")


def group(gid: str, name: str) -> StoredObject:
    return StoredObject(TID, gid, "group", {"displayName": name}, "2024-01-01T00:00:00Z")


def insert(store: PostgresStore, *objs: StoredObject, members: tuple[tuple[str, str], ...] = ()) -> None:
    def fn(tx: PgTxn) -> None:
        for o in objs:
            tx.insert(o)
        for g, m in members:
            tx.add_member(g, m, "user")

    store.write_sync(TID, fn)


def changes(url: str, tenant: str = TID) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT seq, object_id, action FROM changes WHERE tenant_id=%s ORDER BY seq", (tenant,)).fetchall()


# -- schema -----------------------------------------------------------------------------------------
def test_migrations_are_idempotent(url: str) -> None:
    s = PostgresStore(url)
    assert s.migrate() == LATEST
    assert s.migrate() == LATEST
    assert s.schema_version() == LATEST
    with psycopg.connect(url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [v for v, _, _ in MIGRATIONS]


def test_schema_is_distributable_by_tenant(url: str) -> None:
    """Read from the live catalog: every primary key and unique index leads with the tenant id, every
    foreign key maps tenant_id to tenant_id, no sequence exists, every text column sorts bytewise."""
    with psycopg.connect(url) as conn:
        uniques = conn.execute(
            """
            SELECT t.relname, i.relname, a.attname
            FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
            WHERE n.nspname = 'public' AND (x.indisunique OR x.indisprimary)
            """
        ).fetchall()
        fks = conn.execute(
            """
            SELECT c.conname, ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                                    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
                              ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                                    JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i),
                   c.confdeltype
            FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE n.nspname = 'public' AND c.contype = 'f'
            """
        ).fetchall()
        sequences = conn.execute("SELECT relname FROM pg_class WHERE relkind = 'S'").fetchall()
        identity = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema='public' "
            "AND (is_identity = 'YES' OR column_default LIKE 'nextval%%')"
        ).fetchall()
        collations = conn.execute(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema='public' AND data_type = 'text' AND collation_name IS DISTINCT FROM 'C'"
        ).fetchall()
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"tenants", "objects", "members", "owners", "changes", "change_counters", "meta", "applications", "role_assignments",
            "authorization_codes", "schema_version"} <= tables
    assert len(uniques) >= len(tables)  # at least one key per table
    bad = [(t, i, col) for t, i, col in uniques if col != ("id" if t == "tenants" else "tenant_id")]
    assert bad == []
    assert {t for t, _, _ in uniques} == tables  # every table has a key
    assert fks, "members and owners refer to their objects"
    for name, cols, ref_cols, on_delete in fks:
        assert "tenant_id" in cols, name
        assert ref_cols[cols.index("tenant_id")] == "tenant_id", name  # within one tenant
        assert on_delete == "c", name  # cascade: no orphan edge
    assert sequences == [] and identity == []
    assert collations == []


# -- write semantics ----------------------------------------------------------------------------------
def test_a_failing_write_is_rolled_back_alone(store: PostgresStore, url: str) -> None:
    insert(store, group("g", "G"))

    def ok(uid: str) -> Callable[[PgTxn], str]:
        def fn(tx: PgTxn) -> str:
            tx.insert(user(uid, uid))
            tx.record(Change(uid, "user", "create"))
            return uid

        return fn

    def failing(tx: PgTxn) -> None:
        tx.insert(user("bad", "bad"))
        tx.add_member("g", "bad", "user")
        tx.record(Change("bad", "user", "create"))
        raise RuntimeError("boom")

    def check(view: PgView) -> EdgeWrite:
        # the batch's transaction: its earlier writes are seen, the failed one's are not
        assert view.peek("g") is not None and view.peek("u1") is not None and view.peek("bad") is None
        return EdgeWrite("members", "add", "g", "u2", "user", Change("g", "group", "addMember", related_id="u2"))

    async def main() -> list[Any]:
        futs = [store.write(TID, ok("u1")), store.write(TID, failing), store.write(TID, ok("u2")), store.write_one(TID, check)]
        return await asyncio.gather(*futs, return_exceptions=True)

    r1, r2, r3, r4 = run(store, main)
    assert (r1, r3, r4) == ("u1", "u2", None)
    assert isinstance(r2, RuntimeError)
    assert store.sync(store.get(TID, "bad")) is None
    assert store.sync(store.get(TID, "u1")) is not None
    assert store.sync(store.is_member(TID, "g", "u2")) is True
    assert [(c[1], c[2]) for c in changes(url)] == [("u1", "create"), ("u2", "create"), ("g", "addMember")]
    assert store.write_sync(TID, lambda tx: 42) == 42

    def unchanged(view: PgView) -> EdgeWrite:
        return EdgeWrite("members", "add", "g", "u2", "user", unchanged=lambda: LookupError("already a member"))

    async def again() -> None:
        await store.write_one(TID, unchanged)

    with pytest.raises(LookupError):
        run(store, again)
    assert len(changes(url)) == 3


def test_duplicate_upn_is_a_conflict_with_a_neutral_message(store: PostgresStore, url: str) -> None:
    insert(store, user("u1", "One", "dup@example.com"))
    with pytest.raises(Conflict) as info:
        insert(store, user("u2", "Two", "DUP@example.com"))
    assert info.value.what == "userPrincipalName"
    assert str(info.value) == "userPrincipalName"

    def caught(tx: PgTxn) -> str:
        """A write function may catch the Conflict and go on, as on SQLite."""
        try:
            tx.insert(user("u3", "Three", "dup@example.com"))
        except Conflict as exc:
            tx.insert(user("u3", "Three", "other@example.com"))
            return exc.what
        return "no conflict"

    assert store.write_sync(TID, caught) == "userPrincipalName"
    assert store.sync(store.get_by_upn(TID, "OTHER@example.com")) is not None
    with pytest.raises(Conflict) as info:
        insert(store, user("u1", "again"))
    assert info.value.what == "id"


def test_nul_character_is_invalid_input(store: PostgresStore) -> None:
    insert(store, group("g", "G"))
    for bad in (user("u1", "a\x00b"), user("u2", "ok", jobTitle="x\x00"), user("u\x003", "ok"), user("u4", "ok", tags={"k\x00": 1})):
        with pytest.raises(InvalidInput) as info:
            insert(store, bad)
        assert "NUL" in str(info.value) or "cannot hold" in str(info.value)
        assert "0x00" not in str(info.value)

    async def edge() -> None:
        await store.write_one(TID, lambda view: EdgeWrite("members", "add", "g", "x\x00", "user"))

    with pytest.raises(InvalidInput):
        run(store, edge)
    assert store.sync(store.get(TID, "a\x00")) is None  # no stored string holds a NUL: nothing matches, as on SQLite
    # a value too long for an index entry (random: PostgreSQL compresses repetitive ones) is the client's fault too
    long_name = random.Random(1).randbytes(5000).hex()
    with pytest.raises(InvalidInput) as info:
        insert(store, user("u6", long_name))
    assert "index" not in str(info.value)
    # a backslash followed by u0000 is no NUL
    insert(store, user("u5", "ok", jobTitle="\\u0000"))
    got = store.sync(store.get(TID, "u5"))
    assert got is not None and got.props["jobTitle"] == "\\u0000"


def test_an_edge_to_an_object_deleted_meanwhile_is_gone(store: PostgresStore, url: str) -> None:
    """Something other than graphdir (whose writers hold the tenant's lock) deletes a member between a
    check and its queued insert: the pipelined batch fails on the foreign key and is run again statement
    by statement, where the check no longer finds the member (the domain's 404) and a write function's
    add fails alone (Gone); the rest of the batch commits."""
    insert(store, group("g", "G"), user("u1", "One"), user("u2", "Two"))
    deleted: list[bool] = []

    def check(view: PgView) -> EdgeWrite:
        if view.peek("u1") is None:
            raise KeyError("u1")
        if type(view).__name__ != "_Probe" and not deleted:  # the real run, not prefetch's dry run
            with psycopg.connect(url, autocommit=True) as other:
                other.execute("DELETE FROM objects WHERE tenant_id=%s AND id='u1'", (TID,))
            deleted.append(True)
        return EdgeWrite("members", "add", "g", "u1", "user", Change("g", "group", "addMember", related_id="u1"))

    def by_fn(tx: PgTxn) -> None:
        tx.add_member("g", "nobody", "user")

    async def main() -> list[Any]:
        futs = [store.write_one(TID, check), store.write(TID, by_fn), store.write(TID, lambda tx: tx.add_member("g", "u2", "user"))]
        return await asyncio.gather(*futs, return_exceptions=True)

    r1, r2, r3 = run(store, main)
    assert isinstance(r1, KeyError) and isinstance(r2, Gone), (r1, r2)
    assert r3 is True  # the rest of the batch commits
    assert store.sync(store.is_member(TID, "g", "u2"))
    assert changes(url) == []  # the failed edge recorded nothing


def test_change_numbers_follow_commit_order_with_two_writers(url: str) -> None:
    """Two stores (two worker processes' writers) write to one tenant: the numbers are gap-free, and a
    reader polling meanwhile never sees a gap (a higher number committed before a lower one)."""
    stores = [PostgresStore(url, batch_max=8), PostgresStore(url, batch_max=8)]
    for s in stores:
        s.open()
    per_store, stop, seen, errors = 60, threading.Event(), [], []

    def poll() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                seqs = [r[0] for r in conn.execute("SELECT seq FROM changes WHERE tenant_id=%s ORDER BY seq", (TID,))]
                if seqs != list(range(1, len(seqs) + 1)):
                    errors.append(seqs)
                seen.append(len(seqs))

    def work(i: int, s: PostgresStore) -> None:
        async def one(k: int) -> None:
            def fn(tx: PgTxn) -> None:
                tx.insert(user(f"s{i}-{k:03d}", f"n{k}"))
                tx.record(Change(f"s{i}-{k:03d}", "user", "create"))

            await s.write(TID, fn)

        async def main() -> None:
            await asyncio.gather(*(one(k) for k in range(per_store)))

        asyncio.run(main())

    poller = threading.Thread(target=poll)
    poller.start()
    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    poller.join()
    for s in stores:
        s.close()
    rows = changes(url)
    assert [r[0] for r in rows] == list(range(1, 2 * per_store + 1))
    assert errors == []
    for i in range(2):  # each writer's own records in its submission order
        mine = [r[1] for r in rows if r[1].startswith(f"s{i}-")]
        assert mine == sorted(mine) and len(mine) == per_store


# -- reads ----------------------------------------------------------------------------------------------
NAMES = ["beta", "Alpha", "alpha", "Ärger", "zeta", "Zulu", "émile", "_under", "Bravo"]


def test_a_tenants_writes_run_one_at_a_time_across_writers(url: str) -> None:
    """Two writers (two workers) each remove one of a group's two owners, checking in Python that it
    is not the last: with the tenant's write lock the second sees the first's removal and refuses, as
    on SQLite; without it both would pass the check and leave the group with no owner."""
    stores = [PostgresStore(url), PostgresStore(url)]
    for s in stores:
        s.open()
    insert(stores[0], group("g", "G"), user("o1", "One"), user("o2", "Two"))
    stores[0].write_sync(TID, lambda tx: (tx.add_owner("g", "o1", "user"), tx.add_owner("g", "o2", "user")))
    outcome: dict[str, str] = {}

    def remove(s: PostgresStore, owner: str, delay: float) -> None:
        time.sleep(delay)

        def fn(tx: PgTxn) -> None:
            if tx.count_owners("g") <= 1:
                raise ValueError("last owner")
            time.sleep(0.3)  # the other writer starts meanwhile
            tx.remove_owner("g", owner)

        try:
            s.write_sync(TID, fn)
            outcome[owner] = "removed"
        except ValueError:
            outcome[owner] = "refused"

    threads = [threading.Thread(target=remove, args=(stores[0], "o1", 0.0)), threading.Thread(target=remove, args=(stores[1], "o2", 0.1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    left = stores[0].sync(stores[0].is_owner(TID, "g", "o2"))
    for s in stores:
        s.close()
    assert outcome == {"o1": "removed", "o2": "refused"}
    assert left


def _nocase(name: str) -> bytes:
    """SQLite's NOCASE: ASCII letters folded, every other byte as is."""
    return "".join(c.lower() if c.isascii() else c for c in name).encode()


def test_keyset_paging_by_display_name_with_casts_and_count(store: PostgresStore) -> None:
    users = [user(f"u{i}", n) for i, n in enumerate(NAMES)]
    insert(store, group("g", "G"), group("sub", "alpha"), *users, members=tuple(("g", u.id) for u in users))
    store.write_sync(TID, lambda tx: tx.add_member("g", "sub", "group"))
    everyone = [(n, f"u{i}") for i, n in enumerate(NAMES)] + [("alpha", "sub")]
    for desc in (False, True):
        expected = sorted(everyone, key=lambda t: (_nocase(t[0]), t[1].encode()), reverse=desc)
        got: list[tuple[str, str]] = []
        after = None
        counts = []
        while True:
            q = ListQuery(order_by="displayName", descending=desc, top=3, after=after, count=True)
            page = store.sync(store.list_members(TID, "g", q))
            got += [(o.props["displayName"], o.id) for o in page.items]
            counts.append(page.count)
            if page.next_after is None:
                break
            assert page.next_after == (page.items[-1].props["displayName"], page.items[-1].id)  # as SQLite: the stored name
            after = page.next_after
        assert got == expected
        assert set(counts) == {len(everyone)}
    # a cast: groups only
    page = store.sync(store.list_members(TID, "g", ListQuery(types=("group",), count=True)))
    assert [o.id for o in page.items] == ["sub"] and page.count == 1
    # by id (the default order), with a position
    ids = sorted([u.id for u in users] + ["sub"])
    page = store.sync(store.list_members(TID, "g", ListQuery(top=4)))
    assert [o.id for o in page.items] == ids[:4] and page.next_after == (ids[3],)
    page = store.sync(store.list_members(TID, "g", ListQuery(top=100, after=page.next_after)))
    assert [o.id for o in page.items] == ids[4:] and page.next_after is None
    with pytest.raises(InvalidPosition):
        store.sync(store.list_members(TID, "g", ListQuery(order_by="displayName", after=("only",))))
    with pytest.raises(InvalidPosition):
        store.sync(store.list_objects(TID, ("user",), ListQuery(after=("a", "b"))))
    # memberOf and objects
    assert [o.id for o in store.sync(store.list_member_of(TID, "sub", ListQuery())).items] == ["g"]
    page = store.sync(store.list_objects(TID, ("user", "group"), ListQuery(order_by="displayName", top=2, count=True)))
    assert page.count == len(NAMES) + 2 and [(o.props["displayName"], o.id) for o in page.items] == [("_under", "u7"), ("alpha", "sub")]


def test_filters_fold_ascii_case_only(store: PostgresStore) -> None:
    insert(store, *[user(f"u{i}", n, f"u{i}@Example.com", jobTitle=n.upper()) for i, n in enumerate(NAMES)])

    def ids(q: ListQuery) -> list[str]:
        return [o.id for o in store.sync(store.list_objects(TID, ("user",), q)).items]

    assert ids(ListQuery(where=Compare("displayName", "eq", "ALPHA"))) == ["u1", "u2"]
    assert ids(ListQuery(where=Compare("displayName", "eq", "ärger"))) == []  # non-ASCII letters are not folded
    assert ids(ListQuery(where=Compare("displayName", "eq", "Ärger"))) == ["u3"]
    assert ids(ListQuery(where=StartsWith("jobTitle", "zu"))) == ["u5"]
    assert ids(ListQuery(where=StartsWith("displayName", "_"))) == ["u7"]  # LIKE wildcards are escaped
    assert ids(ListQuery(where=Compare("userPrincipalName", "eq", "U0@EXAMPLE.COM"))) == ["u0"]
    # NOCASE order: z and Z alike, non-ASCII letters (bytes from 0xC3) after every ASCII one
    assert ids(ListQuery(where=Compare("displayName", "ge", "Z"))) == ["u3", "u4", "u5", "u6"]
    assert ids(ListQuery(where=Compare("displayName", "lt", "ALPHA"))) == ["u7"]
    assert ids(ListQuery(search=Search("AND", (SearchTerm("displayName", "BRA"),)))) == ["u8"]


def test_reads_on_an_event_loop_and_through_sync(store: PostgresStore) -> None:
    insert(store, group("g", "G"), user("u1", "One", "one@example.com"), members=(("g", "u1"),))
    store.put_tenant({"id": TID, "displayName": "A", "domain": "a.example"})
    store.put_meta("default_tenant", TID)

    async def main() -> tuple[Any, ...]:
        return tuple(
            await asyncio.gather(
                store.get(TID, "u1"), store.get_by_upn(TID, "ONE@example.com"), store.get_many(TID, ["u1", "g", "none"]),
                store.is_member(TID, "g", "u1"), store.is_owner(TID, "g", "u1"), store.get_tenant(TID), store.get_meta("default_tenant"),
                store.list_tenants(),
            )
        )

    got, by_upn, many, member, owner, tenant, meta, tenants = run(store, main)
    assert got is not None and got.props["displayName"] == "One" and by_upn is not None and by_upn.id == "u1"
    assert [o.id for o in many] == ["g", "u1"]
    assert (member, owner, meta) == (True, False, TID)
    assert tenant["domain"] == "a.example" and [t["id"] for t in tenants] == [TID]
    assert store.sync(store.get_meta("default_tenant")) == TID
    assert store.sync(store.get_meta("missing")) is None

    async def refused() -> None:
        store.sync(store.get(TID, "u1"))

    with pytest.raises(RuntimeError):
        asyncio.run(refused())


def test_identity_rows(store: PostgresStore) -> None:
    from graphdir.store.base import StoredApp

    def fn(tx: PgTxn) -> Any:
        tx.put_application(StoredApp(TID, "app1", "App", {"s": 1}, "2024"))
        assert tx.assign_role("p", "r2") and tx.assign_role("p", "r1") and not tx.assign_role("p", "r1")
        tx.put_auth_code("h", {"a": 1}, 1e9)
        return tx.take_auth_code("h"), tx.take_auth_code("h")

    assert store.write_sync(TID, fn) == (({"a": 1}, 1e9), None)
    app = store.sync(store.get_application(TID, "app1"))
    assert app is not None and app.props == {"s": 1}
    assert store.sync(store.role_ids(TID, "p")) == ["r1", "r2"]
    assert store.sync(store.list_role_assignments(TID)) == [("p", "r1"), ("p", "r2")]
    assert [a.app_id for a in store.sync(store.list_applications(TID))] == ["app1"]


def test_rendered_pages(url: str) -> None:
    render = Renderings("k1", {"k1": lambda t, i, p: f"{t}:{i}:{p['displayName']}".encode(), "k2": lambda t, i, p: b"k2"})
    s = PostgresStore(url, render=render)
    s.open()
    try:
        insert(s, user("u1", "One"), user("u2", "Two"))
        page = s.sync(s.list_objects(TID, ("user",), ListQuery(rendered="k1")))
        assert page.items == [] and page.rendered == [("user", b"user:u1:One"), ("user", b"user:u2:Two")]
        page = s.sync(s.list_objects(TID, ("user",), ListQuery(rendered="k2", top=1)))
        assert page.rendered == [("user", b"k2")] and page.next_after == ("u1",)
    finally:
        s.close()
    s2 = PostgresStore(url, render=Renderings("k2", render.render))
    s2.open()  # re-renders the rows made with k1
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT DISTINCT rendered_version FROM objects").fetchall() == [("k2",)]
        assert s2.refresh_renderings() == 0
    finally:
        s2.close()


def test_bulk_load(store: PostgresStore) -> None:
    objs = [group("g", "G"), *[user(f"u{i:03d}", f"n{i}") for i in range(50)]]
    store.bulk_load(TID, iter(objs), iter([("g", f"u{i:03d}", "user") for i in range(50)] + [("g", "u000", "user")]))
    page = store.sync(store.list_members(TID, "g", ListQuery(top=10, count=True)))
    assert page.count == 50 and page.items[0].id == "u000"


# -- failures -------------------------------------------------------------------------------------------
def test_a_lost_connection_fails_its_batch_as_unavailable_and_the_next_reconnects(store: PostgresStore, url: str) -> None:
    def killed(tx: PgTxn) -> None:
        tx.insert(user("lost", "Lost"))
        tx.cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(Unavailable) as info:
        store.write_sync(TID, killed)
    assert "terminat" not in str(info.value).lower() or "could not be committed" in str(info.value)
    insert(store, user("after", "After"))
    assert store.sync(store.get(TID, "after")) is not None and store.sync(store.get(TID, "lost")) is None
    # lost while idle: terminated by an administrator between two batches
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = '' AND state = 'idle'"
        )
    insert(store, user("after2", "After"))
    assert store.sync(store.get(TID, "after2")) is not None


def test_a_bug_is_a_plain_store_error(store: PostgresStore) -> None:
    with pytest.raises(StoreError) as info:
        store.write_sync(TID, lambda tx: tx.cur.execute("SELECT no_such_column FROM objects"))
    assert type(info.value) is StoreError and "no_such_column" not in str(info.value)


# -- the same answers as SQLite ---------------------------------------------------------------------------
def _sqlite_read(value: Any) -> Any:
    """A SqliteStore read, whether it is still synchronous or already ``async``."""
    if inspect.isawaitable(value):
        return asyncio.run(_awaited(value))
    return value


async def _awaited(aw: Awaitable[T]) -> T:
    return await aw


def test_filters_and_searches_answer_as_sqlite(store: PostgresStore, tmp_path: Path) -> None:
    """Every ``$filter``/``$search`` the parser accepts (the filter suite's rows, fuzzed texts) selects
    the same objects from PostgreSQL as from SQLite, in the same order, and never fails as a bug."""
    from test_filter import _FILTERISH, _RESOURCES, _SEARCHISH, ROWS  # the filter suite's fixtures

    objs = [StoredObject(TID, oid, typ, props, props["createdDateTime"]) for oid, typ, props in ROWS]
    lite = SqliteStore(tmp_path / "d.db")
    lite.open()
    try:
        lite.bulk_load(TID, objs, [])
        store.bulk_load(TID, objs, [])
        types = ("user", "group")

        def both(q: ListQuery) -> None:
            want = _sqlite_read(lite.list_objects(TID, types, q))
            try:
                got = store.sync(store.list_objects(TID, types, q))
            except InvalidInput:  # only a NUL character in a literal: PostgreSQL's text cannot hold it
                assert "\\x00" in repr(q), q
                return
            assert [o.id for o in got.items] == [o.id for o in want.items], q

        fixed = [
            "startsWith(displayName,'a')", "displayName eq 'ADELE VANCE'", "accountEnabled eq true", "accountEnabled ne true",
            "groupTypes/any(c:c eq 'unified')", "proxyAddresses/any(p:startsWith(p,'smtp:'))", "createdDateTime ge 2022-01-01",
            "not(groupTypes/any(c:c eq 'Unified'))", "mail eq null", "description ne null", "startsWith(displayName,'100%')",
            "displayName in ('alex wilber', 'Sales Security')", "endsWith(mail,'@contoso.com')", "startsWith(displayName,'é')",
            "startsWith(displayName,'É')",
        ]
        for text in fixed:
            both(ListQuery(where=parse_filter(text, "directoryObject", True), order_by="displayName"))
        for text in ['"displayName:adele"', '"displayName:zola" OR "description:testers"', '"displayName:real_user"', '"mail:videoprod"']:
            both(ListQuery(search=parse_search(text, "group"), order_by="displayName"))

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(text=_FILTERISH, resource=_RESOURCES, desc=st.booleans())
        def fuzz_filter(text: str, resource: str, desc: bool) -> None:
            try:
                p = parse_filter(text, resource, True)
            except GraphError:
                return
            both(ListQuery(where=p, order_by="displayName", descending=desc))

        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
        @given(text=_SEARCHISH)
        def fuzz_search(text: str) -> None:
            try:
                s = parse_search(text, "group")
            except GraphError:
                return
            both(ListQuery(search=s))

        fuzz_filter()
        fuzz_search()
    finally:
        lite.close()


def test_an_unreachable_server_is_unavailable() -> None:
    """Nothing listens on port 1: opening, reading and schema_version answer Unavailable (503), not a bug."""
    dead = "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2"
    s = PostgresStore(dead, pool_timeout=0.5)
    with pytest.raises(Unavailable):
        s.open()
    with pytest.raises(Unavailable):
        s.schema_version()
    with pytest.raises(Unavailable):
        s.sync(s.get(TID, "x"))
    s.close()


def test_transaction_reads_and_edge_writes(store: PostgresStore, url: str) -> None:
    """The Txn verbs the directory uses, inside the writer's transaction: edges, owners, nesting, purge."""
    insert(store, group("a", "A"), group("b", "B"), group("c", "C"), user("u1", "One", "One@x"), user("u2", "Two"),
           members=(("a", "b"), ("b", "c"), ("c", "u1")))

    def fn(tx: PgTxn) -> dict[str, Any]:
        got = tx.get_by_upn("ONE@X")
        out: dict[str, Any] = {"upn": got.id if got else None, "ancestors": tx.ancestors("c")}
        out["owners"] = [tx.add_owner("a", "u1", "user"), tx.add_owner("a", "u2", "user"), tx.add_owner("a", "u2", "user")]
        out["count"] = tx.count_owners("a")
        out["has"] = (tx.has_member("c", "u1"), tx.has_member("c", "u2"), tx.has_owner("a", "u2"))
        out["removed"] = (tx.remove_owner("a", "u2"), tx.remove_owner("a", "u2"), tx.remove_member("c", "u1"), tx.remove_member("c", "u1"))
        copy = tx.get("a")
        assert copy is not None
        copy.props["description"] = "changed"
        assert tx.peek("a") is not None and "description" not in tx.peek("a").props  # type: ignore[union-attr]
        tx.update(copy)
        tx.purge("b")  # its edges go with it (ON DELETE CASCADE)
        assert tx.delete_application("none") is False and tx.unassign_role("p", "r") is False
        return out

    out = store.write_sync(TID, fn)
    assert out["upn"] == "u1" and out["ancestors"] == {"a", "b"}
    assert out["owners"] == [True, True, False] and out["count"] == 2
    assert out["has"] == (True, False, True) and out["removed"] == (True, False, True, False)
    got = store.sync(store.get(TID, "a"))
    assert got is not None and got.props["description"] == "changed"
    assert store.sync(store.get(TID, "b")) is None
    assert not store.sync(store.is_member(TID, "a", "b")) and not store.sync(store.is_member(TID, "b", "c"))
    assert [o.id for o in store.sync(store.list_owners(TID, "a", ListQuery())).items] == ["u1"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM members WHERE tenant_id=%s", (TID,)).fetchone() == (0,)


def test_a_batch_of_queued_edge_writes_settles_each_one(store: PostgresStore, url: str) -> None:
    """Checked writes' statements are queued (pipelined) and settled after the batch's last write: each
    gets its own outcome, in order, a write function in the middle sees the edges queued before it, and
    only the edges that changed are recorded."""
    insert(store, group("g", "G"), *(user(f"u{i}", f"U{i}") for i in range(5)), members=(("g", "u0"), ("g", "u1")))

    def edge(op: str, member: str) -> Callable[[PgView], EdgeWrite]:
        def check(view: PgView) -> EdgeWrite:
            assert view.peek("g") is not None and view.peek(member) is not None
            action = "addMember" if op == "add" else "removeMember"
            return EdgeWrite("members", op, "g", member, "user", Change("g", "group", action, related_id=member),  # type: ignore[arg-type]
                             unchanged=lambda: LookupError(f"{op} {member}"))
        return check

    def sees_queued(tx: PgTxn) -> bool:
        return tx.has_member("g", "u2") and not tx.has_member("g", "u0")

    async def main() -> list[Any]:
        futs: list[Awaitable[Any]] = [
            store.write_one(TID, edge("remove", "u0")),  # changes
            store.write_one(TID, edge("remove", "u3")),  # not a member: unchanged
            store.write_one(TID, edge("add", "u2")),  # changes
            store.write(TID, sees_queued),
            store.write_one(TID, edge("add", "u1")),  # already a member: unchanged
            store.write_one(TID, edge("add", "u4")),  # changes
        ]
        return await asyncio.gather(*futs, return_exceptions=True)

    results = run(store, main)
    assert results[0] is None and results[2] is None and results[5] is None
    assert results[3] is True
    assert [str(r) for r in (results[1], results[4])] == ["remove u3", "add u1"]
    members = store.sync(store.list_members(TID, "g", ListQuery(top=10)))
    assert sorted(o.id for o in members.items) == ["u1", "u2", "u4"]
    recorded = store.sync(store.list_changes(TID))
    assert [(c.change.action, c.change.related_id) for c in recorded] == [("removeMember", "u0"), ("addMember", "u2"), ("addMember", "u4")]
    assert [c.seq for c in recorded] == [1, 2, 3]


def test_queued_edge_changes_of_one_edge_both_ways_keep_their_order(store: PostgresStore) -> None:
    """One batch adds, removes and adds again the same edge (sent one by one, in order) and adds another
    edge twice (sent in one statement: the first changes it, the second finds it there)."""
    insert(store, group("g", "G"), user("u1", "One"), user("u2", "Two"))

    def edge(op: str, member: str) -> Callable[[PgView], EdgeWrite]:
        action = "addMember" if op == "add" else "removeMember"
        return lambda view: EdgeWrite("members", op, "g", member, "user", Change("g", "group", action, related_id=member),  # type: ignore[arg-type]
                                      unchanged=lambda: LookupError(f"{op} {member}"))

    async def main() -> list[Any]:
        ops = [("add", "u1"), ("remove", "u1"), ("add", "u1"), ("add", "u2"), ("add", "u2")]
        return await asyncio.gather(*(store.write_one(TID, edge(op, m)) for op, m in ops), return_exceptions=True)

    results = run(store, main)
    assert results[:4] == [None, None, None, None] and str(results[4]) == "add u2"
    assert store.sync(store.is_member(TID, "g", "u1")) and store.sync(store.is_member(TID, "g", "u2"))
    recorded = [(c.change.action, c.change.related_id) for c in store.sync(store.list_changes(TID))]
    assert recorded == [("addMember", "u1"), ("removeMember", "u1"), ("addMember", "u1"), ("addMember", "u2")]


def test_queued_edge_changes_of_one_kind_go_in_one_statement(store: PostgresStore) -> None:
    """Many removals in one batch: each answered on its own (changed or not a member)."""
    insert(store, group("g", "G"), *(user(f"u{i}", f"U{i}") for i in range(20)), members=tuple(("g", f"u{i}") for i in range(0, 20, 2)))

    async def main() -> list[Any]:
        def remove(member: str) -> Callable[[PgView], EdgeWrite]:
            return lambda view: EdgeWrite("members", "remove", "g", member, change=Change("g", "group", "removeMember", related_id=member),
                                          unchanged=lambda: LookupError(member))
        return await asyncio.gather(*(store.write_one(TID, remove(f"u{i}")) for i in range(20)), return_exceptions=True)

    results = run(store, main)
    assert [r is None for r in results] == [i % 2 == 0 for i in range(20)]
    assert [str(r) for r in results if r is not None] == [f"u{i}" for i in range(1, 20, 2)]
    assert store.sync(store.list_members(TID, "g", ListQuery(top=50))).items == []
