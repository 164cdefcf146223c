"""Nested groups through both SDKs: transitiveMembers, transitiveMemberOf, the membership functions,
getByIds and ``$expand=members`` (docs/behaviour.md#transitive-membership, #membership-functions, #expand).

Every test builds one nesting through the SDK (``$ref`` adds and ``members@odata.bind``)::

    A ─┬─ B ── C        a chain of three security groups
       ├─ D1 ─┬─ E      a diamond: E (and uS) reach A along two paths
       ├─ D2 ─┘
       └─ uA
    B ⊃ uB   C ⊃ uC   E ⊃ uE   D1 ⊃ uS   D2 ⊃ uS
    M (Microsoft 365, never nested) ⊃ uC      X (outside the nesting) ⊃ uX

:class:`Nest` keeps the direct memberships the test made and computes, independently of graphdir,
what every endpoint must answer; the tests assert exact ids (in the documented order), the model
classes the SDK deserialised (``User``/``Group`` with ``odata_type``), and the same after nested
groups are removed (their members leave the parent, except along a path that remains).
"""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from conformance_helpers import INSUFFICIENT_PRIVILEGES, MISSING_MESSAGE, collect_pages, expect_odata_error

pytestmark = [
    pytest.mark.conformance,
    # the generated SDK request builders warn about their own deprecated configuration classes on import
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]

TOO_MANY = "Number of included identifiers cannot exceed '{}'."
INVALID_ID = "Invalid object identifier '{}'."
BAD_TYPES = "Invalid value specified for property 'types' of resource 'DirectoryObject'."
NOT_EXPANDED = "Expand is not allowed for property '{}' according to the entity schema."
GROUPS = ("A", "B", "C", "D1", "D2", "E", "M", "X")
USERS = ("uA", "uB", "uC", "uE", "uS", "uX")
EDGES = {"A": ("B", "D1", "D2", "uA"), "B": ("C", "uB"), "C": ("uC",), "D1": ("E", "uS"), "D2": ("E", "uS"), "E": ("uE",), "M": ("uC",), "X": ("uX",)}


# -- the SDK's classes, per flavour --------------------------------------------------------------
def body(flavour: Any, owner: str, fn: str, **kw: Any) -> Any:
    """The request body class the SDK generated for ``{owner}/{{id}}/{fn}`` (owner: users, groups, directory_objects)."""
    mod = importlib.import_module(f"{flavour.pkg_name}.generated.{owner}.item.{fn}.{fn}_post_request_body")
    return getattr(mod, "".join(p.capitalize() for p in fn.split("_")) + "PostRequestBody")(**kw)


def by_ids_body(flavour: Any, **kw: Any) -> Any:
    mod = importlib.import_module(f"{flavour.pkg_name}.generated.directory_objects.get_by_ids.get_by_ids_post_request_body")
    return mod.GetByIdsPostRequestBody(**kw)


def item(flavour: Any, owner: str, object_id: str) -> Any:
    """``users.by_user_id(id)``, ``groups.by_group_id(id)`` or ``directory_objects.by_directory_object_id(id)``."""
    g = flavour.graph
    return {"users": g.users.by_user_id, "groups": g.groups.by_group_id, "directory_objects": g.directory_objects.by_directory_object_id}[owner](object_id)


def config(flavour: Any, builder: Any, eventual: bool = False, **query: Any) -> Any:
    """A RequestConfiguration with the builder's own ``…GetQueryParameters`` (and ``ConsistencyLevel: eventual``)."""
    params = None
    if query:
        cls = next(getattr(type(builder), n) for n in dir(type(builder)) if n.endswith("GetQueryParameters"))
        params = cls(**query)
    cfg = flavour.RequestConfiguration(query_parameters=params)
    if eventual:
        cfg.headers.add("ConsistencyLevel", "eventual")
    return cfg


def me_builder(client: Any) -> Any:
    """``client.me``: a property in msgraph, a plain method in msgraph_beta 1.66 (``client.me()``)."""
    return client.me() if callable(client.me) else client.me


