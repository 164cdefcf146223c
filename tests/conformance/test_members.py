"""Membership through the SDKs: $ref add, members@odata.bind, paging, $count, casts, removal and its errors."""

from __future__ import annotations

import uuid

import pytest
from conformance_helpers import (
    DUPLICATE_MEMBERS_MESSAGE,
    INSUFFICIENT_PRIVILEGES,
    MISSING_MESSAGE,
    READ_ONLY_GROUP_MESSAGE,
    collect_pages,
    expect_odata_error,
)

pytestmark = [
    pytest.mark.conformance,
    # the generated SDK request builders warn about their own deprecated configuration classes on import
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


def add_ref(flavour, run, group_id, object_id, odata_id=None):
    body = flavour.ReferenceCreate(odata_id=odata_id or flavour.odata_id(object_id))
    result = run(flavour.graph.groups.by_group_id(group_id).members.ref.post(body))
    assert result is None
    return result


def member_ids(flavour, run, group_id):
    """Every member id, following nextLinks."""
    builder = flavour.graph.groups.by_group_id(group_id).members
    items, _ = collect_pages(flavour, run, run(builder.get()), builder)
    return [m.id for m in items]


def test_add_member_by_ref_post(flavour, run, make):
    g, u = make.security_group(), make.user()
    add_ref(flavour, run, g.id, u.id)
    page = run(flavour.graph.groups.by_group_id(g.id).members.get())
    assert [m.id for m in page.value] == [u.id]
    assert isinstance(page.value[0], flavour.User)
    assert page.value[0].user_principal_name == u.user_principal_name


def test_add_member_by_ref_post_with_users_url_form(flavour, run, make):
    g, u = make.m365_group(), make.user()
    add_ref(flavour, run, g.id, u.id, odata_id=f"{flavour.server.origin}/{flavour.api}/users/{u.id}")
    assert member_ids(flavour, run, g.id) == [u.id]


def test_add_members_by_patch_bind(flavour, run, make):
    g = make.security_group()
    users = make.users(3)
    body = flavour.Group(additional_data={"members@odata.bind": [flavour.odata_id(u.id) for u in users]})
    assert run(flavour.graph.groups.by_group_id(g.id).patch(body)) is None
    assert sorted(member_ids(flavour, run, g.id)) == sorted(u.id for u in users)
    # the PATCH changed membership only
    got = run(flavour.graph.groups.by_group_id(g.id).get())
    assert got.display_name == g.display_name and got.security_enabled is True


def test_patch_bind_with_a_missing_object_is_404_and_adds_nothing(flavour, run, make):
    g, u = make.security_group(), make.user()
    missing = str(uuid.uuid4())
    body = flavour.Group(additional_data={"members@odata.bind": [flavour.odata_id(u.id), flavour.odata_id(missing)]})
    expect_odata_error(flavour, run, flavour.graph.groups.by_group_id(g.id).patch(body), 404, "Request_ResourceNotFound", MISSING_MESSAGE.format(id=missing))
    assert member_ids(flavour, run, g.id) == []


def test_list_members_across_pages(flavour, run, make):
    g = make.security_group()
    users = make.users(8)
    for u in users[:4]:  # half by $ref ...
        add_ref(flavour, run, g.id, u.id)
    body = flavour.Group(additional_data={"members@odata.bind": [flavour.odata_id(u.id) for u in users[4:]]})
    run(flavour.graph.groups.by_group_id(g.id).patch(body))  # ... half by bind

    builder = flavour.graph.groups.by_group_id(g.id).members
    cfg = flavour.RequestConfiguration(query_parameters=flavour.MembersGetQuery(top=3, select=["id", "displayName"]))
    first = run(builder.get(cfg))
    assert len(first.value) == 3, f"first page holds {len(first.value)} items with $top=3"
    pages = [first]
    page = first
    while page.odata_next_link:
        link = page.odata_next_link
        assert link.startswith(f"{flavour.server.origin}/{flavour.api}/groups/{g.id}/members"), f"nextLink not absolute on the server's origin: {link}"
        assert len(pages) < 20, "nextLink loop"
        page = run(builder.with_url(link).get())
        pages.append(page)
    assert len(pages) >= 3, f"expected at least 3 pages, got {len(pages)}"
    assert all(len(p.value) <= 3 for p in pages), [len(p.value) for p in pages]
    ids = [m.id for p in pages for m in p.value]
    assert len(ids) == len(set(ids)), f"a member came back twice: {ids}"
    assert sorted(ids) == sorted(u.id for u in users)
    items = [m for p in pages for m in p.value]
    assert all(isinstance(m, flavour.User) for m in items)
    # $select survives into the nextLinks: no page carries an unselected default property
    assert all(m.display_name for m in items)
    assert all(m.user_principal_name is None for m in items), "nextLink pages dropped $select"


def test_member_count_with_consistency_level(flavour, run, make):
    g = make.security_group()
    users = make.users(4)
    for u in users:
        add_ref(flavour, run, g.id, u.id)
    cfg = flavour.RequestConfiguration()
    cfg.headers.add("ConsistencyLevel", "eventual")
    count = run(flavour.graph.groups.by_group_id(g.id).members.count.get(cfg))
    assert count == 4


def test_member_count_without_consistency_level_is_rejected(flavour, run, make):
    g = make.security_group()
    add_ref(flavour, run, g.id, make.user().id)
    expect_odata_error(
        flavour, run, flavour.graph.groups.by_group_id(g.id).members.count.get(), 400, "Request_BadRequest", "$count is not currently supported."
    )


def test_type_cast_listing(flavour, run, make):
    g, nested = make.security_group(), make.security_group()
    users = make.users(2)
    for u in users:
        add_ref(flavour, run, g.id, u.id)
    add_ref(flavour, run, g.id, nested.id)
    assert sorted(member_ids(flavour, run, g.id)) == sorted([users[0].id, users[1].id, nested.id])

    only_users = run(flavour.graph.groups.by_group_id(g.id).members.graph_user.get())
    assert sorted(m.id for m in only_users.value) == sorted(u.id for u in users)
    assert all(isinstance(m, flavour.User) for m in only_users.value)
    only_groups = run(flavour.graph.groups.by_group_id(g.id).members.graph_group.get())
    assert [m.id for m in only_groups.value] == [nested.id]
    assert isinstance(only_groups.value[0], flavour.Group)


def test_remove_member_then_remove_again_is_404(flavour, run, make):
    g = make.security_group()
    u1, u2 = make.users(2)
    add_ref(flavour, run, g.id, u1.id)
    add_ref(flavour, run, g.id, u2.id)
    item = flavour.graph.groups.by_group_id(g.id).members.by_directory_object_id(u1.id)
    assert run(item.ref.delete()) is None
    assert member_ids(flavour, run, g.id) == [u2.id]
    err = expect_odata_error(flavour, run, item.ref.delete(), 404, "Request_ResourceNotFound", MISSING_MESSAGE.format(id=u1.id))
    assert str(err) == f"{MISSING_MESSAGE.format(id=u1.id)} (status 404)"
    assert member_ids(flavour, run, g.id) == [u2.id]


@pytest.mark.parametrize("form", ["graph-directoryObjects", "graph-users", "own-origin"])
def test_remove_member_at_id_form(flavour, run, make, form):
    g = make.security_group()
    u1, u2 = make.users(2)
    add_ref(flavour, run, g.id, u1.id)
    add_ref(flavour, run, g.id, u2.id)
    url = {
        "graph-directoryObjects": flavour.odata_id(u1.id),
        "graph-users": flavour.odata_id(u1.id, "users"),
        "own-origin": f"{flavour.server.origin}/{flavour.api}/directoryObjects/{u1.id}",
    }[form]
    cfg = flavour.RequestConfiguration(query_parameters=flavour.RefDeleteQuery(id=url))
    assert run(flavour.graph.groups.by_group_id(g.id).members.ref.delete(cfg)) is None
    assert member_ids(flavour, run, g.id) == [u2.id]
    cfg = flavour.RequestConfiguration(query_parameters=flavour.RefDeleteQuery(id=url))
    expect_odata_error(
        flavour, run, flavour.graph.groups.by_group_id(g.id).members.ref.delete(cfg), 404, "Request_ResourceNotFound", MISSING_MESSAGE.format(id=u1.id)
    )


def test_duplicate_add_is_400(flavour, run, make):
    g, u = make.security_group(), make.user()
    add_ref(flavour, run, g.id, u.id)
    body = flavour.ReferenceCreate(odata_id=flavour.odata_id(u.id))
    expect_odata_error(flavour, run, flavour.graph.groups.by_group_id(g.id).members.ref.post(body), 400, "Request_BadRequest", DUPLICATE_MEMBERS_MESSAGE)
    assert member_ids(flavour, run, g.id) == [u.id]


def test_add_missing_object_is_404(flavour, run, make):
    g = make.security_group()
    missing = str(uuid.uuid4())
    body = flavour.ReferenceCreate(odata_id=flavour.odata_id(missing))
    expect_odata_error(
        flavour, run, flavour.graph.groups.by_group_id(g.id).members.ref.post(body), 404, "Request_ResourceNotFound", MISSING_MESSAGE.format(id=missing)
    )


def test_add_group_to_microsoft365_group_is_400(flavour, run, make):
    m365, sec = make.m365_group(), make.security_group()
    body = flavour.ReferenceCreate(odata_id=flavour.odata_id(sec.id))
    expect_odata_error(flavour, run, flavour.graph.groups.by_group_id(m365.id).members.ref.post(body), 400, "Request_BadRequest")
    assert member_ids(flavour, run, m365.id) == []


def test_remove_from_dynamic_group_is_403(flavour, run, make):
    dyn, u = make.dynamic_group(), make.user()
    item = flavour.graph.groups.by_group_id(dyn.id).members.by_directory_object_id(u.id)
    expect_odata_error(flavour, run, item.ref.delete(), 403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)


def test_add_to_dynamic_group_is_403(flavour, run, make):
    dyn, u = make.dynamic_group(), make.user()
    body = flavour.ReferenceCreate(odata_id=flavour.odata_id(u.id))
    expect_odata_error(
        flavour, run, flavour.graph.groups.by_group_id(dyn.id).members.ref.post(body), 403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES
    )
    assert u.id not in member_ids(flavour, run, dyn.id)


def test_remove_from_distribution_group_is_400(flavour, run, make):
    u = make.user()
    dl = make.distribution_group(members=[u.id])
    assert member_ids(flavour, run, dl["id"]) == [u.id]
    item = flavour.graph.groups.by_group_id(dl["id"]).members.by_directory_object_id(u.id)
    expect_odata_error(flavour, run, item.ref.delete(), 400, "Request_BadRequest", READ_ONLY_GROUP_MESSAGE)
    assert member_ids(flavour, run, dl["id"]) == [u.id]


def test_add_to_distribution_group_is_400(flavour, run, make):
    dl, u = make.distribution_group(), make.user()
    body = flavour.ReferenceCreate(odata_id=flavour.odata_id(u.id))
    expect_odata_error(flavour, run, flavour.graph.groups.by_group_id(dl["id"]).members.ref.post(body), 400, "Request_BadRequest", READ_ONLY_GROUP_MESSAGE)
    assert member_ids(flavour, run, dl["id"]) == []


def test_remove_from_missing_group_is_404(flavour, run, make):
    u = make.user()
    gid = str(uuid.uuid4())
    item = flavour.graph.groups.by_group_id(gid).members.by_directory_object_id(u.id)
    expect_odata_error(flavour, run, item.ref.delete(), 404, "Request_ResourceNotFound", MISSING_MESSAGE.format(id=gid))


def test_count_true_appears_on_the_first_page_only(flavour, run, make):
    g = make.security_group()
    users = make.users(5)
    body = flavour.Group(additional_data={"members@odata.bind": [flavour.odata_id(u.id) for u in users]})
    run(flavour.graph.groups.by_group_id(g.id).patch(body))
    builder = flavour.graph.groups.by_group_id(g.id).members
    cfg = flavour.RequestConfiguration(query_parameters=flavour.MembersGetQuery(top=2, count=True))
    cfg.headers.add("ConsistencyLevel", "eventual")
    first = run(builder.get(cfg))
    assert first.odata_count == 5
    items, links = collect_pages(flavour, run, first, builder)  # ConsistencyLevel is not re-sent on later pages
    assert len(links) == 2
    assert sorted(m.id for m in items) == sorted(u.id for u in users)
    later = run(builder.with_url(links[0]).get())
    assert later.odata_count is None, "@odata.count repeated on a later page"


def test_remove_member_with_malformed_id_is_400(flavour, run, make):
    g = make.security_group()
    item = flavour.graph.groups.by_group_id(g.id).members.by_directory_object_id("not-a-guid")
    expect_odata_error(flavour, run, item.ref.delete(), 400, "Request_BadRequest", "Invalid object identifier 'not-a-guid'.")
