"""The storage contract, part 1: what every backend of the store seam (graphdir.store.base) must do alike.

Each test runs on SQLite (the reference) and on PostgreSQL, through the seam only (``Store``,
``Txn``/``TxnView``, ``StoreError``): tenants and meta, objects, uniqueness, atomicity of writes and
change records. Listings are in ``test_store_contract_listing.py``; identity records, NUL characters
and short-lived event loops in ``test_store_contract_identity.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from graphdir.query import ListQuery
from graphdir.store.base import Change, Conflict, EdgeWrite, Store, StoredApp, StoredObject, Txn, TxnView
from store_contract_helpers import (
    CREATED,
    OTHER_TENANT,
    SQL_WORDS,
    TENANT,
    add_members,
    group,
    ids,
    insert_all,
    run,
    store_fixture,  # noqa: F401 - the `store` fixture
    uid,
    user,
    write,
)


class Boom(Exception):
    """A write function's own failure."""


class Unchanged(Exception):
    """What a checked write's ``unchanged`` makes."""


def _tenant(tid: str, name: str, created: str) -> dict[str, Any]:
    return {"id": tid, "displayName": name, "domain": f"{name}.example", "props": {"domains": [f"{name}.example"]}, "created": created}


# -- tenants and meta -------------------------------------------------------------------------------------
def test_tenants_round_trip_and_list_by_creation_then_id(store: Store) -> None:
    a, b, c = uid(3), uid(1), uid(2)
    store.put_tenant(_tenant(a, "alpha", "2024-01-02T00:00:00Z"))
    store.put_tenant(_tenant(b, "beta", "2024-01-03T00:00:00Z"))
    store.put_tenant(_tenant(c, "gamma", "2024-01-02T00:00:00Z"))  # same instant as a: id decides
    got = store.sync(store.get_tenant(a))
    assert got == _tenant(a, "alpha", "2024-01-02T00:00:00Z")
    assert [t["id"] for t in store.sync(store.list_tenants())] == [c, a, b]
    # put again: display name, domain and props replaced, creation kept
    store.put_tenant({"id": a, "displayName": "alpha2", "domain": "a2.example", "props": {"x": 1}, "created": "2030-01-01T00:00:00Z"})
    again = store.sync(store.get_tenant(a))
    assert again == {"id": a, "displayName": "alpha2", "domain": "a2.example", "props": {"x": 1}, "created": "2024-01-02T00:00:00Z"}
    assert [t["id"] for t in store.sync(store.list_tenants())] == [c, a, b]
    assert store.sync(store.get_tenant(uid(99))) is None


def test_meta_overwrites(store: Store) -> None:
    assert store.sync(store.get_meta("default_tenant")) is None
    store.put_meta("default_tenant", "one")
    store.put_meta("other", "x")
    store.put_meta("default_tenant", "two")
    assert store.sync(store.get_meta("default_tenant")) == "two"
    assert store.sync(store.get_meta("other")) == "x"


def test_reads_awaited_and_synced_agree(store: Store) -> None:
    store.put_tenant(_tenant(TENANT, "t", CREATED))
    store.put_meta("k", "v")
    g, u = group(uid(1), "G"), user(uid(2), "U", "u@x.example")
    insert_all(store, [g, u])
    add_members(store, g.id, [u])
    write(store, lambda tx: (tx.add_owner(g.id, u.id, "user"), tx.assign_role(u.id, uid(7)),
                             tx.put_application(StoredApp(TENANT, uid(8), "app", {"s": 1}, CREATED))))
    reads = [
        lambda: store.get_tenant(TENANT),
        lambda: store.list_tenants(),
        lambda: store.get_meta("k"),
        lambda: store.get(TENANT, u.id),
        lambda: store.get_by_upn(TENANT, "U@X.example"),
        lambda: store.get_many(TENANT, [u.id, g.id]),
        lambda: store.list_objects(TENANT, ("user", "group"), ListQuery(count=True)),
        lambda: store.list_members(TENANT, g.id, ListQuery()),
        lambda: store.list_owners(TENANT, g.id, ListQuery()),
        lambda: store.list_member_of(TENANT, u.id, ListQuery()),
        lambda: store.is_member(TENANT, g.id, u.id),
        lambda: store.is_owner(TENANT, g.id, u.id),
        lambda: store.get_application(TENANT, uid(8)),
        lambda: store.list_applications(TENANT),
        lambda: store.role_ids(TENANT, u.id),
        lambda: store.list_role_assignments(TENANT),
    ]
    for read in reads:
        synced = store.sync(read())
        awaited = run(read())
        assert synced == awaited
        assert synced not in (None, [], False)  # each read found what was written


