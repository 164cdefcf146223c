"""Groups: create, get, list, update (incl. ``members@odata.bind``), delete, seed.

Graph behaviour: group-post-groups.md, group-get.md, group-list.md,
group-update.md, group-delete.md; docs/behaviour.md#group-kinds, docs/behaviour.md#groups-and-users.
"""

from __future__ import annotations

from typing import Any

from graphdir import errors, ids
from graphdir.directory import kinds, rights
from graphdir.directory.common import Ref, get_live, now, resolve_ref, security_identifier, soft_delete, validate_body
from graphdir.directory.schema import GROUP
from graphdir.directory.users import UsersMixin
from graphdir.query import ListQuery
from graphdir.store.base import Change, Page, StoredObject, Txn

_REQUIRED_GROUP = ("displayName", "mailEnabled", "mailNickname", "securityEnabled")
_NICK_FORBIDDEN = set('@()\\[]";:.<>, ')


def _check_nickname(nick: str) -> None:
    if not nick or any(c in _NICK_FORBIDDEN or ord(c) > 127 for c in nick):
        raise errors.invalid_property_value("mailNickname", "Group")


_GROUP_TYPES = {"unified": "Unified", "dynamicmembership": "DynamicMembership"}


def _group_types(value: Any) -> list[str]:
    """``groupTypes`` in Graph's spelling (compared case-insensitively); only the two known values."""
    types = value or []
    if any(t.lower() not in _GROUP_TYPES for t in types):
        raise errors.invalid_property_value("groupTypes", "Group")
    return list(dict.fromkeys(_GROUP_TYPES[t.lower()] for t in types))


def _kind_change(old: dict[str, Any], props: dict[str, Any]) -> None:
    """What a PATCH may change of a group's kind (``groupTypes``, ``mailEnabled``, ``securityEnabled``).

    Graph (group-update.md, resources/group.md, groups overview): a group is never converted between
    a Microsoft 365 group and a security group (``Unified`` cannot be added or removed) and
    ``mailEnabled`` is not changed through Graph; ``DynamicMembership`` may be added (with a
    ``membershipRule``; processing starts ``On``) or removed (the members stay, the rule goes);
    ``securityEnabled`` is updatable, but a group that is not mail-enabled must stay
    security-enabled and so must a role-assignable group. Values sent unchanged are accepted.
    Refusals answer ``Invalid value specified for property '…' of resource 'Group'.``
    (docs/behaviour.md). ``props`` is normalised in place.
    """
    was_unified, was_dynamic = kinds.is_unified(old), kinds.is_dynamic(old)
    if "groupTypes" in props:
        props["groupTypes"] = new_types = _group_types(props["groupTypes"])
        unified, dynamic = "Unified" in new_types, "DynamicMembership" in new_types
        if unified != was_unified or (dynamic and old.get("isAssignableToRole") is True):
            raise errors.invalid_property_value("groupTypes", "Group")
    else:
        unified, dynamic = was_unified, was_dynamic
    if "mailEnabled" in props and bool(props["mailEnabled"]) != bool(old.get("mailEnabled")):
        raise errors.invalid_property_value("mailEnabled", "Group")
    if "securityEnabled" in props and props["securityEnabled"] is not True:
        if not unified or old.get("isAssignableToRole") is True:
            raise errors.invalid_property_value("securityEnabled", "Group")
    rule_changed = any(k in props and props[k] != old.get(k) for k in ("membershipRule", "membershipRuleProcessingState"))
    if not dynamic and rule_changed:
        raise errors.bad_request("A membershipRule can be set only on a group with the 'DynamicMembership' group type.")
    if dynamic and not was_dynamic:
        if not (props.get("membershipRule") or old.get("membershipRule")):
            raise errors.required_property("membershipRule")
        props.setdefault("membershipRuleProcessingState", "On")
    elif was_dynamic and not dynamic:
        props["membershipRule"] = props["membershipRuleProcessingState"] = None


def _group_defaults(gid: str, created: str, props: dict[str, Any], domain: str) -> dict[str, Any]:
    unified = kinds.kind(props) == "unified"
    nick = props.get("mailNickname")
    mail = f"{nick}@{domain}" if props.get("mailEnabled") and nick else None
    out: dict[str, Any] = {name: None for name, p in GROUP.items() if p.default}
    out.update(
        {
            "id": gid,
            "createdDateTime": created,
            "groupTypes": [],
            "proxyAddresses": [f"SMTP:{mail}"] if mail else [],
            "mail": mail,
            "renewedDateTime": created,
            "resourceBehaviorOptions": [],
            "resourceProvisioningOptions": [],
            "securityIdentifier": security_identifier(gid),
            "onPremisesProvisioningErrors": [],
            "visibility": "Public" if unified else "Private",
            "isAssignableToRole": None,
        }
    )
    out.update(props)
    if kinds.is_dynamic(out) and not out.get("membershipRuleProcessingState"):
        out["membershipRuleProcessingState"] = "On"
    if out.get("isAssignableToRole") is True:
        out["visibility"] = "Private"
    return out


