"""Handlers for users, groups and directoryObjects. Thin: parse, one domain call, serialise."""

from __future__ import annotations

import asyncio
from typing import Any

from graphdir import errors, seeding
from graphdir.auth.permissions import Perms, authorize
from graphdir.directory import expansion
from graphdir.directory.common import Ref
from graphdir.odata import metadata as csdl
from graphdir.odata.options import Options
from graphdir.odata.refs import bind_list, unknown_binds
from graphdir.store.base import StoredObject
from graphdir.web.context import Ctx, Related
from graphdir.web.responses import GraphResponse


def me_needs_delegated() -> errors.GraphError:
    """``/me`` with an app-only token, whatever its roles: there is no signed-in user (user-get.md)."""
    return errors.GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")


def _me(c: Ctx) -> str:
    """``/me`` needs a delegated token (user-get.md)."""
    if not c.actor.delegated or not c.actor.user_id:
        raise me_needs_delegated()
    return c.actor.user_id


def user_key(c: Ctx) -> str:
    return _me(c) if "uid" not in c.args else c.args["uid"]


def _expand_perms(relation: str) -> Perms:
    """Expanding a relationship needs what listing it needs (group-list-members.md,
    user-list-memberof.md): the route table's permissions of that listing."""
    from graphdir.web import routes  # the route table imports this module: read it at call time

    return routes.EXPANSION_PERMS[relation]


def _expandable(c: Ctx, resource: str, collection: bool = True) -> Options:
    """Options of a user or group read that may ``$expand``; an expansion checks its permissions
    before anything is read, and asks for items, not pre-rendered bytes."""
    opts = c.options(resource, collection=collection, expandable=True)
    if opts.expand is not None:
        authorize(c.actor, _expand_perms(opts.expand.relation))
    elif collection:
        opts.query.rendered = c.rendering if opts.select is None else None
    return opts


async def _related(c: Ctx, opts: Options, objs: list[StoredObject]) -> Related | None:
    """``$expand``: each object's first related items, one store read for the page (docs/behaviour.md#expand)."""
    if opts.expand is None:
        return None
    return await expansion.related(c.dir.store, c.actor.tenant_id, objs, opts.expand.relation)


# -- the service ----------------------------------------------------------------------
async def metadata(c: Ctx) -> GraphResponse:
    """``GET /{version}/$metadata``: the CSDL document every ``@odata.context`` points at
    (https://learn.microsoft.com/en-us/graph/traverse-the-graph); anonymous, query options ignored."""
    return c.xml(csdl.document(c.version))


# -- users ---------------------------------------------------------------------------
async def list_users(c: Ctx) -> GraphResponse:
    opts = _expandable(c, "user")
    page = await c.dir.list_users(c.actor, opts.query)
    return c.collection(page, "users", opts, typed=False, related=await _related(c, opts, page.items))


async def count_users(c: Ctx) -> GraphResponse:
    return await _count(c, "user")


async def create_user(c: Ctx) -> GraphResponse:
    obj = await c.dir.create_user(c.actor, await c.body())
    return c.entity(obj, None, status=201)


async def get_user(c: Ctx) -> GraphResponse:
    opts = _expandable(c, "user", collection=False)
    obj = await c.dir.get_user(c.actor, user_key(c))
    return c.entity(obj, opts, related=await _related(c, opts, [obj]))


async def update_user(c: Ctx) -> GraphResponse:
    await c.dir.update_user(c.actor, user_key(c), await c.body())
    return c.no_content()


async def delete_user(c: Ctx) -> GraphResponse:
    await c.dir.delete_user(c.actor, c.args["uid"])
    return c.no_content()


# -- groups --------------------------------------------------------------------------
async def list_groups(c: Ctx) -> GraphResponse:
    opts = _expandable(c, "group")
    page = await c.dir.list_groups(c.actor, opts.query)
    return c.collection(page, "groups", opts, typed=False, related=await _related(c, opts, page.items))


async def count_groups(c: Ctx) -> GraphResponse:
    return await _count(c, "group")


async def _count(c: Ctx, type_: str) -> GraphResponse:
    """The ``$count`` segment needs ``ConsistencyLevel: eventual`` (aad-advanced-queries.md)."""
    if not c.eventual:
        raise errors.count_not_supported()
    opts = c.options(type_)
    q = opts.query
    q.count, q.top, q.after = True, 1, None
    page = await c.dir.list_users(c.actor, q) if type_ == "user" else await c.dir.list_groups(c.actor, q)
    return c.text(str(page.count or 0))


def _binds(body: dict[str, Any]) -> tuple[list[Ref], list[Ref]]:
    extra = unknown_binds(body)
    if extra:
        raise errors.property_not_found(extra[0].split("@")[0], "microsoft.graph.group")
    return bind_list(body, "owners@odata.bind"), bind_list(body, "members@odata.bind")


async def create_group(c: Ctx) -> GraphResponse:
    body = await c.body()
    owners, members = _binds(body)
    obj = await c.dir.create_group(c.actor, body, owners, members, c.version)
    return c.entity(obj, None, status=201)


async def get_group(c: Ctx) -> GraphResponse:
    opts = _expandable(c, "group", collection=False)
    obj = await c.dir.get_group(c.actor, c.args["gid"])
    return c.entity(obj, opts, related=await _related(c, opts, [obj]))


async def update_group(c: Ctx) -> GraphResponse:
    body = await c.body()
    owners, members = _binds(body)
    await c.dir.update_group(c.actor, c.args["gid"], body, owners, members, c.version)
    return c.no_content()


async def delete_group(c: Ctx) -> GraphResponse:
    await c.dir.delete_group(c.actor, c.args["gid"], soft_delete_security=c.version == "beta")
    return c.no_content()


# -- directoryObjects ---------------------------------------------------------------------
async def get_directory_object(c: Ctx) -> GraphResponse:
    opts = c.options("directoryObject", collection=False)
    return c.entity(await c.dir.get_directory_object(c.actor, c.args["id"]), opts, entity_set="directoryObjects")


async def seed(c: Ctx) -> GraphResponse:
    """``POST /graphdir/admin/seed``: create objects Graph cannot (distribution, synced, devices…).

    The body is one object or a list of objects, as in a ``graphdir seed`` file (docs/seeding.md),
    checked like the Graph routes check bodies (property types, the tenant's verified domains,
    members that exist) before anything is written; a list is written in one transaction.
    One object answers it (201); a list answers ``{"value": [...]}`` in the same order.
    """
    body = await c.body_json()
    try:
        # the planner reads synchronously (it is the CLI's too): on a thread, never on the loop
        plans = await asyncio.to_thread(seeding.plan, c.dir.store, c.actor.tenant_id, body, existing="refuse", tenants=False)
    except seeding.SeedError as exc:
        raise exc.error from None
    await seeding.write(c.dir.store, plans[0])
    created = [s.obj for s in plans[0].objects]
    if isinstance(body, list):
        return c.collection_created(created)
    return c.entity(created[0], None, status=201)