def test_write_sync_returns_and_undoes_a_raising_function(store: Store) -> None:
    u = user(uid(1), "U")
    assert store.write_sync(TENANT, lambda tx: (tx.insert(u), "done")[1]) == "done"

    def fail(tx: Txn) -> None:
        tx.insert(user(uid(2), "V"))
        raise Boom("after writing")

    with pytest.raises(Boom):
        store.write_sync(TENANT, fail)
    assert store.sync(store.get(TENANT, uid(2))) is None
    assert store.sync(store.get(TENANT, uid(1))) == u


# -- objects ------------------------------------------------------------------------------------------------
def test_insert_get_update_and_upn_lookup(store: Store) -> None:
    props: dict[str, Any] = {"accountEnabled": True, "businessPhones": ["+1 555"], "nested": {"a": [1, 2.5, None]}, "city": "Zürich 日本"}
    u = user(uid(1), "Ann Example", "Ann@Contoso.example", **props)
    insert_all(store, [u])
    assert run(store.get(TENANT, u.id)) == u
    for spelling in ("ann@contoso.example", "ANN@CONTOSO.EXAMPLE", "Ann@Contoso.example"):
        assert run(store.get_by_upn(TENANT, spelling)) == u
    assert run(store.get_by_upn(OTHER_TENANT, "ann@contoso.example")) is None
    assert run(store.get(OTHER_TENANT, u.id)) is None
    assert run(store.get(TENANT, uid(2))) is None

    def rename(tx: Txn) -> None:
        obj = tx.get(u.id)
        assert obj is not None and obj == u
        obj.props["displayName"] = "Ann Renamed"
        obj.props["userPrincipalName"] = "ann.r@contoso.example"
        del obj.props["city"]
        tx.update(obj)

    write(store, rename)
    got = run(store.get(TENANT, u.id))
    assert got is not None and got.props["displayName"] == "Ann Renamed" and "city" not in got.props
    assert run(store.get_by_upn(TENANT, "ann@contoso.example")) is None
    assert run(store.get_by_upn(TENANT, "ANN.R@contoso.example")) == got
    assert [o.props["displayName"] for o in run(store.list_objects(TENANT, ("user",), ListQuery())).items] == ["Ann Renamed"]


def test_txn_view_sees_its_own_transaction(store: Store) -> None:
    g, u = group(uid(1), "G"), user(uid(2), "U", "u@x.example")

    def fn(tx: Txn) -> tuple[Any, ...]:
        tx.insert(g)
        tx.insert(u)
        tx.add_member(g.id, u.id, "user")
        tx.add_owner(g.id, u.id, "user")
        peeked = tx.peek(g.id)
        return (peeked is not None and peeked.id, tx.get_by_upn("U@X.EXAMPLE") == u, tx.has_member(g.id, u.id),
                tx.has_owner(g.id, u.id), tx.count_owners(g.id), tx.has_member(g.id, uid(9)))

    assert write(store, fn) == (g.id, True, True, True, 1, False)


def test_ancestors_follow_nested_groups(store: Store) -> None:
    a, b, c, d = (group(uid(i), n) for i, n in enumerate("ABCD", 1))
    insert_all(store, [a, b, c, d])
    add_members(store, a.id, [b])
    add_members(store, b.id, [c])
    add_members(store, d.id, [c])
    assert write(store, lambda tx: tx.ancestors(c.id)) == {a.id, b.id, d.id}
    assert write(store, lambda tx: tx.ancestors(a.id)) == set()