def build_seed_object(tenant_id: str, type_: str, props: dict[str, Any], domain: str) -> StoredObject:
    """The object a seed entry makes (no Graph create rules: distribution, synced, devices…);
    groups get the defaults ``POST /groups`` gives, with ``mail`` in ``domain``. ``type_`` is one
    of the schema's types, with a ``displayName`` (:mod:`graphdir.seeding` checks them, and every property, first)."""
    oid = ids.parse_object_id(str(props.get("id") or ids.new_id()))
    created = now()
    if type_ == "group":
        clean = {k: v for k, v in props.items() if k != "id"}
        full = _group_defaults(oid, created, clean, domain)
        if "mail" in props:
            full["mail"] = props["mail"]
    else:
        full = {"id": oid, "deletedDateTime": None, **props}
        full["id"] = oid
    return StoredObject(tenant_id, oid, type_, full, created)


class GroupsMixin(UsersMixin):
    async def _tenant_domain(self, tenant_id: str) -> str:
        t = await self.store.get_tenant(tenant_id) or {}
        return str(t.get("domain") or self.settings.default_domain)

    async def resolve_group(self, tenant_id: str, key: str) -> StoredObject:
        gid = ids.parse_object_id(key)
        obj = await self.store.get(tenant_id, gid)
        if obj is None or obj.deleted is not None or obj.type != "group":
            raise errors.not_found(key)
        return obj

    def _apply_links(
        self, tx: Txn, actor: rights.Actor, group: StoredObject, owners: list[Ref], members: list[Ref], creating: bool
    ) -> None:
        """Resolve and add every bound owner and member, or raise before anything is kept (all-or-nothing)."""
        g = group.props
        if members and not creating:
            kinds.check_membership_writable(g, self.settings.mail_enabled_security_membership)
        seen: set[str] = set()
        for ref in members:
            obj = resolve_ref(tx, ref)
            kinds.check_member_type(g, obj.type, obj.props)
            rights.check_member_type_grant(actor, obj.type)
            if obj.type == "group":
                if obj.id == group.id or obj.id in tx.ancestors(group.id):
                    raise kinds.cycle()
            if obj.id in seen or not tx.add_member(group.id, obj.id, obj.type):
                raise errors.already_exist("members")
            seen.add(obj.id)
            tx.record(Change(group.id, "group", "addMember", related_id=obj.id, actor=actor.label))
        seen.clear()
        for ref in owners:
            obj = resolve_ref(tx, ref)
            if obj.type not in kinds.OWNER_TYPES:
                raise errors.bad_request(f"An object of type '{obj.type}' is unsupported as an owner of a group.")
            if obj.id in seen or not tx.add_owner(group.id, obj.id, obj.type):
                raise errors.already_exist("owners")
            seen.add(obj.id)
            tx.record(Change(group.id, "group", "addOwner", related_id=obj.id, actor=actor.label))
        if owners and tx.count_owners(group.id) > kinds.MAX_OWNERS:
            raise errors.quota_exceeded(tx.count_owners(group.id), kinds.MAX_OWNERS, "owners")

    async def create_group(
        self, actor: rights.Actor, body: dict[str, Any], owners: list[Ref], members: list[Ref], version: str = "v1.0"
    ) -> StoredObject:
        """``POST /groups`` → 201 (group-post-groups.md). Only security and Microsoft 365 groups can be created."""
        rights.check_group_write(actor, None, False)
        props = validate_body(GROUP, body, "group", "create", version)
        for name in _REQUIRED_GROUP:
            if props.get(name) is None or props.get(name) == "":
                raise errors.required_property(name)
        _check_nickname(props["mailNickname"])
        if len(owners) + len(members) > kinds.MAX_LINKS:
            raise errors.too_many_links()
        props["groupTypes"] = _group_types(props.get("groupTypes"))
        k = kinds.kind(props)
        if k in ("mailSecurity", "distribution"):
            raise errors.mail_enabled_create()
        if k == "unified" and not props["mailEnabled"]:
            raise errors.bad_request("A Microsoft 365 group must be mail-enabled (mailEnabled: true).")
        if k == "security" and not props["securityEnabled"]:
            raise errors.bad_request("A group that is not mail-enabled must be security-enabled (securityEnabled: true).")
        dynamic = kinds.is_dynamic(props)
        if dynamic and not props.get("membershipRule"):
            raise errors.required_property("membershipRule")
        if not dynamic and props.get("membershipRule"):
            raise errors.bad_request("A membershipRule can be set only on a group with the 'DynamicMembership' group type.")
        if dynamic and members:
            raise errors.forbidden()
        if props.get("isAssignableToRole") is True:
            if not props["securityEnabled"] or dynamic:
                raise errors.invalid_property_value("isAssignableToRole", "Group")
            rights.check_role_assignable(actor, props)
        if props.get("visibility") not in (None, "Public", "Private", "HiddenMembership", "Hiddenmembership"):
            raise errors.invalid_property_value("visibility", "Group")
        if str(props.get("visibility", "")).lower() == "hiddenmembership" and k != "unified":
            raise errors.invalid_property_value("visibility", "Group")
        gid = ids.new_id()
        created = now()
        group = StoredObject(actor.tenant_id, gid, "group", _group_defaults(gid, created, props, await self._tenant_domain(actor.tenant_id)), created)
        # A delegated caller creating a Microsoft 365 group without owners becomes its owner.
        if actor.delegated and actor.user_id and k == "unified" and not owners:
            owners = [Ref(actor.user_id, "user")]

        def fn(tx: Txn) -> StoredObject:
            tx.insert(group)
            tx.record(Change(gid, "group", "create", actor=actor.label))
            self._apply_links(tx, actor, group, owners, members, creating=True)
            return group

        return await self.store.write(actor.tenant_id, fn)

    async def get_group(self, actor: rights.Actor, key: str) -> StoredObject:
        return await self.resolve_group(actor.tenant_id, key)

    async def list_groups(self, actor: rights.Actor, q: ListQuery) -> Page:
        return await self.store.list_objects(actor.tenant_id, ("group",), q)

    async def update_group(
        self, actor: rights.Actor, key: str, body: dict[str, Any], owners: list[Ref], members: list[Ref], version: str = "v1.0"
    ) -> None:
        """``PATCH /groups/{id}`` → 204; ``members@odata.bind`` adds up to 20 members, all or nothing.

        https://learn.microsoft.com/en-us/graph/api/group-update: read-only properties sent with
        their current values are accepted (the page's own example sends ``groupTypes`` and
        ``mailEnabled`` unchanged); what may really change of a group's kind is decided by
        :func:`_kind_change` (docs/behaviour.md, "Groups and users").
        """
        target = await self.resolve_group(actor.tenant_id, key)
        props = validate_body(GROUP, body, "group", "update", version, current=target.props)
        if len(owners) + len(members) > kinds.MAX_LINKS:
            raise errors.too_many_links()
        if "displayName" in props and not props["displayName"]:
            raise errors.invalid_property_value("displayName", "Group")
        if "mailNickname" in props:
            _check_nickname(props["mailNickname"] or "")
        vis = props.get("visibility")
        if "visibility" in props and vis != target.props.get("visibility") and (
            vis not in ("Public", "Private") or str(target.props.get("visibility", "")).lower() == "hiddenmembership"
        ):
            raise errors.invalid_property_value("visibility", "Group")
        if props.get("membershipRuleProcessingState") not in (None, "On", "Paused"):
            raise errors.invalid_property_value("membershipRuleProcessingState", "Group")

        def fn(tx: Txn) -> None:
            group = get_live(tx, target.id, ("group",))
            is_owner = bool(actor.user_id) and tx.has_owner(group.id, actor.user_id or "")
            if members:
                rights.check_members_update(actor, group.props, is_owner)
            if owners:
                rights.check_owners_update(actor, group.props, is_owner, "user")
            if props:
                rights.check_group_write(actor, group.props, is_owner)
                if kinds.is_synced(group.props):
                    raise errors.on_premises_readonly()
                if kinds.kind(group.props) in ("mailSecurity", "distribution"):
                    raise errors.mail_enabled_readonly()
                _kind_change(group.props, props)
                group.props.update(props)
                tx.update(group)
                tx.record(Change(group.id, "group", "update", actor=actor.label, detail={"props": sorted(props)}))
            if owners:
                kinds.check_owners_writable(group.props, self.settings.mail_enabled_security_membership)
            self._apply_links(tx, actor, group, owners, members, creating=False)

        await self.store.write(actor.tenant_id, fn)

    async def delete_group(self, actor: rights.Actor, key: str, soft_delete_security: bool) -> None:
        """``DELETE /groups/{id}`` → 204. Microsoft 365 groups are soft-deleted; security groups are
        deleted permanently on v1.0 and soft-deleted on beta (docs/behaviour.md#groups-and-users)."""
        target = await self.resolve_group(actor.tenant_id, key)

        def fn(tx: Txn) -> None:
            group = get_live(tx, target.id, ("group",))
            is_owner = bool(actor.user_id) and tx.has_owner(group.id, actor.user_id or "")
            rights.check_group_write(actor, group.props, is_owner)
            if kinds.is_synced(group.props):
                raise errors.on_premises_readonly()
            k = kinds.kind(group.props)
            if k in ("mailSecurity", "distribution"):
                raise errors.mail_enabled_readonly()
            if k == "unified" or soft_delete_security:
                soft_delete(tx, group, actor.label)
            else:
                tx.purge(group.id)
                tx.record(Change(group.id, "group", "delete", actor=actor.label))

        await self.store.write(actor.tenant_id, fn)
