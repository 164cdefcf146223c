"""The storage contract, part 2: listings, on every backend of the store seam (graphdir.store.base).

Keyset paging (every item exactly once, in the same order on every backend), ``$orderby=displayName``
with ASCII-only case folding (SQLite's NOCASE), ``$count``, type casts, ``$filter`` and ``$search``
as the web layer parses them (:func:`graphdir.odata.options.parse_options`), positions that do not
fit the order, membership tests, a property test of add/remove sequences and a bulk-loaded group.
Through the seam only: no connection, no SQL.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphdir.odata.options import parse_options
from graphdir.odata.serialize import renderings
from graphdir.query import ListQuery
from graphdir.store.base import EdgeWrite, InvalidPosition, Store, StoredObject, StoreError, Txn, TxnView
from store_contract_helpers import (
    OTHER_TENANT,
    SQL_WORDS,
    TENANT,
    ListFn,
    add_members,
    all_pages,
    group,
    ids,
    insert_all,
    name_order,
    nocase,
    run,
    store_fixture,  # noqa: F401 - the `store` fixture
    uid,
    user,
    write,
)

#: mixed case, non-ASCII, ASCII punctuation between 'Z' and 'a', ties under NOCASE, an empty name
NAMES = [
    "alice", "Bob", "ÉMILE", "émile", "émilie", "Zoë", "zed", "Zulu", "Ørjan", "Ärger", "apple", "APPLE", "Apple",
    "ß", "", "Ω", "日本", "a b", "a-b", "a_b", "Ab", "aB", "[bracket]", "_under", "~tilde",
]


def _listings(store: Store, g: str, anchor: str) -> dict[str, ListFn]:
    """Every listing of the seam, bound to the objects of :func:`_graph`."""
    return {
        "objects": lambda q: store.list_objects(TENANT, ("user",), q),
        "members": lambda q: store.list_members(TENANT, g, q),
        "owners": lambda q: store.list_owners(TENANT, g, q),
        "memberOf": lambda q: store.list_member_of(TENANT, anchor, q),
    }


def _graph(store: Store, names: list[str]) -> tuple[str, str, list[StoredObject], list[StoredObject]]:
    """One group whose members and owners are one user per name, and one user (the anchor) member of
    one group per name; plus look-alikes in another tenant. Returns (group, anchor, users, groups)."""
    g = group(uid(), "the group")
    anchor = user(uid(), "anchor")
    users = [user(uid(), n, mail=f"m{i}@x.example") for i, n in enumerate(names)]
    groups = [group(uid(), n) for n in names]
    insert_all(store, [g, anchor, *users, *groups])

    def edges(tx: Txn) -> None:
        for u in users:
            tx.add_member(g.id, u.id, "user")
            tx.add_owner(g.id, u.id, "user")
        for other in groups:
            tx.add_member(other.id, anchor.id, "user")

    write(store, edges)
    # the same ids in another tenant must never show
    insert_all(store, [user(u.id, u.props["displayName"], tenant=OTHER_TENANT) for u in users[:3]], tenant=OTHER_TENANT)
    return g.id, anchor.id, users, groups


def _expected(kind: str, users: list[StoredObject], groups: list[StoredObject], anchor: str) -> list[StoredObject]:
    if kind == "objects":
        return [*users, user(anchor, "anchor")]
    return groups if kind == "memberOf" else users


@pytest.mark.parametrize("top", [1, 7, 25, 999])
def test_keyset_paging_lists_every_item_once_in_id_order(store: Store, top: int) -> None:
    g, anchor, users, groups = _graph(store, [f"name {i:02d}" for i in range(25)])
    for kind, list_fn in _listings(store, g, anchor).items():
        expected = sorted(o.id for o in _expected(kind, users, groups, anchor))
        items, pages = all_pages(list_fn, ListQuery(top=top))
        assert ids(items) == expected, kind
        assert pages == max(1, math.ceil(len(expected) / top)), kind  # no empty last page
        assert all(o.tenant_id == TENANT for o in items)


@pytest.mark.parametrize("descending", [False, True])
def test_orderby_display_name_folds_ascii_case_only(store: Store, descending: bool) -> None:
    g, anchor, users, groups = _graph(store, NAMES)
    for kind, list_fn in _listings(store, g, anchor).items():
        expected = name_order(_expected(kind, users, groups, anchor), descending)
        for top in (4, 100):
            items, _ = all_pages(list_fn, ListQuery(order_by="displayName", descending=descending, top=top))
            assert ids(items) == expected, (kind, top, [o.props["displayName"] for o in items])


def test_orderby_parsed_like_the_web_layer(store: Store) -> None:
    """``$orderby=displayName desc`` as the web layer parses it, paged with the positions it hands out."""
    users = [user(uid(), n) for n in NAMES]
    insert_all(store, users)
    q = parse_options([("$orderby", "displayName desc"), ("$top", "6")], resource="user", eventual=False).query
    items, pages = all_pages(lambda q: store.list_objects(TENANT, ("user",), q), q)
    assert ids(items) == name_order(users, descending=True)
    assert pages == math.ceil(len(NAMES) / 6)


def test_count_is_the_whole_listing_not_the_page(store: Store) -> None:
    g, anchor, users, groups = _graph(store, [f"n{i}" for i in range(12)])
    for kind, list_fn in _listings(store, g, anchor).items():
        n = len(_expected(kind, users, groups, anchor))
        page = run(list_fn(ListQuery(top=5, count=True)))
        assert (page.count, len(page.items)) == (n, 5), kind
        assert run(list_fn(ListQuery(top=5))).count is None
        nxt = run(list_fn(ListQuery(top=5, count=True, after=page.next_after)))
        assert nxt.count == n and not set(ids(nxt.items)) & set(ids(page.items))


def test_type_casts(store: Store) -> None:
    g = group(uid(), "G")
    users = [user(uid(), f"u{i}") for i in range(4)]
    subgroups = [group(uid(), f"g{i}") for i in range(3)]
    device = StoredObject(TENANT, uid(), "device", {"displayName": "d", "accountEnabled": True}, users[0].created)
    insert_all(store, [g, *users, *subgroups, device])
    add_members(store, g.id, [*users, *subgroups, device])
    write(store, lambda tx: [tx.add_owner(g.id, o.id, o.type) for o in (*users[:2], subgroups[0])])

    def listed(fn: Callable[[ListQuery], Any], types: tuple[str, ...] | None, count: bool = True) -> tuple[list[str], int | None]:
        page = run(fn(ListQuery(types=types, count=count)))
        return ids(page.items), page.count

    members = lambda q: store.list_members(TENANT, g.id, q)  # noqa: E731
    assert listed(members, ("user",)) == (sorted(o.id for o in users), 4)
    assert listed(members, ("group",)) == (sorted(o.id for o in subgroups), 3)
    assert listed(members, ("device",)) == ([device.id], 1)
    assert listed(members, ("user", "device")) == (sorted(o.id for o in (*users, device)), 5)
    assert listed(members, None) == (sorted(o.id for o in (*users, *subgroups, device)), 8)
    assert listed(lambda q: store.list_owners(TENANT, g.id, q), ("group",)) == ([subgroups[0].id], 1)
    assert listed(lambda q: store.list_objects(TENANT, ("user", "group"), q), ("group",)) == (sorted(o.id for o in (g, *subgroups)), 4)
    assert listed(lambda q: store.list_objects(TENANT, ("user",), q), ("group",)) == ([], 0)
    assert run(store.list_member_of(TENANT, subgroups[0].id, ListQuery(types=("group",)))).items[0].id == g.id


# -- $filter and $search -----------------------------------------------------------------------------------------
FILTER_PEOPLE = [
    # displayName, userPrincipalName, mail, accountEnabled
    ("Bob Smith", "bob@contoso.example", "Bob@Contoso.example", True),
    ("bob smith", "bob2@contoso.example", None, False),
    ("Alice Smithers", "Alice@Contoso.example", "alice@contoso.example", True),
    ("alan_turing", "alan@contoso.example", "al.an@fabrikam.example", False),
    ("ÉMILE", "emile1@contoso.example", "emile@contoso.example", True),
    ("émile", "emile2@contoso.example", None, True),
    ("a_b", "ab1@contoso.example", None, True),
    ("axb", "ab2@contoso.example", None, True),
    ("50% off", "pct@contoso.example", "carol@contoso.example", False),
    ("500 off", "pct2@contoso.example", None, None),
    ("Carol-Ann Jones", "CAROL@contoso.example", "c.jones@contoso.example", True),
]


def _people() -> list[StoredObject]:
    out = []
    for name, upn, mail, enabled in FILTER_PEOPLE:
        props: dict[str, Any] = {}
        if mail is not None:
            props["mail"] = mail
        if enabled is not None:
            props["accountEnabled"] = enabled
        out.append(user(uid(), name, upn, **props))
    return out


def _eq(a: Any, b: str) -> bool:
    return isinstance(a, str) and nocase(a) == nocase(b)


def _sw(a: Any, b: str) -> bool:
    return isinstance(a, str) and nocase(a).startswith(nocase(b))


Expect = Callable[[dict[str, Any]], bool]
FILTERS: list[tuple[str, Expect]] = [
    ("displayName eq 'BOB SMITH'", lambda p: _eq(p["displayName"], "bob smith")),
    ("displayName eq 'émile'", lambda p: p["displayName"] == "émile"),  # É is not folded: ASCII only
    ("startsWith(displayName, 'bo')", lambda p: _sw(p["displayName"], "bo")),
    ("startsWith(displayName, 'a_')", lambda p: _sw(p["displayName"], "a_")),  # _ is no wildcard
    ("startsWith(displayName, '50%')", lambda p: _sw(p["displayName"], "50%")),  # nor is %
    ("startsWith(displayName, 'é')", lambda p: p["displayName"].startswith("é")),
    ("mail eq 'bob@CONTOSO.example'", lambda p: _eq(p.get("mail"), "bob@contoso.example")),
    ("startsWith(mail, 'AL')", lambda p: _sw(p.get("mail"), "al")),
    ("userPrincipalName eq 'ALICE@contoso.example'", lambda p: _eq(p["userPrincipalName"], "alice@contoso.example")),
    ("startsWith(userPrincipalName, 'Bob')", lambda p: _sw(p["userPrincipalName"], "bob")),
    ("userPrincipalName in ('bob@contoso.example', 'carol@CONTOSO.example', 'nobody@x')",
     lambda p: any(_eq(p["userPrincipalName"], v) for v in ("bob@contoso.example", "carol@contoso.example"))),
    ("displayName in ('alice smithers', 'AXB')", lambda p: any(_eq(p["displayName"], v) for v in ("alice smithers", "axb"))),
    ("mail in ('CAROL@contoso.example', 'emile@contoso.example')",
     lambda p: any(_eq(p.get("mail"), v) for v in ("carol@contoso.example", "emile@contoso.example"))),
    ("accountEnabled eq true", lambda p: p.get("accountEnabled") is True),
    ("accountEnabled eq false", lambda p: p.get("accountEnabled") is False),
    ("accountEnabled eq false and startsWith(displayName, 'a')", lambda p: p.get("accountEnabled") is False and _sw(p["displayName"], "a")),
    ("startsWith(displayName, 'bob') or mail eq 'carol@contoso.example'",
     lambda p: _sw(p["displayName"], "bob") or _eq(p.get("mail"), "carol@contoso.example")),
]


@pytest.mark.parametrize(("text", "expect"), FILTERS, ids=[f for f, _ in FILTERS])
def test_filter(store: Store, text: str, expect: Expect) -> None:
    people = _people()
    g = group(uid(), "G")
    insert_all(store, [g, *people])
    add_members(store, g.id, people)
    want = sorted(o.id for o in people if expect(o.props))
    assert 0 < len(want) < len(people)  # each filter tells people apart
    for resource, fn in (("user", lambda q: store.list_objects(TENANT, ("user",), q)), ("directoryObject", lambda q: store.list_members(TENANT, g.id, q))):
        q = parse_options([("$filter", text), ("$count", "true")], resource=resource, eventual=True, relationship=resource != "user").query
        assert q.where is not None
        page = run(fn(q))
        assert (ids(page.items), page.count) == (want, len(want)), (resource, [o.props["displayName"] for o in page.items])


_WORD = re.compile(r"[ _\-.@]")


def _has_word(value: Any, token: str) -> bool:
    return isinstance(value, str) and any(w.startswith(nocase(token)) for w in _WORD.split(nocase(value)))


SEARCHES: list[tuple[str, Expect]] = [
    ('"displayName:smi"', lambda p: _has_word(p["displayName"], "smi")),
    ('"displayName:TURING"', lambda p: _has_word(p["displayName"], "turing")),
    ('"displayName:ann"', lambda p: _has_word(p["displayName"], "ann")),  # after a hyphen
    ('"mail:fabrikam"', lambda p: _has_word(p.get("mail"), "fabrikam")),  # after an @
    ('"displayName:bob" AND "mail:bob"', lambda p: _has_word(p["displayName"], "bob") and _has_word(p.get("mail"), "bob")),
    ('"displayName:alice" OR "mail:carol"', lambda p: _has_word(p["displayName"], "alice") or _has_word(p.get("mail"), "carol")),
]


@pytest.mark.parametrize(("text", "expect"), SEARCHES, ids=[s for s, _ in SEARCHES])
def test_search(store: Store, text: str, expect: Expect) -> None:
    people = _people()
    insert_all(store, people)
    want = sorted(o.id for o in people if expect(o.props))
    assert want  # each search finds someone
    q = parse_options([("$search", text), ("$count", "true")], resource="user", eventual=True).query
    page = run(store.list_objects(TENANT, ("user",), q))
    assert (ids(page.items), page.count) == (want, len(want))


def test_a_position_that_does_not_fit_the_order_is_refused(store: Store) -> None:
    g, anchor, _, _ = _graph(store, ["a", "b"])
    for kind, list_fn in _listings(store, g, anchor).items():
        for order, after in ((None, ("x", "y")), ("displayName", ("only",)), ("displayName", ("a", "b", "c"))):
            with pytest.raises(InvalidPosition) as info:
                run(list_fn(ListQuery(order_by=order, after=after)))
            assert isinstance(info.value, StoreError), kind
            assert not any(w.lower() in str(info.value).lower() for w in SQL_WORDS), str(info.value)


def test_is_member_and_is_owner(store: Store) -> None:
    g, u, v = group(uid(), "G"), user(uid(), "U"), user(uid(), "V")
    insert_all(store, [g, u, v])
    add_members(store, g.id, [u])
    write(store, lambda tx: tx.add_owner(g.id, v.id, "user"))
    assert run(store.is_member(TENANT, g.id, u.id)) is True
    assert run(store.is_member(TENANT, g.id, v.id)) is False
    assert run(store.is_owner(TENANT, g.id, v.id)) is True
    assert run(store.is_owner(TENANT, g.id, u.id)) is False
    assert run(store.is_member(TENANT, uid(), u.id)) is False
    assert run(store.is_member(OTHER_TENANT, g.id, u.id)) is False
    assert run(store.is_owner(OTHER_TENANT, g.id, v.id)) is False


def test_rendered_pages_match_the_attributes_after_an_update(store: Store) -> None:
    """``ListQuery.rendered`` pages carry each item's projection made from its current attributes."""
    render = renderings()
    users = [user(uid(), f"u{i}", f"u{i}@x.example", mail=f"u{i}@x.example") for i in range(5)]
    insert_all(store, users)

    def rename(tx: Txn) -> None:
        obj = tx.get(users[2].id)
        assert obj is not None
        obj.props["displayName"] = "renamed"
        tx.update(obj)

    write(store, rename)
    plain = run(store.list_objects(TENANT, ("user",), ListQuery(order_by="displayName")))
    page = run(store.list_objects(TENANT, ("user",), ListQuery(order_by="displayName", rendered=render.stored)))
    fn = render.render[render.stored]
    assert page.rendered == [(o.type, fn(o.type, o.id, o.props)) for o in plain.items]
    assert b"\"displayName\":\"renamed\"" in page.rendered[0][1]  # "renamed" sorts first
    assert page.next_after == plain.next_after


