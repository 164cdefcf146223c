"""Handlers for users, groups and directoryObjects. Thin: parse, one domain call, serialise."""

from __future__ import annotations

from typing import Any

from graphdir import errors
from graphdir.directory.common import Ref
from graphdir.odata import metadata as csdl
from graphdir.odata.refs import bind_list, unknown_binds
from graphdir.web.context import Ctx
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


# -- the service ----------------------------------------------------------------------
async def metadata(c: Ctx) -> GraphResponse:
    """``GET /{version}/$metadata``: the CSDL document every ``@odata.context`` points at
    (https://learn.microsoft.com/en-us/graph/traverse-the-graph); anonymous, query options ignored."""
    return c.xml(csdl.document(c.version))


# -- users ---------------------------------------------------------------------------
async def list_users(c: Ctx) -> GraphResponse:
    opts = c.options("user")
    opts.query.rendered = c.rendering if opts.select is None else None
    return c.collection(c.dir.list_users(c.actor, opts.query), "users", opts, typed=False)


async def count_users(c: Ctx) -> GraphResponse:
    return await _count(c, "user")


async def create_user(c: Ctx) -> GraphResponse:
    obj = await c.dir.create_user(c.actor, await c.body())
    return c.entity(obj, None, status=201)


async def get_user(c: Ctx) -> GraphResponse:
    opts = c.options("user", collection=False)
    return c.entity(c.dir.get_user(c.actor, user_key(c)), opts)


async def update_user(c: Ctx) -> GraphResponse:
    await c.dir.update_user(c.actor, user_key(c), await c.body())
    return c.no_content()


async def delete_user(c: Ctx) -> GraphResponse:
    await c.dir.delete_user(c.actor, c.args["uid"])
    return c.no_content()


# -- groups --------------------------------------------------------------------------
async def list_groups(c: Ctx) -> GraphResponse:
    opts = c.options("group")
    opts.query.rendered = c.rendering if opts.select is None else None
    return c.collection(c.dir.list_groups(c.actor, opts.query), "groups", opts, typed=False)


async def count_groups(c: Ctx) -> GraphResponse:
    return await _count(c, "group")


async def _count(c: Ctx, type_: str) -> GraphResponse:
    """The ``$count`` segment needs ``ConsistencyLevel: eventual`` (aad-advanced-queries.md)."""
    if not c.eventual:
        raise errors.count_not_supported()
    opts = c.options(type_)
    q = opts.query
    q.count, q.top, q.after = True, 1, None
    page = c.dir.list_users(c.actor, q) if type_ == "user" else c.dir.list_groups(c.actor, q)
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
    opts = c.options("group", collection=False)
    return c.entity(c.dir.get_group(c.actor, c.args["gid"]), opts)


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
    return c.entity(c.dir.get_directory_object(c.actor, c.args["id"]), opts, entity_set="directoryObjects")


async def seed(c: Ctx) -> GraphResponse:
    """``POST /graphdir/admin/seed``: create objects Graph cannot (distribution, synced, devices…)."""
    body = await c.body()
    type_ = body.pop("@type", None) or body.pop("type", None)
    members = body.pop("members", [])
    if not isinstance(type_, str) or not isinstance(members, list):
        raise errors.bad_request("Seed body: {'type': 'group'|'user'|'device'|'servicePrincipal'|'orgContact', ...properties, 'members': [ids]}.")
    obj = await c.dir.seed_object(c.actor.tenant_id, type_, body, [str(m) for m in members])
    return c.entity(obj, None, status=201)

