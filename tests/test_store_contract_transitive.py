"""The storage contract, part 3: transitive membership, on every backend of the store seam.

``transitive_group_ids``, ``list_transitive_member_of`` and ``list_transitive_members``
(graphdir.store.transitive): chains, diamonds (a member reached along two paths listed once, until
the last path goes), a wide fan-out paged across the per-group arms in id and displayName order,
soft-deleted groups neither listed nor walked through, casts, ``$filter``, ``$count``, rendered
pages, and a property test of random nestings against a reference model. Through the seam only.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphdir.odata.options import parse_options
from graphdir.odata.serialize import renderings
from graphdir.query import ListQuery
from graphdir.store.base import Store, StoredObject, Txn
from store_contract_helpers import (
    OTHER_TENANT,
    TENANT,
    add_members,
    all_pages,
    group,
    ids,
    insert_all,
    name_order,
    run,
    store_fixture,  # noqa: F401 - the `store` fixture
    uid,
    user,
    write,
)


def members_of(store: Store, gid: str, q: ListQuery | None = None) -> list[str]:
    items, _ = all_pages(lambda q: store.list_transitive_members(TENANT, gid, q), q or ListQuery(top=3))
    return ids(items)


def groups_of(store: Store, oid: str, q: ListQuery | None = None) -> list[str]:
    items, _ = all_pages(lambda q: store.list_transitive_member_of(TENANT, oid, q), q or ListQuery(top=2))
    return ids(items)


def remove(store: Store, gid: str, mid: str) -> None:
    write(store, lambda tx: tx.remove_member(gid, mid))


def soft_delete(store: Store, obj: StoredObject) -> None:
    def fn(tx: Txn) -> None:
        o = tx.get(obj.id)
        assert o is not None
        o.deleted = "2024-06-01T00:00:00Z"
        tx.update(o)

    write(store, fn)


@pytest.fixture(name="diamond")
def diamond_fixture(store: Store) -> dict[str, StoredObject]:
    """top ⊃ left, right; left ⊃ bottom; right ⊃ bottom; bottom ⊃ u1, u2; left ⊃ u3; top ⊃ u4."""
    g = {n: group(uid(i), n) for i, n in enumerate(["top", "left", "right", "bottom"], start=1)}
    u = {n: user(uid(10 + i), n) for i, n in enumerate(["u1", "u2", "u3", "u4"], start=1)}
    insert_all(store, [*g.values(), *u.values()])
    add_members(store, g["top"].id, [g["left"], g["right"], u["u4"]])
    add_members(store, g["left"].id, [g["bottom"], u["u3"]])
    add_members(store, g["right"].id, [g["bottom"]])
    add_members(store, g["bottom"].id, [u["u1"], u["u2"]])
    return {**g, **u}


def test_diamond_lists_each_member_once(store: Store, diamond: dict[str, StoredObject]) -> None:
    d = diamond
    every = ["left", "right", "bottom", "u1", "u2", "u3", "u4"]
    assert members_of(store, d["top"].id) == sorted(d[n].id for n in every)
    assert run(store.list_transitive_members(TENANT, d["top"].id, ListQuery(count=True))).count == 7
    assert members_of(store, d["left"].id) == sorted(d[n].id for n in ["bottom", "u1", "u2", "u3"])
    assert members_of(store, d["bottom"].id) == sorted(d[n].id for n in ["u1", "u2"])
    assert run(store.transitive_group_ids(TENANT, d["u1"].id)) == {d[n].id for n in ["top", "left", "right", "bottom"]}
    assert groups_of(store, d["u3"].id) == sorted([d["top"].id, d["left"].id])
    assert groups_of(store, d["bottom"].id) == sorted(d[n].id for n in ["top", "left", "right"])
    assert run(store.transitive_group_ids(TENANT, d["top"].id)) == set()


def test_a_member_stays_until_the_last_path_is_removed(store: Store, diamond: dict[str, StoredObject]) -> None:
    d = diamond
    remove(store, d["left"].id, d["bottom"].id)
    assert d["u1"].id in members_of(store, d["top"].id)  # still through right
    assert run(store.transitive_group_ids(TENANT, d["u1"].id)) == {d[n].id for n in ["top", "right", "bottom"]}
    remove(store, d["right"].id, d["bottom"].id)
    assert members_of(store, d["top"].id) == sorted(d[n].id for n in ["left", "right", "u3", "u4"])
    assert run(store.transitive_group_ids(TENANT, d["u1"].id)) == {d["bottom"].id}
    assert members_of(store, d["left"].id) == [d["u3"].id]


def test_soft_deleted_groups_are_neither_listed_nor_walked_through(store: Store, diamond: dict[str, StoredObject]) -> None:
    d = diamond
    soft_delete(store, d["left"])
    assert members_of(store, d["top"].id) == sorted(d[n].id for n in ["right", "bottom", "u1", "u2", "u4"])  # u3 only via left
    assert groups_of(store, d["u3"].id) == []
    assert groups_of(store, d["u1"].id) == sorted(d[n].id for n in ["top", "right", "bottom"])
    soft_delete(store, d["u1"])
    assert d["u1"].id not in members_of(store, d["top"].id)


def test_casts_filter_and_count_apply_to_the_merged_listing(store: Store, diamond: dict[str, StoredObject]) -> None:
    d = diamond
    users = run(store.list_transitive_members(TENANT, d["top"].id, ListQuery(types=("user",), count=True)))
    assert (ids(users.items), users.count) == (sorted(d[n].id for n in ["u1", "u2", "u3", "u4"]), 4)
    groups = run(store.list_transitive_members(TENANT, d["top"].id, ListQuery(types=("group",), count=True)))
    assert (ids(groups.items), groups.count) == (sorted(d[n].id for n in ["left", "right", "bottom"]), 3)
    q = parse_options([("$filter", "startswith(displayName,'u')"), ("$count", "true")], resource="directoryObject", eventual=True, relationship=True).query
    page = run(store.list_transitive_members(TENANT, d["top"].id, q))
    assert (ids(page.items), page.count) == (sorted(d[n].id for n in ["u1", "u2", "u3", "u4"]), 4)
    q = parse_options([("$filter", "displayName eq 'left'"), ("$count", "true")], resource="group", eventual=True, relationship=True).query
    assert ids(run(store.list_transitive_member_of(TENANT, d["u1"].id, q)).items) == [d["left"].id]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("top", [1, 4, 7, 100])
def test_wide_fan_out_pages_every_member_once_in_order(store: Store, top: int, descending: bool) -> None:
    """30 nested groups, 4 users each, every user in two of them: the arms merge into one order."""
    root = group(uid(1), "root")
    nested = [group(uid(100 + i), f"N{i:02}") for i in range(30)]
    people = [user(uid(1000 + i), ["zed", "Alpha", "beta", "alpha", "Émile", "bob"][i % 6] + str(i % 7)) for i in range(60)]
    insert_all(store, [root, *nested, *people])
    add_members(store, root.id, nested)
    for i, g in enumerate(nested):
        add_members(store, g.id, [people[(2 * i + k) % 60] for k in range(4)])
    every = [*nested, *people]
    assert members_of(store, root.id, ListQuery(top=top, descending=descending)) == sorted(ids(every), reverse=descending)
    by_name = ListQuery(top=top, order_by="displayName", descending=descending)
    assert members_of(store, root.id, by_name) == name_order(every, descending)


def test_rendered_pages_match_the_objects(store: Store, diamond: dict[str, StoredObject]) -> None:
    render = renderings()
    plain = run(store.list_transitive_members(TENANT, diamond["top"].id, ListQuery(top=5)))
    page = run(store.list_transitive_members(TENANT, diamond["top"].id, ListQuery(top=5, rendered=render.stored)))
    fn = render.render[render.stored]
    assert page.rendered == [(o.type, fn(o.type, o.id, o.props)) for o in plain.items]
    assert page.next_after == plain.next_after


def test_tenants_are_apart(store: Store) -> None:
    mine, theirs, someone = group(uid(1), "g"), group(uid(2), "h", tenant=OTHER_TENANT), user(uid(3), "u")
    insert_all(store, [mine, someone])
    insert_all(store, [theirs, user(uid(3), "u", tenant=OTHER_TENANT)], OTHER_TENANT)
    add_members(store, mine.id, [someone])
    write(store, lambda tx: tx.add_member(theirs.id, someone.id, "user"), OTHER_TENANT)
    assert run(store.transitive_group_ids(TENANT, someone.id)) == {mine.id}
    assert run(store.transitive_group_ids(OTHER_TENANT, someone.id)) == {theirs.id}


# -- random nestings against a reference model -----------------------------------------------------------------------
N_GROUPS, N_USERS = 6, 4
EDGES = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "delete"]), st.integers(0, N_GROUPS - 1), st.integers(0, N_GROUPS + N_USERS - 1)),
    max_size=25,
)


def reference(edges: set[tuple[int, int]], deleted: set[int], node: int) -> set[int]:
    """Everything under ``node`` reached through live groups (the model of transitiveMembers)."""
    out: set[int] = set()
    todo = [node]
    while todo:
        g = todo.pop()
        for a, b in edges:
            if a == g and b not in deleted and b not in out:
                out.add(b)
                if b < N_GROUPS:
                    todo.append(b)
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=EDGES)
def test_random_nestings_match_a_reference_model(store: Store, ops: list[tuple[str, int, int]]) -> None:
    """Edges are added only where they make no cycle (the directory refuses those before the store)."""
    base = uid()[:-4]
    nodes: list[StoredObject] = [group(f"{base}{i:04x}", f"g{i}") for i in range(N_GROUPS)]
    nodes += [user(f"{base}{N_GROUPS + i:04x}", f"u{i}") for i in range(N_USERS)]
    insert_all(store, nodes)
    edges: set[tuple[int, int]] = set()
    deleted: set[int] = set()
    for op, g, m in ops:
        if op == "delete":
            if m not in deleted:
                soft_delete(store, nodes[m])
                deleted.add(m)
        elif op == "add" and m != g and g not in reference(edges, set(), m) and (g, m) not in edges:
            write(store, lambda tx, g=g, m=m: tx.add_member(nodes[g].id, nodes[m].id, nodes[m].type))
            edges.add((g, m))
        elif op == "remove" and (g, m) in edges:
            remove(store, nodes[g].id, nodes[m].id)
            edges.discard((g, m))
    live = [i for i in range(len(nodes)) if i not in deleted]
    for g in (i for i in live if i < N_GROUPS):
        want = sorted(nodes[i].id for i in reference(edges, deleted, g))
        assert members_of(store, nodes[g].id, ListQuery(top=2)) == want
    for x in live:
        want_groups = {nodes[g].id for g in live if g < N_GROUPS and x in reference(edges, deleted, g)}
        assert run(store.transitive_group_ids(TENANT, nodes[x].id)) == want_groups
        assert groups_of(store, nodes[x].id) == sorted(want_groups)
