"""Handlers for members, owners and memberOf (the membership API)."""

from __future__ import annotations

from starlette.responses import Response

from graphdir import errors
from graphdir.directory.schema import ENTITY_SETS
from graphdir.odata.refs import parse_ref, ref_body
from graphdir.store.base import Page
from graphdir.web.context import Ctx
from graphdir.web.handlers_objects import user_key


def _cast_resource(c: Ctx) -> str:
    return c.args.get("cast", "directoryObject")


def _listing(c: Ctx, relation: str) -> tuple[Page, object]:
    opts = c.options(_cast_resource(c) if c.args.get("cast") in ("user", "group") else "directoryObject", relationship=True)
    if "cast" in c.args:
        opts.query.types = (c.args["cast"],)
    a = c.actor
    if relation == "members":
        page = c.dir.list_members(a, c.args["gid"], opts.query, c.version)
    elif relation == "owners":
        page = c.dir.list_owners(a, c.args["gid"], opts.query, c.version)
    elif relation == "userMemberOf":
        page = c.dir.list_member_of(a, user_key(c), opts.query, user=True)
    else:
        page = c.dir.list_member_of(a, c.args["gid"], opts.query, user=False)
    return page, opts


async def _list(c: Ctx, relation: str) -> Response:
    page, opts = _listing(c, relation)
    cast = c.args.get("cast")
    return c.collection(page, ENTITY_SETS.get(cast or "", "directoryObjects"), opts, typed=True)  # type: ignore[arg-type]


async def _count(c: Ctx, relation: str) -> Response:
    if not c.eventual:
        raise errors.count_not_supported()
    opts = c.options(_cast_resource(c) if c.args.get("cast") in ("user", "group") else "directoryObject", relationship=True)
    q = opts.query
    q.count, q.top, q.after = True, 1, None
    if "cast" in c.args:
        q.types = (c.args["cast"],)
    a = c.actor
    if relation == "members":
        page = c.dir.list_members(a, c.args["gid"], q, c.version)
    elif relation == "owners":
        page = c.dir.list_owners(a, c.args["gid"], q, c.version)
    elif relation == "userMemberOf":
        page = c.dir.list_member_of(a, user_key(c), q, user=True)
    else:
        page = c.dir.list_member_of(a, c.args["gid"], q, user=False)
    return c.text(str(page.count or 0))


async def list_members(c: Ctx) -> Response:
    return await _list(c, "members")


async def count_members(c: Ctx) -> Response:
    return await _count(c, "members")


async def list_member_refs(c: Ctx) -> Response:
    page, opts = _listing(c, "members")
    return c.refs(page, opts)  # type: ignore[arg-type]


async def get_member(c: Ctx) -> Response:
    """``GET /groups/{id}/members/{id}``: the member as a directoryObject, if it is a member."""
    opts = c.options("directoryObject", collection=False)
    group = c.dir.resolve_group(c.actor.tenant_id, c.args["gid"])
    obj = c.dir.get_directory_object(c.actor, c.args["mid"])
    if not c.app.store.is_member(c.actor.tenant_id, group.id, obj.id):
        raise errors.not_found(c.args["mid"])
    return c.entity(obj, opts, entity_set="directoryObjects")


async def add_member(c: Ctx) -> Response:
    ref = ref_body(await c.body())
    await c.dir.add_member(c.actor, c.args["gid"], ref)
    return c.no_content()


async def remove_member(c: Ctx) -> Response:
    """``DELETE …/members/{id}/$ref`` and the seed page's ``DELETE …/members/$ref/{id}``."""
    await c.dir.remove_member(c.actor, c.args["gid"], c.args["mid"])
    return c.no_content()


def _at_id(c: Ctx) -> str:
    value = c.request.query_params.get("@id") or c.request.query_params.get("$id")
    if not value:
        raise errors.bad_request("The '@id' query parameter naming the reference to remove is required.")
    return parse_ref(value).id


async def remove_member_by_at_id(c: Ctx) -> Response:
    """``DELETE …/members/$ref?@id=https://graph.microsoft.com/v1.0/directoryObjects/{id}`` (sdk-wire.md §5)."""
    await c.dir.remove_member(c.actor, c.args["gid"], _at_id(c))
    return c.no_content()


async def delete_member_object(c: Ctx) -> Response:
    await c.dir.delete_member_object(c.actor, c.args["gid"], c.args["mid"], c.version)
    return c.no_content()


async def list_owners(c: Ctx) -> Response:
    return await _list(c, "owners")


async def count_owners(c: Ctx) -> Response:
    return await _count(c, "owners")


async def list_owner_refs(c: Ctx) -> Response:
    page, opts = _listing(c, "owners")
    return c.refs(page, opts)  # type: ignore[arg-type]


async def add_owner(c: Ctx) -> Response:
    ref = ref_body(await c.body())
    await c.dir.add_owner(c.actor, c.args["gid"], ref)
    return c.no_content()


async def remove_owner(c: Ctx) -> Response:
    await c.dir.remove_owner(c.actor, c.args["gid"], c.args["oid"])
    return c.no_content()


async def remove_owner_by_at_id(c: Ctx) -> Response:
    await c.dir.remove_owner(c.actor, c.args["gid"], _at_id(c))
    return c.no_content()


async def user_member_of(c: Ctx) -> Response:
    return await _list(c, "userMemberOf")


async def count_user_member_of(c: Ctx) -> Response:
    return await _count(c, "userMemberOf")


async def group_member_of(c: Ctx) -> Response:
    return await _list(c, "groupMemberOf")


async def count_group_member_of(c: Ctx) -> Response:
    return await _count(c, "groupMemberOf")
