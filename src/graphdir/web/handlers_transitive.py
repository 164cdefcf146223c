"""Handlers for the transitive relationships: ``transitiveMembers`` and ``transitiveMemberOf``.

Thin, as every handler: parse, authorise (the route's permissions), one domain call, serialise,
through the relationship machinery of :mod:`graphdir.web.handlers_relations` (same options,
casts, ``$count`` segment and paging as the direct lists). Graph behaviour:
https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers,
https://learn.microsoft.com/en-us/graph/api/user-list-transitivememberof,
https://learn.microsoft.com/en-us/graph/api/group-list-transitivememberof; docs/behaviour.md#transitive-membership.
"""

from __future__ import annotations

from graphdir.query import ListQuery
from graphdir.store.base import Page
from graphdir.web.context import Ctx
from graphdir.web.handlers_objects import user_key
from graphdir.web.handlers_relations import relation_count, relation_list
from graphdir.web.responses import GraphResponse


async def _members(c: Ctx, q: ListQuery) -> Page:
    return await c.dir.list_transitive_members(c.actor, c.args["gid"], q, c.version)


async def _user_member_of(c: Ctx, q: ListQuery) -> Page:
    return await c.dir.list_transitive_member_of(c.actor, user_key(c), q, user=True)


async def _group_member_of(c: Ctx, q: ListQuery) -> Page:
    return await c.dir.list_transitive_member_of(c.actor, c.args["gid"], q, user=False)


async def list_transitive_members(c: Ctx) -> GraphResponse:
    """``GET /groups/{id}/transitiveMembers[/{cast}]``."""
    return await relation_list(c, _members)


async def count_transitive_members(c: Ctx) -> GraphResponse:
    """``GET /groups/{id}/transitiveMembers[/{cast}]/$count``."""
    return await relation_count(c, _members)


async def user_transitive_member_of(c: Ctx) -> GraphResponse:
    """``GET /users/{id}/transitiveMemberOf[/{cast}]`` and ``GET /me/transitiveMemberOf[/{cast}]``."""
    return await relation_list(c, _user_member_of)


async def count_user_transitive_member_of(c: Ctx) -> GraphResponse:
    return await relation_count(c, _user_member_of)


async def group_transitive_member_of(c: Ctx) -> GraphResponse:
    """``GET /groups/{id}/transitiveMemberOf[/{cast}]``."""
    return await relation_list(c, _group_member_of)


async def count_group_transitive_member_of(c: Ctx) -> GraphResponse:
    return await relation_count(c, _group_member_of)