# -- the nesting and its model -------------------------------------------------------------------
@dataclass
class Nest:
    flavour: Any
    run: Any
    objs: dict[str, Any] = field(default_factory=dict)  # name → the SDK model POST returned
    edges: dict[str, set[str]] = field(default_factory=dict)  # group name → direct member names

    def id(self, name: str) -> str:
        return str(self.objs[name].id)

    def ids(self, names: Any) -> list[str]:
        """The ids of ``names`` in id order (the order of every transitive listing)."""
        return sorted(self.id(n) for n in names)

    def name(self, object_id: str) -> str:
        return next(n for n, o in self.objs.items() if o.id == object_id)

    def label(self, object_id: str) -> str:
        """The test's name for an id (the id itself if the test made no such object)."""
        return next((n for n, o in self.objs.items() if o.id == object_id), object_id)

    def transitive_members(self, group: str) -> set[str]:
        out: set[str] = set()
        todo = [group]
        while todo:
            for m in self.edges.get(todo.pop(), set()):
                if m not in out:
                    out.add(m)
                    todo.append(m)
        return out

    def transitive_member_of(self, obj: str) -> set[str]:
        return {g for g in self.edges if obj in self.transitive_members(g)}

    def security(self, groups: set[str]) -> set[str]:
        return {g for g in groups if g != "M"}

    # the SDK calls the tests repeat
    def add(self, group: str, *members: str) -> None:
        f = self.flavour
        g = f.graph.groups.by_group_id(self.id(group))
        if len(members) == 1:
            assert self.run(g.members.ref.post(f.ReferenceCreate(odata_id=f.odata_id(self.id(members[0]))))) is None
        else:
            bind = f.Group(additional_data={"members@odata.bind": [f.odata_id(self.id(m)) for m in members]})
            assert self.run(g.patch(bind)) is None
        self.edges.setdefault(group, set()).update(members)

    def remove(self, group: str, member: str) -> None:
        item = self.flavour.graph.groups.by_group_id(self.id(group)).members.by_directory_object_id(self.id(member))
        assert self.run(item.ref.delete()) is None
        self.edges[group].discard(member)


def build(flavour: Any, run: Any, make: Any) -> Nest:
    n = Nest(flavour, run)
    for name in GROUPS:
        n.objs[name] = make.m365_group() if name == "M" else make.security_group()
    for name in USERS:
        n.objs[name] = make.user(name)
    for group, members in EDGES.items():
        n.add(group, *members)
    return n


@pytest.fixture
def nest(flavour: Any, run: Any, make: Any) -> Nest:
    return build(flavour, run, make)


def assert_objects(n: Nest, items: list[Any], names: Any, select: bool = False) -> None:
    """``items`` are exactly ``names`` in id order, each deserialised into its model with ``odata_type``."""
    f = n.flavour
    assert [o.id for o in items] == n.ids(names), f"got {[n.label(o.id) for o in items]}, expected {sorted(names, key=n.id)}"
    for o in items:
        name = n.name(o.id)
        want = f.User if name.startswith("u") else f.Group
        assert type(o) is want, f"{name}: {type(o).__name__}"
        assert o.odata_type == ("#microsoft.graph.user" if want is f.User else "#microsoft.graph.group"), (name, o.odata_type)
        assert o.display_name == n.objs[name].display_name
        if not select and want is f.User:
            assert o.user_principal_name == n.objs[name].user_principal_name
        if not select and want is f.Group:
            assert o.security_enabled is (name != "M") and o.mail_nickname == n.objs[name].mail_nickname


def transitive_members(n: Nest, group: str) -> list[Any]:
    builder = n.flavour.graph.groups.by_group_id(n.id(group)).transitive_members
    items, _ = collect_pages(n.flavour, n.run, n.run(builder.get()), builder)
    return items


def user_member_of(n: Nest, user: str) -> list[Any]:
    builder = n.flavour.graph.users.by_user_id(n.id(user)).transitive_member_of
    items, _ = collect_pages(n.flavour, n.run, n.run(builder.get()), builder)
    return items


