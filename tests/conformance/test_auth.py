"""Authentication and authorisation errors as the SDKs surface them."""

from __future__ import annotations

import pytest
from conformance_helpers import INSUFFICIENT_PRIVILEGES, expect_odata_error

pytestmark = [
    pytest.mark.conformance,
    # the generated SDK request builders warn about their own deprecated configuration classes on import
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]


@pytest.fixture(scope="session")
def user_read_token(server):
    return server.mint_token("User.Read.All")


def test_bad_token_is_401(flavour, run):
    client = flavour.client("garbage")
    err = expect_odata_error(flavour, run, client.groups.get(), 401, "InvalidAuthenticationToken")
    assert err.error.message.startswith("IDX14100: JWT is not well formed, there are no dots (.)."), err.error.message


def test_bad_token_cannot_change_membership(flavour, run, make):
    g, u = make.security_group(), make.user()
    client = flavour.client("garbage")
    body = flavour.ReferenceCreate(odata_id=flavour.odata_id(u.id))
    expect_odata_error(flavour, run, client.groups.by_group_id(g.id).members.ref.post(body), 401, "InvalidAuthenticationToken")
    assert run(flavour.graph.groups.by_group_id(g.id).members.get()).value == []


def test_token_without_permission_is_403(flavour, run, make, user_read_token):
    g, u = make.security_group(), make.user()
    client = flavour.client(user_read_token)
    # the token itself is valid: User.Read.All may read users
    assert run(client.users.by_user_id(u.id).get()).id == u.id
    body = flavour.ReferenceCreate(odata_id=flavour.odata_id(u.id))
    expect_odata_error(flavour, run, client.groups.by_group_id(g.id).members.ref.post(body), 403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)
    expect_odata_error(flavour, run, client.groups.by_group_id(g.id).get(), 403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)
    assert run(flavour.graph.groups.by_group_id(g.id).members.get()).value == []


def test_token_without_permission_cannot_remove_members(flavour, run, make, user_read_token):
    g, u = make.security_group(), make.user()
    run(flavour.graph.groups.by_group_id(g.id).members.ref.post(flavour.ReferenceCreate(odata_id=flavour.odata_id(u.id))))
    client = flavour.client(user_read_token)
    item = client.groups.by_group_id(g.id).members.by_directory_object_id(u.id)
    expect_odata_error(flavour, run, item.ref.delete(), 403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)
    assert [m.id for m in run(flavour.graph.groups.by_group_id(g.id).members.get()).value] == [u.id]
