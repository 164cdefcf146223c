"""Handlers for the membership functions and ``getByIds``. Thin: parse the body, one domain call, serialise.

``checkMemberGroups``, ``checkMemberObjects``, ``getMemberGroups`` and ``getMemberObjects`` answer
``{"@odata.context": "…/$metadata#Collection(Edm.String)", "value": [ids]}``
(https://learn.microsoft.com/en-us/graph/api/directoryobject-checkmembergroups and its siblings);
``getByIds`` answers the objects as ``$metadata#directoryObjects``, each with its ``@odata.type`` and
the default properties ``GET /directoryObjects/{id}`` returns
(https://learn.microsoft.com/en-us/graph/api/directoryobject-getbyids). docs/behaviour.md#membership-functions.
"""

from __future__ import annotations

from typing import Any

from graphdir import errors
from graphdir.directory.functions import Anchor
from graphdir.odata import actions, serialize
from graphdir.web import responses
from graphdir.web.context import Ctx
from graphdir.web.handlers_objects import user_key
from graphdir.web.responses import GraphResponse


def _anchor(c: Ctx) -> tuple[Anchor, str]:
    """What the path names: ``users/{uid}`` or ``me`` (the signed-in user), ``groups/{gid}``, ``directoryObjects/{id}``."""
    if "gid" in c.args:
        return "group", c.args["gid"]
    if "id" in c.args:
        return "directoryObject", c.args["id"]
    return "user", user_key(c)


def _strings(c: Ctx, values: list[str]) -> GraphResponse:
    body = {"@odata.context": f"{c.base}/{c.version}/$metadata#Collection(Edm.String)", "value": values}
    return responses.json_response(body, c.rid, c.cid)


async def _params(c: Ctx, operation: str, params: tuple[actions.Param, ...]) -> dict[str, Any]:
    return actions.parameters(await c.body(), operation, params)


async def check_member_groups(c: Ctx) -> GraphResponse:
    anchor, key = _anchor(c)
    p = await _params(c, "checkMemberGroups", actions.CHECK_MEMBER_GROUPS)
    return _strings(c, await c.dir.check_member_groups(c.actor, anchor, key, p["groupIds"]))


async def check_member_objects(c: Ctx) -> GraphResponse:
    anchor, key = _anchor(c)
    p = await _params(c, "checkMemberObjects", actions.CHECK_MEMBER_OBJECTS)
    return _strings(c, await c.dir.check_member_objects(c.actor, anchor, key, p["ids"]))


async def _member_groups(c: Ctx, operation: str) -> GraphResponse:
    anchor, key = _anchor(c)
    p = await _params(c, operation, actions.GET_MEMBER)
    return _strings(c, await c.dir.get_member_groups(c.actor, anchor, key, p["securityEnabledOnly"]))


async def get_member_groups(c: Ctx) -> GraphResponse:
    return await _member_groups(c, "getMemberGroups")


async def get_member_objects(c: Ctx) -> GraphResponse:
    """The groups, as getMemberGroups: graphdir holds no directoryRole or administrativeUnit objects to add."""
    return await _member_groups(c, "getMemberObjects")


async def get_by_ids(c: Ctx) -> GraphResponse:
    """``POST /directoryObjects/getByIds``; system query options → 400 (as Graph answers them)."""
    if any(k.startswith("$") for k, _ in c.request.query_items):
        raise errors.query_options_not_supported()
    p = await _params(c, "getByIds", actions.GET_BY_IDS)
    objs = await c.dir.get_by_ids(c.actor, p["ids"], p.get("types"))
    body: dict[str, Any] = {"@odata.context": serialize.context(c.base, c.version, "directoryObjects")}
    body["value"] = [serialize.entity(o, None, typed=True, version=c.version) for o in objs]
    return responses.json_response(body, c.rid, c.cid)