def group_member_of(n: Nest, group: str) -> list[Any]:
    builder = n.flavour.graph.groups.by_group_id(n.id(group)).transitive_member_of
    items, _ = collect_pages(n.flavour, n.run, n.run(builder.get()), builder)
    return items


def check_member_groups(n: Nest, owner: str, obj: str, ask: list[str]) -> list[str]:
    f = n.flavour
    resp = n.run(item(f, owner, n.id(obj)).check_member_groups.post(body(f, owner, "check_member_groups", group_ids=ask)))
    assert resp.odata_next_link is None
    assert all(type(v) is str for v in resp.value), resp.value
    return list(resp.value)


def get_member_groups(n: Nest, owner: str, obj: str, security_only: bool, fn: str = "get_member_groups") -> list[str]:
    f = n.flavour
    resp = n.run(getattr(item(f, owner, n.id(obj)), fn).post(body(f, owner, fn, security_enabled_only=security_only)))
    assert all(type(v) is str for v in resp.value), resp.value
    return list(resp.value)


def get_by_ids(n: Nest, ask: list[str], types: list[str] | None = None) -> list[Any]:
    resp = n.run(n.flavour.graph.directory_objects.get_by_ids.post(by_ids_body(n.flavour, ids=ask, types=types)))
    assert resp.odata_next_link is None
    return list(resp.value)


def verify(n: Nest) -> None:
    """Every transitive answer of the nesting equals the model's."""
    for g in ("A", "B", "D1", "D2"):
        assert_objects(n, transitive_members(n, g), n.transitive_members(g))
    for u in ("uA", "uC", "uE", "uS"):
        held = n.transitive_member_of(u)
        assert_objects(n, user_member_of(n, u), held)
        every = [n.id(g) for g in GROUPS]
        assert check_member_groups(n, "users", u, every) == [n.id(g) for g in GROUPS if g in held]
        assert get_member_groups(n, "users", u, False) == n.ids(held)
        assert get_member_groups(n, "users", u, True) == n.ids(n.security(held))
    for g in ("C", "E"):
        assert_objects(n, group_member_of(n, g), n.transitive_member_of(g))
        assert get_member_groups(n, "groups", g, True) == n.ids(n.transitive_member_of(g))


# -- transitiveMembers ---------------------------------------------------------------------------
def test_transitive_members_of_the_top_group(flavour, run, nest):
    """The nested groups themselves and every user below them, each once (uS along two paths), in id order."""
    top = nest.transitive_members("A")
    assert top == {"B", "C", "D1", "D2", "E", "uA", "uB", "uC", "uE", "uS"}
    page = run(flavour.graph.groups.by_group_id(nest.id("A")).transitive_members.get())
    assert page.odata_next_link is None and page.odata_count is None
    assert_objects(nest, page.value, top)
    assert_objects(nest, transitive_members(nest, "B"), {"C", "uB", "uC"})
    assert_objects(nest, transitive_members(nest, "D2"), {"E", "uE", "uS"})
    assert_objects(nest, transitive_members(nest, "C"), {"uC"})
    assert transitive_members(nest, "E") != [] and transitive_members(nest, "X") != []
    assert run(flavour.graph.groups.by_group_id(nest.id("M")).transitive_members.get()).value[0].id == nest.id("uC")


def test_transitive_members_count_with_consistency_level(flavour, run, nest):
    builder = flavour.graph.groups.by_group_id(nest.id("A")).transitive_members
    page = run(builder.get(config(flavour, builder, eventual=True, count=True)))
    assert page.odata_count == 10
    assert_objects(nest, page.value, nest.transitive_members("A"))
    assert run(builder.count.get(config(flavour, builder.count, eventual=True))) == 10
    assert run(builder.graph_user.count.get(config(flavour, builder.graph_user.count, eventual=True))) == 5
    assert run(builder.graph_group.count.get(config(flavour, builder.graph_group.count, eventual=True))) == 5