def _soft_delete(store: Store, oid: str, when: str | None) -> None:
    def fn(tx: Txn) -> None:
        obj = tx.get(oid)
        assert obj is not None
        obj.deleted = when
        tx.update(obj)

    write(store, fn)


def test_soft_deleted_objects_leave_listings_but_not_get(store: Store) -> None:
    g, u, v = group(uid(1), "G"), user(uid(2), "U"), user(uid(3), "V")
    g2 = group(uid(4), "G2")
    insert_all(store, [g, u, v, g2])
    add_members(store, g.id, [u, v])
    add_members(store, g2.id, [u])
    write(store, lambda tx: tx.add_owner(g.id, u.id, "user"))
    _soft_delete(store, u.id, "2024-06-01T00:00:00Z")
    _soft_delete(store, g2.id, "2024-06-01T00:00:00Z")
    got = run(store.get(TENANT, u.id))
    assert got is not None and got.deleted == "2024-06-01T00:00:00Z"
    assert ids(run(store.get_many(TENANT, [u.id])) ) == [u.id]
    assert ids(run(store.list_objects(TENANT, ("user", "group"), ListQuery())).items) == [g.id, v.id]
    assert run(store.list_objects(TENANT, ("user",), ListQuery(count=True))).count == 1
    assert ids(run(store.list_members(TENANT, g.id, ListQuery())).items) == [v.id]
    assert run(store.list_members(TENANT, g.id, ListQuery(count=True))).count == 1
    assert ids(run(store.list_owners(TENANT, g.id, ListQuery())).items) == []
    assert ids(run(store.list_member_of(TENANT, u.id, ListQuery())).items) == [g.id]  # g2 is deleted
    assert write(store, lambda tx: tx.count_owners(g.id)) == 0
    # the edges survive a soft delete: restoring brings the object back into every listing
    _soft_delete(store, u.id, None)
    _soft_delete(store, g2.id, None)
    assert ids(run(store.list_members(TENANT, g.id, ListQuery())).items) == [u.id, v.id]
    assert ids(run(store.list_owners(TENANT, g.id, ListQuery())).items) == [u.id]
    assert ids(run(store.list_member_of(TENANT, u.id, ListQuery())).items) == [g.id, g2.id]


def test_purge_removes_the_object_and_its_edges_both_ways(store: Store) -> None:
    g1, g2, u, v = group(uid(1), "G1"), group(uid(2), "G2"), user(uid(3), "U", "u@x.example"), user(uid(4), "V")
    insert_all(store, [g1, g2, u, v])
    add_members(store, g1.id, [u, v, g2])
    add_members(store, g2.id, [u])
    write(store, lambda tx: (tx.add_owner(g1.id, u.id, "user"), tx.add_owner(g2.id, v.id, "user")))
    write(store, lambda tx: tx.purge(u.id))
    assert run(store.get(TENANT, u.id)) is None
    assert run(store.get_by_upn(TENANT, "u@x.example")) is None
    assert not run(store.is_member(TENANT, g1.id, u.id)) and not run(store.is_member(TENANT, g2.id, u.id))
    assert not run(store.is_owner(TENANT, g1.id, u.id))
    assert ids(run(store.list_members(TENANT, g1.id, ListQuery())).items) == [g2.id, v.id]
    write(store, lambda tx: tx.purge(g2.id))  # a group: its members, its owners and its own memberships
    assert not run(store.is_member(TENANT, g1.id, g2.id)) and not run(store.is_owner(TENANT, g2.id, v.id))
    assert ids(run(store.list_member_of(TENANT, v.id, ListQuery())).items) == [g1.id]
    assert ids(run(store.list_members(TENANT, g1.id, ListQuery())).items) == [v.id]
    # the UPN and the id are free again
    insert_all(store, [user(u.id, "U again", "U@x.example")])
    again = run(store.get_by_upn(TENANT, "u@x.example"))
    assert again is not None and again.props["displayName"] == "U again"
    assert not run(store.is_member(TENANT, g1.id, u.id))  # no edge came back with the id


