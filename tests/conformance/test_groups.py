"""Creating users and each kind of group, reading them back, $select, memberOf — over both SDKs."""

from __future__ import annotations

import pytest
from conformance_helpers import DOMAIN, MISSING_MESSAGE, expect_odata_error

pytestmark = [
    pytest.mark.conformance,
    # the generated SDK request builders warn about their own deprecated configuration classes on import
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


def test_create_user_and_read_it_back(flavour, run, make):
    u = make.user("alice")
    got = run(flavour.graph.users.by_user_id(u.id).get())
    assert isinstance(got, flavour.User)
    assert got.id == u.id
    assert got.user_principal_name == u.user_principal_name
    assert got.user_principal_name.endswith("@" + DOMAIN)
    assert got.display_name == u.display_name


def test_create_security_group(flavour, run, make):
    g = make.security_group()
    assert g.group_types == []
    assert g.mail_enabled is False
    assert g.security_enabled is True
    assert g.description == "conformance security group"
    got = run(flavour.graph.groups.by_group_id(g.id).get())
    assert (got.id, got.display_name, got.mail_nickname) == (g.id, g.display_name, g.mail_nickname)
    assert got.group_types == [] and got.mail_enabled is False and got.security_enabled is True


def test_create_microsoft365_group(flavour, run, make):
    g = make.m365_group()
    assert g.group_types == ["Unified"]
    assert g.mail_enabled is True
    assert g.security_enabled is False
    assert g.visibility == "Private"
    got = run(flavour.graph.groups.by_group_id(g.id).get())
    assert got.id == g.id and got.group_types == ["Unified"] and got.mail_enabled is True and got.security_enabled is False


def test_create_dynamic_group(flavour, run, make):
    g = make.dynamic_group()
    assert g.group_types == ["DynamicMembership"]
    assert g.membership_rule == '(user.department -eq "Conformance")'
    assert g.membership_rule_processing_state == "On"
    got = run(flavour.graph.groups.by_group_id(g.id).get())
    assert got.group_types == ["DynamicMembership"]
    assert got.membership_rule == '(user.department -eq "Conformance")'


def test_seeded_distribution_group_reads_through_the_sdk(flavour, run, make):
    member = make.user()
    dl = make.distribution_group(members=[member.id])
    got = run(flavour.graph.groups.by_group_id(dl["id"]).get())
    assert isinstance(got, flavour.Group)
    assert got.id == dl["id"]
    assert got.mail_enabled is True and got.security_enabled is False
    assert got.group_types == []
    members = run(flavour.graph.groups.by_group_id(dl["id"]).members.get())
    assert [m.id for m in members.value] == [member.id]


def test_get_group_with_select(flavour, run, make):
    g = make.security_group()
    cfg = flavour.RequestConfiguration(query_parameters=flavour.GroupGetQuery(select=["id", "displayName", "groupTypes"]))
    got = run(flavour.graph.groups.by_group_id(g.id).get(cfg))
    assert got.id == g.id
    assert got.display_name == g.display_name
    assert got.group_types == []
    # set on the group but not selected: must not come back
    assert got.mail_nickname is None
    assert got.security_enabled is None
    assert got.mail_enabled is None
    assert got.description is None
    extra = {k for k in (got.additional_data or {}) if not k.startswith("@odata.")}
    assert extra == set(), f"unexpected extra properties: {extra}"


def test_get_group_expand_members(flavour, run, make):
    """``$expand=members($select=id,displayName)`` (docs/behaviour.md#expand): the SDK reads the
    expanded directoryObjects as typed models; 21 members come back as 20, with no nextLink."""
    g, nested = make.security_group(), make.security_group()
    users = make.users(20)
    body = flavour.Group(additional_data={"members@odata.bind": [flavour.odata_id(o.id) for o in users[:19]]})
    assert run(flavour.graph.groups.by_group_id(g.id).patch(body)) is None
    body = flavour.Group(additional_data={"members@odata.bind": [flavour.odata_id(o.id) for o in (users[19], nested)]})
    assert run(flavour.graph.groups.by_group_id(g.id).patch(body)) is None
    cfg = flavour.RequestConfiguration(query_parameters=flavour.GroupGetQuery(select=["id"], expand=["members($select=id,displayName)"]))
    got = run(flavour.graph.groups.by_group_id(g.id).get(cfg))
    assert got.id == g.id and got.display_name is None
    expected = sorted([*users, nested], key=lambda o: o.id)[:20]
    assert [m.id for m in got.members] == [o.id for o in expected]
    assert [type(m) for m in got.members] == [flavour.Group if o.id == nested.id else flavour.User for o in expected]
    assert [m.display_name for m in got.members] == [o.display_name for o in expected]
    assert "members@odata.nextLink" not in (got.additional_data or {})


def test_get_missing_group_is_404(flavour, run):
    import uuid

    gid = str(uuid.uuid4())
    expect_odata_error(flavour, run, flavour.graph.groups.by_group_id(gid).get(), 404, "Request_ResourceNotFound", MISSING_MESSAGE.format(id=gid))


def test_member_of_of_a_user(flavour, run, make):
    u = make.user()
    sec, m365, other = make.security_group(), make.m365_group(), make.security_group()
    for g in (sec, m365):
        run(flavour.graph.groups.by_group_id(g.id).members.ref.post(flavour.ReferenceCreate(odata_id=flavour.odata_id(u.id))))
    page = run(flavour.graph.users.by_user_id(u.id).member_of.get())
    assert page.odata_next_link is None
    ids = [o.id for o in page.value]
    assert sorted(ids) == sorted([sec.id, m365.id])
    assert other.id not in ids
    assert all(isinstance(o, flavour.Group) for o in page.value), [type(o) for o in page.value]
    by_id = {o.id: o for o in page.value}
    assert by_id[m365.id].group_types == ["Unified"]
    assert by_id[sec.id].display_name == sec.display_name


def test_member_of_cast_to_groups(flavour, run, make):
    u = make.user()
    sec = make.security_group()
    run(flavour.graph.groups.by_group_id(sec.id).members.ref.post(flavour.ReferenceCreate(odata_id=flavour.odata_id(u.id))))
    page = run(flavour.graph.users.by_user_id(u.id).member_of.graph_group.get())
    assert [g.id for g in page.value] == [sec.id]
    assert isinstance(page.value[0], flavour.Group)