def test_transitive_members_count_without_consistency_level_is_400(flavour, run, nest):
    builder = flavour.graph.groups.by_group_id(nest.id("A")).transitive_members
    expect_odata_error(flavour, run, builder.count.get(), 400, "Request_BadRequest", "$count is not currently supported.")


def test_transitive_members_casts(flavour, run, nest):
    """``graph_user``/``graph_group`` (``/microsoft.graph.user``…): only that type, as that model, no ConsistencyLevel needed."""
    builder = flavour.graph.groups.by_group_id(nest.id("A")).transitive_members
    users = run(builder.graph_user.get())
    assert all(type(o) is flavour.User for o in users.value)
    assert_objects(nest, users.value, {"uA", "uB", "uC", "uE", "uS"})
    groups = run(builder.graph_group.get())
    assert all(type(o) is flavour.Group for o in groups.value)
    assert_objects(nest, groups.value, {"B", "C", "D1", "D2", "E"})
    only = run(builder.graph_user.get(config(flavour, builder.graph_user, select=["id", "displayName"], top=2)))
    assert [o.id for o in only.value] == nest.ids({"uA", "uB", "uC", "uE", "uS"})[:2]
    assert only.odata_next_link and only.odata_next_link.startswith(f"{flavour.server.origin}/{flavour.api}/groups/{nest.id('A')}/transitiveMembers/")
    rest, links = collect_pages(flavour, run, only, builder.graph_user)
    assert [o.id for o in rest] == nest.ids({"uA", "uB", "uC", "uE", "uS"}) and len(links) == 2


def test_transitive_members_paging_with_page_iterator(flavour, run, nest):
    """``$top=3`` through the SDK's PageIterator (absolute nextLinks, ``$select`` kept on every page)."""
    from msgraph_core import PageIterator

    builder = flavour.graph.groups.by_group_id(nest.id("A")).transitive_members
    first = run(builder.get(config(flavour, builder, select=["id", "displayName"], top=3)))
    assert len(first.value) == 3
    link = first.odata_next_link
    assert link.startswith(f"{flavour.server.origin}/{flavour.api}/groups/{nest.id('A')}/transitiveMembers?"), link
    items: list[Any] = []
    pages = PageIterator(first, flavour.graph.request_adapter)

    def keep(item: Any) -> bool:
        items.append(item)
        return True

    run(pages.iterate(keep))
    assert_objects(nest, items, nest.transitive_members("A"), select=True)
    assert all(getattr(o, "user_principal_name", None) is None and getattr(o, "mail_nickname", None) is None for o in items), "a page dropped $select"


def test_transitive_members_paging_with_url_and_count(flavour, run, nest):
    """``$count=true&$top=4`` (ConsistencyLevel on the first request only: the SDK never re-sends it)."""
    builder = flavour.graph.groups.by_group_id(nest.id("A")).transitive_members
    first = run(builder.get(config(flavour, builder, eventual=True, count=True, top=4)))
    assert first.odata_count == 10 and len(first.value) == 4
    items, links = collect_pages(flavour, run, first, builder)
    assert len(links) == 2
    assert all(link.startswith(f"{flavour.server.origin}/{flavour.api}/") for link in links)
    assert_objects(nest, items, nest.transitive_members("A"))
    assert run(builder.with_url(links[0]).get()).odata_count is None


# -- transitiveMemberOf --------------------------------------------------------------------------
def test_transitive_member_of_a_user(flavour, run, nest):
    assert_objects(nest, user_member_of(nest, "uC"), {"C", "B", "A", "M"})
    assert_objects(nest, user_member_of(nest, "uE"), {"E", "D1", "D2", "A"})
    assert_objects(nest, user_member_of(nest, "uS"), {"D1", "D2", "A"})
    assert_objects(nest, user_member_of(nest, "uX"), {"X"})
    builder = flavour.graph.users.by_user_id(nest.id("uC")).transitive_member_of
    cast = run(builder.graph_group.get())
    assert_objects(nest, cast.value, {"C", "B", "A", "M"})
    by_id = {o.id: o for o in cast.value}
    assert by_id[nest.id("M")].group_types == ["Unified"] and by_id[nest.id("A")].group_types == []
    page = run(builder.get(config(flavour, builder, eventual=True, count=True, top=3)))
    assert page.odata_count == 4 and len(page.value) == 3 and page.odata_next_link
    assert run(builder.count.get(config(flavour, builder.count, eventual=True))) == 4


