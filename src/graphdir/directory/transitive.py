"""Transitive members and transitive memberOf: the flattened relationships.

Graph behaviour: https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers,
https://learn.microsoft.com/en-us/graph/api/user-list-transitivememberof and
https://learn.microsoft.com/en-us/graph/api/group-list-transitivememberof; what is listed, in which
order and at what cost: docs/behaviour.md#transitive-membership. The same rules as the direct
listings of :class:`~graphdir.directory.membership.MembershipMixin` apply (the group or user is
resolved first, a cast to a type the group cannot hold is refused, v1.0 may hide service
principals); the store walks the nesting (graphdir.store.transitive).
"""

from __future__ import annotations

from graphdir.directory import rights
from graphdir.directory.membership import MembershipMixin
from graphdir.query import ListQuery
from graphdir.store.base import Page


class TransitiveMixin(MembershipMixin):
    async def list_transitive_members(self, actor: rights.Actor, group_id: str, q: ListQuery, version: str) -> Page:
        """``GET /groups/{id}/transitiveMembers``: the members of the group and of its live nested
        groups at any depth (the nested groups themselves included), each once, keyset-paged."""
        group = await self.resolve_group(actor.tenant_id, group_id)
        self._check_cast(group, q, "members")
        return await self.store.list_transitive_members(actor.tenant_id, group.id, self._hide_sp(q, version))

    async def list_transitive_member_of(self, actor: rights.Actor, object_id: str, q: ListQuery, user: bool) -> Page:
        """``GET /users/{id}/transitiveMemberOf`` (and ``/me``), ``GET /groups/{id}/transitiveMemberOf``:
        every live group that holds the object, directly or through live nested groups."""
        obj = await self._resolve_holder(actor, object_id, user)
        return await self.store.list_transitive_member_of(actor.tenant_id, obj.id, q)
