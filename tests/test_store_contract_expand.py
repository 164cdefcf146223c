"""The storage contract, part 4: ``list_edges_many``, the one read behind ``$expand`` of a page.

On every backend of the store seam (graphdir.store.base): for each anchor its first ``n`` live
related objects in id order, anchors without any absent, other tenants and deleted objects never
shown, repeated anchors read once, and more anchors than one statement takes. Through the seam only.
"""

from __future__ import annotations

import dataclasses

from graphdir.store.base import Store, StoredObject, Txn
from store_contract_helpers import (
    OTHER_TENANT,
    TENANT,
    group,
    ids,
    insert_all,
    run,
    store_fixture,  # noqa: F401 - the `store` fixture
    uid,
    user,
    write,
)


def _edges(store: Store, members: dict[str, list[StoredObject]], owners: dict[str, list[StoredObject]]) -> None:
    def fn(tx: Txn) -> None:
        for g, objs in members.items():
            for o in objs:
                assert tx.add_member(g, o.id, o.type)
        for g, objs in owners.items():
            for o in objs:
                assert tx.add_owner(g, o.id, o.type)

    write(store, fn)


def test_each_anchor_gets_its_first_items_in_id_order(store: Store) -> None:
    g1, g2, g3, empty = (group(uid(900 + i), f"g{i}") for i in range(4))
    users = [user(uid(n), f"u{n}") for n in (50, 10, 40, 30, 20)]
    sp = StoredObject(TENANT, uid(5), "servicePrincipal", {"displayName": "sp"}, users[0].created)
    insert_all(store, [g1, g2, g3, empty, *users, sp])
    _edges(store, {g1.id: [*users, sp], g2.id: users[:2], g3.id: [g1]}, {g1.id: users[3:], g2.id: [sp]})
    # the same ids in another tenant never show
    insert_all(store, [group(g1.id, "other", tenant=OTHER_TENANT), user(uid(1), "x", tenant=OTHER_TENANT)], tenant=OTHER_TENANT)
    write(store, lambda tx: tx.add_member(g1.id, uid(1), "user"), tenant=OTHER_TENANT)

    got = run(store.list_edges_many(TENANT, "members", [g1.id, g2.id, g3.id, empty.id, uid(999)], 3))
    assert {k: ids(v) for k, v in got.items()} == {g1.id: [uid(5), uid(10), uid(20)], g2.id: [uid(10), uid(50)], g3.id: [g1.id]}
    assert got[g1.id][0] == sp and got[g3.id][0].props == g1.props
    assert all(o.tenant_id == TENANT for v in got.values() for o in v)
    owners = run(store.list_edges_many(TENANT, "owners", [g1.id, g2.id], 20))
    assert {k: ids(v) for k, v in owners.items()} == {g1.id: [uid(20), uid(30)], g2.id: [uid(5)]}
    member_of = run(store.list_edges_many(TENANT, "memberOf", [uid(10), uid(50), uid(30), g1.id, uid(999)], 20))
    assert {k: ids(v) for k, v in member_of.items()} == {uid(10): [g1.id, g2.id], uid(50): [g1.id, g2.id], uid(30): [g1.id], g1.id: [g3.id]}
    assert run(store.list_edges_many(TENANT, "members", [], 20)) == {}
    assert {k: ids(v) for k, v in run(store.list_edges_many(TENANT, "members", [g2.id, g2.id], 1)).items()} == {g2.id: [uid(10)]}


def test_deleted_objects_are_skipped_before_the_limit(store: Store) -> None:
    g = group(uid(900), "g")
    users = [user(uid(n), f"u{n}") for n in range(1, 6)]
    insert_all(store, [g, *users])
    _edges(store, {g.id: users}, {})
    write(store, lambda tx: [tx.update(dataclasses.replace(u, deleted="2024-06-01T00:00:00Z")) for u in users[:2]])
    assert ids(run(store.list_edges_many(TENANT, "members", [g.id], 2))[g.id]) == [uid(3), uid(4)]
    # the anchor's own state is the caller's business: a deleted member's live groups are still read
    assert {k: ids(v) for k, v in run(store.list_edges_many(TENANT, "memberOf", [uid(1)], 20)).items()} == {uid(1): [g.id]}
    soft = group(uid(901), "soft")
    insert_all(store, [soft])
    _edges(store, {soft.id: [users[4]]}, {})
    write(store, lambda tx: tx.update(dataclasses.replace(soft, deleted="2024-06-01T00:00:00Z")))
    assert ids(run(store.list_edges_many(TENANT, "memberOf", [uid(5)], 20))[uid(5)]) == [g.id]


def test_a_page_of_many_anchors_and_a_large_group(store: Store) -> None:
    groups = [group(uid(10_000 + i), f"g{i}") for i in range(1_200)]
    users = [user(uid(i), f"u{i}") for i in range(1, 61)]
    insert_all(store, [*groups, *users])
    _edges(store, {g.id: [users[i % 60]] for i, g in enumerate(groups)} | {groups[0].id: users}, {})
    got = run(store.list_edges_many(TENANT, "members", [g.id for g in groups], 20))
    assert len(got) == 1_200
    assert ids(got[groups[0].id]) == [uid(i) for i in range(1, 21)]
    assert all(ids(got[g.id]) == [uid(i % 60 + 1)] for i, g in enumerate(groups[1:], 1))