def test_transitive_member_of_a_group(flavour, run, nest):
    assert_objects(nest, group_member_of(nest, "C"), {"B", "A"})
    assert_objects(nest, group_member_of(nest, "E"), {"D1", "D2", "A"})
    assert group_member_of(nest, "A") == []
    builder = flavour.graph.groups.by_group_id(nest.id("E")).transitive_member_of
    assert_objects(nest, run(builder.graph_group.get()).value, {"D1", "D2", "A"})
    assert run(builder.count.get(config(flavour, builder.count, eventual=True))) == 3


def test_me_transitive_member_of_and_functions(flavour, run, nest):
    """A delegated token signed in as uE: ``/me/transitiveMemberOf``, ``/me/checkMemberGroups``, ``/me/getMemberGroups``."""
    token = flavour.server.mint_delegated_token(nest.id("uE"), "User.Read GroupMember.Read.All")
    me = me_builder(flavour.client(token))
    page = run(me.transitive_member_of.get())
    assert_objects(nest, page.value, {"E", "D1", "D2", "A"})
    ask = [nest.id(g) for g in ("X", "A", "C", "E")]
    resp = run(me.check_member_groups.post(body(flavour, "users", "check_member_groups", group_ids=ask)))
    assert resp.value == [nest.id("A"), nest.id("E")]
    resp = run(me.get_member_groups.post(body(flavour, "users", "get_member_groups", security_enabled_only=True)))
    assert resp.value == nest.ids({"E", "D1", "D2", "A"})
    resp = run(me.check_member_objects.post(body(flavour, "users", "check_member_objects", ids=ask)))
    assert resp.value == [nest.id("A"), nest.id("E")]
    # an application token has no signed-in user
    expect_odata_error(
        flavour, run, me_builder(flavour.graph).transitive_member_of.get(), 400, "BadRequest", "/me request is only valid with delegated authentication flow."
    )


# -- the membership functions --------------------------------------------------------------------
def test_check_member_groups(flavour, run, nest):
    """Those of the ids asked the object is a transitive member of, in the order asked; ids of groups it
    is not in, of no object at all and of a user are left out."""
    unknown = str(uuid.uuid4())
    ask = [nest.id(n) for n in ("X", "A", "D1")] + [unknown, nest.id("M"), nest.id("uE"), nest.id("C"), nest.id("B")]
    assert check_member_groups(nest, "users", "uC", ask) == [nest.id(n) for n in ("A", "M", "C", "B")]
    assert check_member_groups(nest, "users", "uS", ask) == [nest.id(n) for n in ("A", "D1")]
    assert check_member_groups(nest, "users", "uX", [nest.id("A"), nest.id("B")]) == []
    assert check_member_groups(nest, "users", "uA", []) == []
    assert check_member_groups(nest, "groups", "C", ask) == [nest.id("A"), nest.id("B")]
    assert check_member_groups(nest, "groups", "E", ask) == [nest.id(n) for n in ("A", "D1")]
    assert check_member_groups(nest, "directory_objects", "uE", ask) == [nest.id(n) for n in ("A", "D1")]
    assert check_member_groups(nest, "directory_objects", "E", [nest.id("D2"), nest.id("E")]) == [nest.id("D2")]
    # users/{userPrincipalName} names the same user
    upn = nest.objs["uC"].user_principal_name
    resp = run(flavour.graph.users.by_user_id(upn).check_member_groups.post(body(flavour, "users", "check_member_groups", group_ids=ask)))
    assert resp.value == [nest.id(n) for n in ("A", "M", "C", "B")]
    # 20 ids is the limit, and within it
    twenty = [str(uuid.uuid4()) for _ in range(19)] + [nest.id("B")]
    assert check_member_groups(nest, "users", "uC", twenty) == [nest.id("B")]