# -- random add/remove sequences ---------------------------------------------------------------------------------------
class Unchanged(Exception):
    pass


OPS = st.lists(st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 5), st.booleans(), st.booleans()), max_size=30)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_random_member_sequences_match_a_set(store: Store, ops: list[tuple[str, int, bool, bool]]) -> None:
    """Each op is (add|remove, member, checked write or write function, same batch as the previous op)."""
    g = group(uid(), "G")
    people = [user(uid(), f"p{i}") for i in range(6)]
    insert_all(store, [g, *people])
    model: set[str] = set()
    expected: list[Any] = []

    def op_call(op: str, mid: str, checked: bool) -> Any:
        if checked:
            def check(view: TxnView) -> EdgeWrite:
                assert view.peek(g.id) is not None
                return EdgeWrite("members", op, g.id, mid, "user", None, lambda: Unchanged(op))

            return store.write_one(TENANT, check)
        if op == "add":
            return store.write(TENANT, lambda tx: tx.add_member(g.id, mid, "user"))
        return store.write(TENANT, lambda tx: tx.remove_member(g.id, mid))

    async def apply() -> list[Any]:
        results: list[Any] = []
        pending: list[Any] = []
        for op, i, checked, join in ops:
            if not join and pending:
                results += await asyncio.gather(*pending, return_exceptions=True)
                pending = []
            pending.append(op_call(op, people[i].id, checked))
        results += await asyncio.gather(*pending, return_exceptions=True)
        return results

    for op, i, checked, _ in ops:
        mid = people[i].id
        changed = (mid not in model) if op == "add" else (mid in model)
        (model.add if op == "add" else model.discard)(mid)
        expected.append((None if changed else Unchanged) if checked else changed)

    results = run(apply())
    got = [type(r) if isinstance(r, Exception) else r for r in results]
    assert got == expected
    items, _ = all_pages(lambda q: store.list_members(TENANT, g.id, q), ListQuery(top=2))
    assert ids(items) == sorted(model)
    assert [run(store.is_member(TENANT, g.id, p.id)) for p in people] == [p.id in model for p in people]


# -- bulk ----------------------------------------------------------------------------------------------------------
def test_bulk_load_then_page_2500_members_at_999(store: Store) -> None:
    g = group(uid(), "big")
    members = [user(uid(), f"member {i:04d}") for i in range(2500)]
    store.bulk_load(TENANT, [g, *members], [(g.id, m.id, "user") for m in members])
    sizes = []
    seen: list[str] = []
    after = None
    while True:
        page = run(store.list_members(TENANT, g.id, ListQuery(top=999, after=after, count=after is None)))
        if after is None:
            assert page.count == 2500
        sizes.append(len(page.items))
        seen += ids(page.items)
        after = page.next_after
        if after is None:
            break
    assert sizes == [999, 999, 502]
    assert seen == sorted(m.id for m in members)
    assert run(store.get(TENANT, members[1234].id)) == members[1234]
    assert ids(run(store.list_member_of(TENANT, members[0].id, ListQuery())).items) == [g.id]
    named, _ = all_pages(lambda q: store.list_members(TENANT, g.id, q), ListQuery(top=999, order_by="displayName", descending=True))
    assert ids(named) == name_order(members, descending=True)
