"""The membership functions and ``getByIds``: transitive membership as lists of ids.

Graph behaviour: https://learn.microsoft.com/en-us/graph/api/directoryobject-checkmembergroups,
https://learn.microsoft.com/en-us/graph/api/directoryobject-checkmemberobjects,
https://learn.microsoft.com/en-us/graph/api/directoryobject-getmembergroups,
https://learn.microsoft.com/en-us/graph/api/directoryobject-getmemberobjects,
https://learn.microsoft.com/en-us/graph/api/directoryobject-getbyids; the choices where the pages
are silent are in docs/behaviour.md#membership-functions.

Every function is transitive and answers from one read of the groups that hold the object
(:meth:`Store.transitive_group_ids`: live groups, directly or through live nested groups), so
``checkMemberGroups`` costs the anchor's lookup plus that one read and a set intersection.
Imports nothing from HTTP: the body's shape is checked on the wire (:mod:`graphdir.odata.actions`).
"""

from __future__ import annotations

from typing import Literal

from graphdir import errors, ids
from graphdir.directory import rights
from graphdir.directory.membership import MembershipMixin
from graphdir.store.base import StoredObject

#: ``groupIds`` of checkMemberGroups and ``ids`` of checkMemberObjects: "up to 20".
MAX_CHECK_IDS = 20
#: ``ids`` of getByIds: "up to 1000".
MAX_BY_IDS = 1000
#: getMemberGroups "returns up to 11,000 group IDs"; beyond, 400 Directory_ResultSizeLimitExceeded.
MAX_MEMBER_GROUPS = 11_000

#: What a path names the object by: ``users/{id | userPrincipalName}`` and ``me``, ``groups/{id}``,
#: ``directoryObjects/{id}`` (any live object).
Anchor = Literal["user", "group", "directoryObject"]

#: getByIds ``types``: directoryObject's derived types (resources/directoryobject), by lower-case name.
#: Those graphdir never holds (applications, roles, administrative units…) are accepted and match nothing.
_DIRECTORY_TYPES = {
    t.lower(): t
    for t in (
        "user", "group", "device", "servicePrincipal", "orgContact", "application", "administrativeUnit", "directoryRole",
        "directoryRoleTemplate", "directoryObjectPartnerReference", "contract", "appRoleAssignment", "endpoint",
        "extensionProperty", "groupSettingTemplate", "organization", "resourceSpecificPermissionGrant",
    )
}  # fmt: skip


def _canonical_ids(values: list[str], limit: int) -> list[str]:
    """The ids of a request, checked: at most ``limit`` (counted as sent), each a GUID (else 400
    ``Invalid object identifier``), canonical lower case, each once in the order first sent."""
    if len(values) > limit:
        raise errors.too_many_identifiers(limit)
    return list(dict.fromkeys(ids.parse_object_id(v) for v in values))


def _types(values: list[str] | None) -> frozenset[str] | None:
    """getByIds ``types`` as graphdir's type names; ``None`` for every type ("directoryObject", or none given).

    Case-insensitive, with or without the ``microsoft.graph.`` namespace; a name that is no
    directoryObject type → 400 (docs/behaviour.md#membership-functions)."""
    if not values:
        return None
    out: set[str] = set()
    for value in values:
        name = value.lower().removeprefix("#").removeprefix("microsoft.graph.")
        if name == "directoryobject":
            return None
        if name not in _DIRECTORY_TYPES:
            raise errors.invalid_property_value("types", "DirectoryObject")
        out.add(_DIRECTORY_TYPES[name])
    return frozenset(out)


class FunctionsMixin(MembershipMixin):
    async def _function_anchor(self, actor: rights.Actor, anchor: Anchor, key: str) -> StoredObject:
        """The object in the path: unknown, deleted or of another type → 404, malformed → 400, as on ``GET``."""
        if anchor == "user":
            return await self.resolve_user(actor.tenant_id, key)
        if anchor == "group":
            return await self.resolve_group(actor.tenant_id, key)
        return await self.get_directory_object(actor, key)

    async def check_member_groups(self, actor: rights.Actor, anchor: Anchor, key: str, group_ids: list[str]) -> list[str]:
        """``POST …/checkMemberGroups``: those of ``group_ids`` (≤ 20) the object is a transitive member of.

        Ids of objects that are no group, are deleted or do not exist are left out, as are groups
        reached only through a deleted group."""
        wanted = _canonical_ids(group_ids, MAX_CHECK_IDS)
        obj = await self._function_anchor(actor, anchor, key)
        held = await self.store.transitive_group_ids(actor.tenant_id, obj.id) if wanted else set()
        return [g for g in wanted if g in held]

    async def check_member_objects(self, actor: rights.Actor, anchor: Anchor, key: str, object_ids: list[str]) -> list[str]:
        """``POST …/checkMemberObjects``: like checkMemberGroups, and a directory role's template id
        answers whether the role is assigned to the object (the page's example checks Global
        Administrator's). graphdir holds no administrative units."""
        wanted = _canonical_ids(object_ids, MAX_CHECK_IDS)
        obj = await self._function_anchor(actor, anchor, key)
        held = await self.store.transitive_group_ids(actor.tenant_id, obj.id) if wanted else set()
        if any(i not in held for i in wanted):  # only then can a role be among them
            held |= {r.lower() for r in await self.store.role_ids(actor.tenant_id, obj.id)}
        return [i for i in wanted if i in held]

    async def get_member_groups(self, actor: rights.Actor, anchor: Anchor, key: str, security_only: bool) -> list[str]:
        """``POST …/getMemberGroups`` (and getMemberObjects): every group the object is a transitive
        member of, or only the security-enabled ones; sorted by id. More than 11,000 → 400
        ``Directory_ResultSizeLimitExceeded``. ``securityEnabledOnly: false`` is accepted on users
        too (docs/behaviour.md#membership-functions)."""
        obj = await self._function_anchor(actor, anchor, key)
        held = await self.store.transitive_group_ids(actor.tenant_id, obj.id)
        if security_only and held:
            groups = await self.store.get_many(actor.tenant_id, held)
            held = {g.id for g in groups if g.deleted is None and g.props.get("securityEnabled") is True}
        if len(held) > MAX_MEMBER_GROUPS:
            raise errors.result_size_limit_exceeded(MAX_MEMBER_GROUPS)
        return sorted(held)

    async def get_by_ids(self, actor: rights.Actor, object_ids: list[str], types: list[str] | None) -> list[StoredObject]:
        """``POST /directoryObjects/getByIds``: the live objects among ``object_ids`` (≤ 1,000) of the
        given ``types``, in the order asked, each once; unknown and deleted ids are left out."""
        wanted = _canonical_ids(object_ids, MAX_BY_IDS)
        only = _types(types)
        found = {
            o.id: o
            for o in await self.store.get_many(actor.tenant_id, wanted)
            if o.deleted is None and (only is None or o.type in only)
        }
        return [found[i] for i in wanted if i in found]