def test_check_member_objects(flavour, run, nest):
    unknown = str(uuid.uuid4())
    ask = [nest.id("X"), nest.id("A"), unknown, nest.id("M"), nest.id("uC")]
    for owner, obj, want in (("users", "uC", ["A", "M"]), ("groups", "B", ["A"]), ("directory_objects", "uX", ["X"])):
        resp = run(item(flavour, owner, nest.id(obj)).check_member_objects.post(body(flavour, owner, "check_member_objects", ids=ask)))
        assert resp.value == [nest.id(n) for n in want], (owner, obj)


@pytest.mark.parametrize("fn", ["get_member_groups", "get_member_objects"])
def test_get_member_groups(flavour, run, nest, fn):
    """Every group the object is a transitive member of (sorted by id); ``securityEnabledOnly`` drops M."""
    assert get_member_groups(nest, "users", "uC", False, fn) == nest.ids({"A", "B", "C", "M"})
    assert get_member_groups(nest, "users", "uC", True, fn) == nest.ids({"A", "B", "C"})
    assert get_member_groups(nest, "users", "uS", True, fn) == nest.ids({"A", "D1", "D2"})
    assert get_member_groups(nest, "groups", "E", True, fn) == nest.ids({"A", "D1", "D2"})
    assert get_member_groups(nest, "groups", "E", False, fn) == nest.ids({"A", "D1", "D2"})
    assert get_member_groups(nest, "groups", "A", False, fn) == []
    assert get_member_groups(nest, "directory_objects", "uE", False, fn) == nest.ids({"A", "D1", "D2", "E"})


def test_get_by_ids(flavour, run, nest):
    """The objects asked for, typed, in the order asked; unknown ids left out; ``types`` filters."""
    unknown = str(uuid.uuid4())
    names = ["uC", "A", "M", "uS", "E"]
    ask = [nest.id("uC"), nest.id("A"), unknown, nest.id("M"), nest.id("uS"), nest.id("E")]
    got = get_by_ids(nest, ask)
    assert [o.id for o in got] == [nest.id(n) for n in names]
    for o, name in zip(got, names, strict=True):
        assert type(o) is (flavour.User if name.startswith("u") else flavour.Group), (name, type(o))
        assert o.odata_type == ("#microsoft.graph.user" if name.startswith("u") else "#microsoft.graph.group")
        assert o.display_name == nest.objs[name].display_name
    assert [(o.id, o.user_principal_name) for o in got if type(o) is flavour.User] == [(nest.id(n), nest.objs[n].user_principal_name) for n in ("uC", "uS")]
    assert [o.id for o in get_by_ids(nest, ask, ["user"])] == [nest.id("uC"), nest.id("uS")]
    assert [o.id for o in get_by_ids(nest, ask, ["group"])] == [nest.id(n) for n in ("A", "M", "E")]
    assert [o.id for o in get_by_ids(nest, ask, ["microsoft.graph.group", "User"])] == [nest.id(n) for n in names]
    assert [o.id for o in get_by_ids(nest, ask, ["directoryObject"])] == [nest.id(n) for n in names]
    assert get_by_ids(nest, ask, ["device"]) == []
    assert get_by_ids(nest, [unknown]) == []


