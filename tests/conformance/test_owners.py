"""Owners through the SDKs: add two, remove one, the last one cannot be removed."""

from __future__ import annotations

import pytest
from conformance_helpers import LAST_OWNER_MESSAGE, expect_odata_error

pytestmark = [
    pytest.mark.conformance,
    # the generated SDK request builders warn about their own deprecated configuration classes on import
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


def owner_ids(flavour, run, group_id):
    page = run(flavour.graph.groups.by_group_id(group_id).owners.get())
    assert page.odata_next_link is None
    return sorted(o.id for o in page.value)


@pytest.mark.parametrize("kind", ["security", "m365"])
def test_owners_add_remove_and_keep_the_last(flavour, run, make, kind):
    g = make.security_group() if kind == "security" else make.m365_group()
    o1, o2 = make.users(2)
    owners = flavour.graph.groups.by_group_id(g.id).owners
    for o in (o1, o2):
        assert run(owners.ref.post(flavour.ReferenceCreate(odata_id=flavour.odata_id(o.id)))) is None
    assert owner_ids(flavour, run, g.id) == sorted([o1.id, o2.id])
    page = run(owners.get())
    assert all(isinstance(o, flavour.User) for o in page.value)
    # owners are not members
    assert run(flavour.graph.groups.by_group_id(g.id).members.get()).value == []

    assert run(owners.by_directory_object_id(o1.id).ref.delete()) is None
    assert owner_ids(flavour, run, g.id) == [o2.id]

    expect_odata_error(flavour, run, owners.by_directory_object_id(o2.id).ref.delete(), 400, "Request_BadRequest", LAST_OWNER_MESSAGE)
    assert owner_ids(flavour, run, g.id) == [o2.id]


def test_duplicate_owner_is_400(flavour, run, make):
    g, o = make.security_group(), make.user()
    owners = flavour.graph.groups.by_group_id(g.id).owners
    run(owners.ref.post(flavour.ReferenceCreate(odata_id=flavour.odata_id(o.id))))
    expect_odata_error(
        flavour,
        run,
        owners.ref.post(flavour.ReferenceCreate(odata_id=flavour.odata_id(o.id))),
        400,
        "Request_BadRequest",
        "One or more added object references already exist for the following modified properties: 'owners'.",
    )
    assert owner_ids(flavour, run, g.id) == [o.id]
