"""Handlers for members, owners and memberOf (the membership API), and the relationship listing
machinery (options, casts, `$count` segment, paging) that handlers_transitive shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from graphdir import errors
from graphdir.directory.schema import ENTITY_SETS
from graphdir.odata.options import Options
from graphdir.odata.refs import parse_ref, ref_body
from graphdir.query import ListQuery
from graphdir.store.base import Page
from graphdir.web.context import Ctx
from graphdir.web.handlers_objects import user_key
from graphdir.web.responses import GraphResponse

#: One relationship's page for a request: the domain call a listing, its ``$count`` segment and its
#: ``$ref`` form share (the transitive ones of handlers_transitive too).
PageFn = Callable[[Ctx, ListQuery], Awaitable[Page]]


def relation_query(c: Ctx) -> Options:
    """Options for a relationship listing; a cast segment narrows the item type (and ``$select``)."""
    cast = c.args.get("cast")
    opts = c.options(cast if cast in ("user", "group") else "directoryObject", relationship=True)
    if cast:
        opts.query.types = (cast,)
    return opts


async def relation_list(c: Ctx, page: PageFn) -> GraphResponse:
    """A relationship listing: ``directoryObject`` items with ``@odata.type``, or the cast's type."""
    opts = relation_query(c)
    opts.query.rendered = c.rendering if opts.select is None else None
    return c.collection(await page(c, opts.query), ENTITY_SETS.get(c.args.get("cast", ""), "directoryObjects"), opts, typed=True)


async def relation_count(c: Ctx, page: PageFn) -> GraphResponse:
    """The ``$count`` segment needs ``ConsistencyLevel: eventual`` (aad-advanced-queries.md)."""
    if not c.eventual:
        raise errors.count_not_supported()
    q = relation_query(c).query
    q.count, q.top, q.after = True, 1, None
    return c.text(str((await page(c, q)).count or 0))


async def _members(c: Ctx, q: ListQuery) -> Page:
    return await c.dir.list_members(c.actor, c.args["gid"], q, c.version)


async def _owners(c: Ctx, q: ListQuery) -> Page:
    return await c.dir.list_owners(c.actor, c.args["gid"], q, c.version)


async def _user_member_of(c: Ctx, q: ListQuery) -> Page:
    return await c.dir.list_member_of(c.actor, user_key(c), q, user=True)


async def _group_member_of(c: Ctx, q: ListQuery) -> Page:
    return await c.dir.list_member_of(c.actor, c.args["gid"], q, user=False)


async def list_members(c: Ctx) -> GraphResponse:
    return await relation_list(c, _members)


async def count_members(c: Ctx) -> GraphResponse:
    return await relation_count(c, _members)


async def list_member_refs(c: Ctx) -> GraphResponse:
    opts = relation_query(c)
    return c.refs(await _members(c, opts.query), opts)


async def get_member(c: Ctx) -> GraphResponse:
    """``GET /groups/{id}/members/{id}``: the member as a directoryObject, if it is a member."""
    opts = c.options("directoryObject", collection=False)
    group = await c.dir.resolve_group(c.actor.tenant_id, c.args["gid"])
    obj = await c.dir.get_directory_object(c.actor, c.args["mid"])
    if not await c.app.store.is_member(c.actor.tenant_id, group.id, obj.id):
        raise errors.not_found(c.args["mid"])
    return c.entity(obj, opts, entity_set="directoryObjects")


async def add_member(c: Ctx) -> GraphResponse:
    ref = ref_body(await c.body())
    await c.dir.add_member(c.actor, c.args["gid"], ref)
    return c.no_content()


async def remove_member(c: Ctx) -> GraphResponse:
    """``DELETE …/members/{id}/$ref`` and the seed page's ``DELETE …/members/$ref/{id}``."""
    await c.dir.remove_member(c.actor, c.args["gid"], c.args["mid"])
    return c.no_content()


def _at_id(c: Ctx) -> str:
    value = c.request.query("@id") or c.request.query("$id")
    if not value:
        raise errors.bad_request("The '@id' query parameter naming the reference to remove is required.")
    return parse_ref(value).id


async def remove_member_by_at_id(c: Ctx) -> GraphResponse:
    """``DELETE …/members/$ref?@id=https://graph.microsoft.com/v1.0/directoryObjects/{id}`` (docs/behaviour.md#remove-by-query-reference)."""
    await c.dir.remove_member(c.actor, c.args["gid"], _at_id(c))
    return c.no_content()


async def delete_member_object(c: Ctx) -> GraphResponse:
    await c.dir.delete_member_object(c.actor, c.args["gid"], c.args["mid"], c.version)
    return c.no_content()


async def list_owners(c: Ctx) -> GraphResponse:
    return await relation_list(c, _owners)


async def count_owners(c: Ctx) -> GraphResponse:
    return await relation_count(c, _owners)


async def list_owner_refs(c: Ctx) -> GraphResponse:
    opts = relation_query(c)
    return c.refs(await _owners(c, opts.query), opts)


async def add_owner(c: Ctx) -> GraphResponse:
    ref = ref_body(await c.body())
    await c.dir.add_owner(c.actor, c.args["gid"], ref)
    return c.no_content()


async def remove_owner(c: Ctx) -> GraphResponse:
    await c.dir.remove_owner(c.actor, c.args["gid"], c.args["oid"])
    return c.no_content()


async def remove_owner_by_at_id(c: Ctx) -> GraphResponse:
    await c.dir.remove_owner(c.actor, c.args["gid"], _at_id(c))
    return c.no_content()


async def user_member_of(c: Ctx) -> GraphResponse:
    return await relation_list(c, _user_member_of)


async def count_user_member_of(c: Ctx) -> GraphResponse:
    return await relation_count(c, _user_member_of)


async def group_member_of(c: Ctx) -> GraphResponse:
    return await relation_list(c, _group_member_of)


async def count_group_member_of(c: Ctx) -> GraphResponse:
    return await relation_count(c, _group_member_of)