# -- after each change ---------------------------------------------------------------------------
def test_removing_nested_groups(flavour, run, nest):
    """Remove B from A (C's members leave A), then D1 (E and uS stay along D2), then D2 (they leave)."""
    verify(nest)
    nest.remove("A", "B")
    assert nest.transitive_members("A") == {"D1", "D2", "E", "uA", "uE", "uS"}
    verify(nest)
    assert check_member_groups(nest, "users", "uC", [nest.id("A"), nest.id("B")]) == [nest.id("B")]
    nest.remove("A", "D1")
    assert nest.transitive_members("A") == {"D2", "E", "uA", "uE", "uS"}
    verify(nest)
    assert check_member_groups(nest, "groups", "E", [nest.id("A"), nest.id("D1")]) == [nest.id("A"), nest.id("D1")]
    nest.remove("A", "D2")
    assert nest.transitive_members("A") == {"uA"}
    verify(nest)
    assert check_member_groups(nest, "users", "uS", [nest.id("A"), nest.id("D1"), nest.id("D2")]) == [nest.id("D1"), nest.id("D2")]
    # and back: adding B again brings C's members back at once
    nest.add("A", "B")
    verify(nest)
    # every object is still there for getByIds
    assert [o.id for o in get_by_ids(nest, [nest.id(n) for n in ("B", "D1", "uC")])] == [nest.id(n) for n in ("B", "D1", "uC")]


def test_deleting_a_user_and_a_nested_group(flavour, run, nest):
    """A deleted user or group leaves every transitive answer and getByIds."""
    assert run(flavour.graph.users.by_user_id(nest.id("uS")).delete()) is None
    for g in ("D1", "D2"):
        nest.edges[g].discard("uS")
    assert run(flavour.graph.groups.by_group_id(nest.id("E")).delete()) is None
    for g in ("D1", "D2"):
        nest.edges[g].discard("E")
    nest.edges.pop("E")
    assert_objects(nest, transitive_members(nest, "A"), {"B", "C", "D1", "D2", "uA", "uB", "uC"})
    assert [o.id for o in get_by_ids(nest, [nest.id(n) for n in ("uS", "E", "uE")])] == [nest.id("uE")]
    assert user_member_of(nest, "uE") == []
    assert get_member_groups(nest, "users", "uE", False) == []
    assert check_member_groups(nest, "users", "uE", [nest.id(n) for n in ("A", "D1", "D2", "E")]) == []


# -- $expand=members on the nesting --------------------------------------------------------------
def test_expand_members_of_a_nested_group(flavour, run, nest):
    """``$expand=members`` expands the direct members only (typed), the listing of groups too;
    the transitive relationships are not expandable (400 ExpandNotSupported)."""
    item = flavour.graph.groups.by_group_id(nest.id("A"))
    got = run(item.get(config(flavour, item, select=["id", "displayName"], expand=["members"])))
    assert got.id == nest.id("A") and got.display_name == nest.objs["A"].display_name
    assert_objects(nest, got.members, {"B", "D1", "D2", "uA"})
    listing = run(flavour.graph.groups.get(config(flavour, flavour.graph.groups, filter=f"id eq '{nest.id('B')}'", expand=["members($select=id,displayName)"])))
    assert [g.id for g in listing.value] == [nest.id("B")]
    assert_objects(nest, listing.value[0].members, {"C", "uB"}, select=True)
    for rel, name in (("transitiveMembers", "TransitiveMembers"), ("transitiveMemberOf", "TransitiveMemberOf")):
        expect_odata_error(flavour, run, item.get(config(flavour, item, expand=[rel])), 400, "ExpandNotSupported", NOT_EXPANDED.format(name))


# -- errors the SDK raises as ODataError ---------------------------------------------------------
def test_more_than_twenty_ids_is_400(flavour, run, nest):
    ask = [str(uuid.uuid4()) for _ in range(20)] + [nest.id("A")]
    for owner, obj, fn, param in (
        ("users", "uC", "check_member_groups", "group_ids"),
        ("users", "uC", "check_member_objects", "ids"),
        ("groups", "C", "check_member_groups", "group_ids"),
        ("directory_objects", "uC", "check_member_objects", "ids"),
    ):
        call = getattr(item(flavour, owner, nest.id(obj)), fn).post(body(flavour, owner, fn, **{param: ask}))
        expect_odata_error(flavour, run, call, 400, "Request_BadRequest", TOO_MANY.format(20))