def test_get_many_skips_unknown_ids_and_takes_more_than_500(store: Store) -> None:
    objs = [user(uid(i), f"user {i}") for i in range(1, 1201)]
    insert_all(store, objs)
    asked = [o.id for o in objs[::-1]] + [uid(100_000 + i) for i in range(300)]
    got = run(store.get_many(TENANT, asked))
    assert sorted(ids(got)) == sorted(o.id for o in objs)
    assert {o.id: o for o in got}[uid(7)] == objs[6]
    assert run(store.get_many(TENANT, [])) == []
    assert run(store.get_many(OTHER_TENANT, [uid(1)])) == []
    assert ids(run(store.get_many(TENANT, iter([uid(5), uid(999_999)])))) == [uid(5)]


# -- uniqueness ---------------------------------------------------------------------------------------------
def _no_sql_words(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), *(str(a) for a in exc.args)):
        for word in SQL_WORDS:
            assert word.lower() not in text.lower(), (word, text)


def test_duplicate_upn_is_a_conflict_naming_the_property(store: Store) -> None:
    def two(tx: Txn) -> None:
        tx.insert(user(uid(1), "A", "same@x.example"))
        tx.insert(user(uid(2), "B", "SAME@x.example"))

    with pytest.raises(Conflict) as info:
        write(store, two)
    assert info.value.what == "userPrincipalName"
    _no_sql_words(info.value)
    assert run(store.get(TENANT, uid(1))) is None  # the whole write function was undone
    # across writes, and by update
    insert_all(store, [user(uid(1), "A", "same@x.example"), user(uid(2), "B", "other@x.example")])
    with pytest.raises(Conflict) as info:
        insert_all(store, [user(uid(3), "C", "Same@X.example")])
    assert info.value.what == "userPrincipalName"

    def clash(tx: Txn) -> None:
        obj = tx.get(uid(2))
        assert obj is not None
        obj.props["userPrincipalName"] = "same@X.EXAMPLE"
        tx.update(obj)

    with pytest.raises(Conflict) as info:
        write(store, clash)
    assert info.value.what == "userPrincipalName"
    _no_sql_words(info.value)
    got = run(store.get(TENANT, uid(2)))
    assert got is not None and got.props["userPrincipalName"] == "other@x.example"
    # the same UPN in another tenant is no conflict
    insert_all(store, [user(uid(1), "A", "same@x.example", tenant=OTHER_TENANT)], tenant=OTHER_TENANT)


def test_duplicate_id_is_a_conflict_on_id(store: Store) -> None:
    insert_all(store, [user(uid(1), "A")])
    with pytest.raises(Conflict) as info:
        insert_all(store, [group(uid(1), "G")])
    assert info.value.what == "id"
    _no_sql_words(info.value)
    got = run(store.get(TENANT, uid(1)))
    assert got is not None and got.type == "user"


@pytest.mark.parametrize("relation", ["members", "owners"])
def test_edges_add_and_remove_say_whether_they_changed(store: Store, relation: str) -> None:
    g, u = group(uid(1), "G"), user(uid(2), "U")
    insert_all(store, [g, u])

    def add(tx: Txn) -> bool:
        return tx.add_member(g.id, u.id, "user") if relation == "members" else tx.add_owner(g.id, u.id, "user")

    def remove(tx: Txn) -> bool:
        return tx.remove_member(g.id, u.id) if relation == "members" else tx.remove_owner(g.id, u.id)

    check = store.is_member if relation == "members" else store.is_owner
    assert write(store, add) is True
    assert write(store, add) is False
    assert write(store, lambda tx: (add(tx), add(tx))) == (False, False)
    assert run(check(TENANT, g.id, u.id)) is True
    assert write(store, remove) is True
    assert write(store, remove) is False
    assert run(check(TENANT, g.id, u.id)) is False
    assert write(store, lambda tx: (add(tx), add(tx), remove(tx), remove(tx))) == (True, False, True, False)


