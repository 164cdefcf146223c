"""The storage contract, part 3: identity records, odd values and short-lived event loops, on every
backend of the store seam (graphdir.store.base), through the seam only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from graphdir.query import Compare, ListQuery, StartsWith
from graphdir.store.base import InvalidInput, Store, StoredApp, StoredObject, Txn
from store_contract_helpers import (
    CREATED,
    OTHER_TENANT,
    TENANT,
    insert_all,
    run,
    store_fixture,  # noqa: F401 - the `store` fixture
    uid,
    url_of,
    user,
    write,
)


class Boom(Exception):
    """A write function's own failure."""


# -- identity -----------------------------------------------------------------------------------------------------
def test_applications(store: Store) -> None:
    a1, a2 = uid(2), uid(1)
    write(store, lambda tx: tx.put_application(StoredApp(TENANT, a1, "one", {"secrets": [{"hash": "h"}], "roles": ["User.Read.All"]}, CREATED)))
    write(store, lambda tx: tx.put_application(StoredApp(TENANT, a2, "two", {}, "2024-05-02T00:00:00Z")))
    got = run(store.get_application(TENANT, a1))
    assert got == StoredApp(TENANT, a1, "one", {"secrets": [{"hash": "h"}], "roles": ["User.Read.All"]}, CREATED)
    assert run(store.get_application(OTHER_TENANT, a1)) is None
    assert [a.app_id for a in run(store.list_applications(TENANT))] == [a1, a2]  # by creation
    write(store, lambda tx: tx.put_application(StoredApp(TENANT, a1, "one renamed", {"x": True}, "2030-01-01T00:00:00Z")))
    assert run(store.get_application(TENANT, a1)) == StoredApp(TENANT, a1, "one renamed", {"x": True}, CREATED)
    assert write(store, lambda tx: tx.delete_application(a1)) is True
    assert write(store, lambda tx: tx.delete_application(a1)) is False
    assert [a.app_id for a in run(store.list_applications(TENANT))] == [a2]
    assert run(store.list_applications(OTHER_TENANT)) == []


def test_role_assignments(store: Store) -> None:
    p1, p2, r1, r2 = uid(5), uid(4), uid(9), uid(8)
    assert write(store, lambda tx: [tx.assign_role(p1, r1), tx.assign_role(p1, r2), tx.assign_role(p2, r1), tx.assign_role(p1, r1)]) == [
        True, True, True, False]
    assert run(store.role_ids(TENANT, p1)) == sorted([r1, r2])
    assert run(store.list_role_assignments(TENANT)) == sorted([(p1, r1), (p1, r2), (p2, r1)])
    assert run(store.role_ids(OTHER_TENANT, p1)) == []
    assert write(store, lambda tx: tx.unassign_role(p1, r1)) is True
    assert write(store, lambda tx: tx.unassign_role(p1, r1)) is False
    assert run(store.role_ids(TENANT, p1)) == [r2]


def test_an_authorization_code_is_taken_once(store: Store) -> None:
    props = {"client_id": uid(1), "scope": "openid User.Read", "pkce": "abc", "n": 3}
    write(store, lambda tx: tx.put_auth_code("hash-1", props, 1_900_000_000.5))
    assert write(store, lambda tx: tx.take_auth_code("hash-1"), tenant=OTHER_TENANT) is None

    def take_then_fail(tx: Txn) -> None:
        assert tx.take_auth_code("hash-1") is not None
        raise Boom("after taking")

    with pytest.raises(Boom):
        write(store, take_then_fail)  # undone: the code is still there
    assert write(store, lambda tx: tx.take_auth_code("hash-1")) == (props, 1_900_000_000.5)
    assert write(store, lambda tx: tx.take_auth_code("hash-1")) is None
    assert write(store, lambda tx: tx.take_auth_code("never-issued")) is None


# -- odd values ---------------------------------------------------------------------------------------------------
def test_a_nul_character_is_refused_in_stored_strings(store: Store) -> None:
    """No backend stores a NUL character (PostgreSQL's text cannot; SQLite's LIKE and NOCASE would stop at
    it): an object holding one anywhere is InvalidInput, and nothing of the write is kept."""
    for i, obj in enumerate([user(uid(1), "before\x00after"), user(uid(2), "ok", "nul2@x.example", city="a\x00b"),
                             user(uid(3), "ok", "nul3@x.example", otherMails=["x\x00@y.example"])]):
        with pytest.raises(InvalidInput):
            write(store, lambda tx, obj=obj: tx.insert(obj))
        assert run(store.get(TENANT, uid(i + 1))) is None
    ok = user(uid(4), "fine", "nul4@x.example")
    insert_all(store, [ok])
    changed = StoredObject(ok.tenant_id, ok.id, ok.type, {**ok.props, "displayName": "a\x00"}, ok.created)
    with pytest.raises(InvalidInput):
        write(store, lambda tx: tx.update(changed))
    assert run(store.get(TENANT, uid(4))) == ok


def test_a_nul_character_in_a_query_value_is_refused_and_matches_no_lookup(store: Store) -> None:
    """A ``$filter``/``$search`` value holding a NUL is InvalidInput on every backend; a point lookup by
    such a key finds nothing (no stored string holds one)."""
    insert_all(store, [user(uid(1), "before", "nul1@x.example")])
    for where in (Compare("displayName", "eq", "before\x00after"), StartsWith("displayName", "before\x00a")):
        with pytest.raises(InvalidInput):
            run(store.list_objects(TENANT, ("user",), ListQuery(where=where)))
    assert run(store.get_by_upn(TENANT, "nul1\x00@x.example")) is None
    assert run(store.get(TENANT, uid(1) + "\x00")) is None


# -- event loops ----------------------------------------------------------------------------------------------------
SHORT_LOOP = """
import asyncio, sys
from graphdir import bootstrap
from graphdir.settings import load_settings
store = bootstrap.open_store(load_settings(env={}, database_url=sys.argv[1]))
store.open()
try:
    for _ in range(2):
        print(asyncio.run(store.get_meta("k")), flush=True)
finally:
    store.close()
print("closed")
"""


def test_a_read_in_a_short_lived_event_loop(store: Store, request: pytest.FixtureRequest) -> None:
    """A read awaited in its own ``asyncio.run`` (a script, a test) returns, and the store then closes."""
    store.put_meta("k", "v")
    try:
        proc = subprocess.run([sys.executable, "-c", SHORT_LOOP, url_of(store)], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("a read awaited in asyncio.run() did not return within 30 s (hung at the loop's shutdown)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["v", "v", "closed"]