def test_functions_on_an_unknown_object_are_404(flavour, run, nest):
    missing = str(uuid.uuid4())
    msg = MISSING_MESSAGE.format(id=missing)
    ask = [nest.id("A")]
    g = flavour.graph.groups.by_group_id(missing)
    u = flavour.graph.users.by_user_id(missing)
    d = flavour.graph.directory_objects.by_directory_object_id(missing)
    for call in (
        g.check_member_groups.post(body(flavour, "groups", "check_member_groups", group_ids=ask)),
        g.get_member_groups.post(body(flavour, "groups", "get_member_groups", security_enabled_only=False)),
        u.check_member_groups.post(body(flavour, "users", "check_member_groups", group_ids=ask)),
        u.get_member_objects.post(body(flavour, "users", "get_member_objects", security_enabled_only=True)),
        d.check_member_objects.post(body(flavour, "directory_objects", "check_member_objects", ids=ask)),
        g.transitive_members.get(),
        g.transitive_member_of.get(),
        u.transitive_member_of.get(),
    ):
        expect_odata_error(flavour, run, call, 404, "Request_ResourceNotFound", msg)
    # a user's id on the groups path names no group
    uid = nest.id("uC")
    expect_odata_error(
        flavour,
        run,
        flavour.graph.groups.by_group_id(uid).check_member_groups.post(body(flavour, "groups", "check_member_groups", group_ids=ask)),
        404,
        "Request_ResourceNotFound",
        MISSING_MESSAGE.format(id=uid),
    )


def test_malformed_ids_are_400(flavour, run, nest):
    users = flavour.graph.users.by_user_id(nest.id("uC"))
    expect_odata_error(
        flavour,
        run,
        users.check_member_groups.post(body(flavour, "users", "check_member_groups", group_ids=[nest.id("A"), "not-a-guid"])),
        400,
        "Request_BadRequest",
        INVALID_ID.format("not-a-guid"),
    )
    expect_odata_error(
        flavour, run, flavour.graph.directory_objects.get_by_ids.post(by_ids_body(flavour, ids=["nope"])), 400, "Request_BadRequest", INVALID_ID.format("nope")
    )


def test_get_by_ids_refusals(flavour, run, nest):
    many = [str(uuid.uuid4()) for _ in range(1001)]
    post = flavour.graph.directory_objects.get_by_ids.post
    expect_odata_error(flavour, run, post(by_ids_body(flavour, ids=many)), 400, "Request_BadRequest", TOO_MANY.format(1000))
    expect_odata_error(flavour, run, post(by_ids_body(flavour, ids=[nest.id("A")], types=["nonsense"])), 400, "Request_BadRequest", BAD_TYPES)
    # 1,000 is the limit, and within it
    assert [o.id for o in get_by_ids(nest, many[:999] + [nest.id("uA")])] == [nest.id("uA")]


@pytest.fixture(scope="session")
def user_read_token(server):
    return server.mint_token("User.Read.All")


@pytest.fixture(scope="session")
def user_and_group_read_token(server):
    return server.mint_token("User.Read.All,GroupMember.Read.All")


def test_paired_permissions(flavour, run, nest, user_read_token, user_and_group_read_token):
    """checkMemberGroups/getMemberGroups on a user need a user-read and a group-read permission;
    checkMemberObjects a user-read one alone (docs/behaviour.md#membership-functions)."""
    ask = [nest.id("A"), nest.id("X")]
    users = flavour.client(user_read_token).users.by_user_id(nest.id("uC"))
    groups_body = body(flavour, "users", "check_member_groups", group_ids=ask)
    expect_odata_error(flavour, run, users.check_member_groups.post(groups_body), 403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)
    get_body = body(flavour, "users", "get_member_groups", security_enabled_only=False)
    expect_odata_error(flavour, run, users.get_member_groups.post(get_body), 403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)
    assert run(users.check_member_objects.post(body(flavour, "users", "check_member_objects", ids=ask))).value == [nest.id("A")]
    both = flavour.client(user_and_group_read_token).users.by_user_id(nest.id("uC"))
    assert run(both.check_member_groups.post(groups_body)).value == [nest.id("A")]
    assert run(both.get_member_groups.post(get_body)).value == nest.ids({"A", "B", "C", "M"})