# -- atomicity ------------------------------------------------------------------------------------------------
def test_a_raising_write_in_a_batch_is_undone_alone(store: Store) -> None:
    g = group(uid(1), "G")
    a, b, c = user(uid(2), "A"), user(uid(3), "B"), user(uid(4), "C")
    insert_all(store, [g, a])

    def ok(obj: StoredObject) -> Any:
        def fn(tx: Txn) -> str:
            tx.insert(obj)
            tx.add_member(g.id, obj.id, "user")
            tx.record(Change(g.id, "group", "addMember", obj.id))
            return obj.id

        return fn

    def fail(tx: Txn) -> None:
        obj = tx.get(g.id)
        assert obj is not None
        obj.props["displayName"] = "renamed by a failed write"
        tx.update(obj)
        tx.add_member(g.id, a.id, "user")
        tx.add_owner(g.id, a.id, "user")
        tx.record(Change(g.id, "group", "addMember", a.id))
        raise Boom("after writing")

    def conflict(tx: Txn) -> None:
        tx.insert(user(uid(5), "D", "d@x.example"))
        tx.insert(user(uid(6), "E", "D@X.example"))

    async def batch() -> list[Any]:
        # one loop turn: every write joins the same batch (one transaction)
        futs = [store.write(TENANT, ok(b)), store.write(TENANT, fail), store.write(TENANT, conflict), store.write(TENANT, ok(c))]
        return await asyncio.gather(*futs, return_exceptions=True)

    results = run(batch())
    assert results[0] == b.id and results[3] == c.id
    assert isinstance(results[1], Boom)  # the write function's own exception, unchanged
    assert isinstance(results[2], Conflict) and results[2].what == "userPrincipalName"
    got = run(store.get(TENANT, g.id))
    assert got is not None and got.props["displayName"] == "G"
    assert ids(run(store.list_members(TENANT, g.id, ListQuery())).items) == [b.id, c.id]
    assert not run(store.is_owner(TENANT, g.id, a.id))
    assert run(store.get_many(TENANT, [uid(5), uid(6)])) == []


def test_checked_writes(store: Store) -> None:
    g, u, v = group(uid(1), "G"), user(uid(2), "U"), user(uid(3), "V")
    insert_all(store, [g, u, v])

    def edge(op: str, other: str, relation: str = "members") -> Any:
        def check(view: TxnView) -> EdgeWrite:
            assert view.peek(g.id) is not None
            return EdgeWrite(relation, op, g.id, other, "user", Change(g.id, "group", op), lambda: Unchanged(op))

        return check

    def refuse(view: TxnView) -> EdgeWrite:
        if not view.has_member(g.id, v.id):
            raise LookupError("not found")
        return EdgeWrite("members", "add", g.id, v.id, "user")

    async def batch() -> list[Any]:
        futs = [store.write_one(TENANT, edge("add", u.id)), store.write_one(TENANT, refuse),
                store.write_one(TENANT, edge("add", u.id)), store.write_one(TENANT, edge("add", v.id, "owners"))]
        return await asyncio.gather(*futs, return_exceptions=True)

    first, refused, again, owner = run(batch())
    assert first is None and owner is None
    assert isinstance(refused, LookupError)
    assert isinstance(again, Unchanged) and again.args == ("add",)  # the edge existed: nothing changed
    assert ids(run(store.list_members(TENANT, g.id, ListQuery())).items) == [u.id]
    assert run(store.is_owner(TENANT, g.id, v.id))

    async def removals() -> list[Any]:
        futs = [store.write_one(TENANT, edge("remove", u.id)), store.write_one(TENANT, edge("remove", u.id)),
                store.write_one(TENANT, edge("remove", v.id, "owners"))]
        return await asyncio.gather(*futs, return_exceptions=True)

    done, missing, owner_gone = run(removals())
    assert done is None and owner_gone is None and isinstance(missing, Unchanged) and missing.args == ("remove",)
    assert not run(store.is_member(TENANT, g.id, u.id)) and not run(store.is_owner(TENANT, g.id, v.id))

    # without ``unchanged`` a no-op is silent
    async def quiet() -> None:
        await store.write_one(TENANT, lambda view: EdgeWrite("members", "remove", g.id, u.id))

    assert run(quiet()) is None
    assert not run(store.is_member(TENANT, g.id, u.id))


# -- change records -----------------------------------------------------------------------------------------------
def test_change_records_follow_their_write(store: Store, request: pytest.FixtureRequest) -> None:
    """A failed write's records go with it; a checked write records only when its edge changed."""
    g, a, b = group(uid(1), "G"), user(uid(2), "A"), user(uid(3), "B")
    insert_all(store, [g, a, b])

    def ok(tx: Txn) -> None:
        tx.add_member(g.id, a.id, "user")
        tx.record(Change(g.id, "group", "addMember", a.id))

    def fail(tx: Txn) -> None:
        tx.add_member(g.id, b.id, "user")
        tx.record(Change(g.id, "group", "addMember", b.id))
        raise Boom("after recording")

    def edge(op: str, other: str) -> Any:
        return lambda view: EdgeWrite("members", op, g.id, other, "user", Change(g.id, "group", op, other), lambda: Unchanged(op))

    def refuse(view: TxnView) -> EdgeWrite:
        raise LookupError("refused")

    async def batch() -> list[Any]:
        futs = [store.write(TENANT, ok), store.write(TENANT, fail), store.write_one(TENANT, edge("add", a.id)),
                store.write_one(TENANT, refuse), store.write_one(TENANT, edge("add", b.id)), store.write_one(TENANT, edge("remove", uid(9)))]
        return await asyncio.gather(*futs, return_exceptions=True)

    results = [type(r) if isinstance(r, Exception) else r for r in run(batch())]
    assert results == [None, Boom, Unchanged, LookupError, None, Unchanged]
    changes = run(store.list_changes(TENANT))
    assert [(r.change.action, r.change.related_id) for r in changes] == [("addMember", a.id), ("add", b.id)]
    assert changes[0].seq < changes[1].seq


def test_change_records(store: Store, request: pytest.FixtureRequest) -> None:
    """``Txn.record`` lands with the write and ``list_changes`` reads it back in order, per tenant."""
    g, u = group(uid(1), "G"), user(uid(2), "U")
    insert_all(store, [g, u])
    insert_all(store, [group(uid(1), "G", tenant=OTHER_TENANT)], tenant=OTHER_TENANT)
    first = Change(g.id, "group", "create", actor="admin@x.example", detail={"displayName": "G", "n": [1, 2]})
    write(store, lambda tx: tx.record(first))
    write(store, lambda tx: (tx.add_member(g.id, u.id, "user"), tx.record(Change(g.id, "group", "addMember", u.id, "app"))))
    write(store, lambda tx: tx.record(Change(g.id, "group", "update")), tenant=OTHER_TENANT)

    def fail(tx: Txn) -> None:
        tx.record(Change(g.id, "group", "delete"))
        raise Boom("after recording")

    with pytest.raises(Boom):
        store.write_sync(TENANT, fail)
    store.write_sync(TENANT, lambda tx: tx.record(Change(u.id, "user", "softDelete")))
    changes = run(store.list_changes(TENANT))
    assert [r.change for r in changes] == [first, Change(g.id, "group", "addMember", u.id, "app"), Change(u.id, "user", "softDelete")]
    seqs = [r.seq for r in changes]
    assert seqs == sorted(set(seqs)) and all(r.at for r in changes)
    assert [r.change for r in run(store.list_changes(TENANT, after=seqs[0]))] == [r.change for r in changes[1:]]
    assert [r.change for r in run(store.list_changes(TENANT, after=seqs[0], limit=1))] == [changes[1].change]
    assert run(store.list_changes(TENANT, after=seqs[-1])) == []
    assert [r.change.action for r in run(store.list_changes(OTHER_TENANT))] == ["update"]
    assert store.sync(store.list_changes(TENANT)) == changes
