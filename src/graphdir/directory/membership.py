"""Members, owners and memberOf — the heart of graphdir.

Graph behaviour: group-list-members.md, group-post-members.md,
group-delete-members.md (and the 2015 beta seed page), group-list-owners.md,
group-post-owners.md, group-delete-owners.md, group-list-memberof.md;
docs/behaviour.md#membership and docs/behaviour.md#order-of-checks (the order in which checks apply).
"""

from __future__ import annotations

from graphdir import errors, ids
from graphdir.directory import kinds, rights
from graphdir.directory.common import Ref, get_live, resolve_ref
from graphdir.directory.groups import GroupsMixin
from graphdir.query import ListQuery
from graphdir.store.base import Change, EdgeWrite, Page, StoredObject, Txn, TxnView

_GROUP = ("group",)


def _already_member() -> errors.GraphError:
    return errors.already_exist("members")


class MembershipMixin(GroupsMixin):
    # -- reading -------------------------------------------------------------------
    def _check_cast(self, group: StoredObject, q: ListQuery, relation: str) -> None:
        """A cast to a type the group cannot hold → 400 Request_UnsupportedQuery (group-list-members.md)."""
        if q.types and relation == "members":
            allowed = kinds.allowed_member_types(group.props)
            if not any(t in allowed for t in q.types):
                raise errors.unsupported_query(
                    f"The group cannot contain members of type '{q.types[0]}'; the type cast is not supported."
                )

    def _hide_sp(self, q: ListQuery, version: str) -> ListQuery:
        """v1.0 known issue: service principals are not listed as members/owners (configurable, docs/behaviour.md#queries)."""
        if version == "v1.0" and self.settings.hide_service_principals_v1:
            allowed = q.types or ("user", "group", "device", "orgContact", "servicePrincipal")
            q.types = tuple(t for t in allowed if t != "servicePrincipal") or ("none",)
        return q

    async def list_members(self, actor: rights.Actor, group_id: str, q: ListQuery, version: str) -> Page:
        """``GET /groups/{id}/members`` — direct members, keyset-paged."""
        group = await self.resolve_group(actor.tenant_id, group_id)
        self._check_cast(group, q, "members")
        return await self.store.list_members(actor.tenant_id, group.id, self._hide_sp(q, version))

    async def list_owners(self, actor: rights.Actor, group_id: str, q: ListQuery, version: str) -> Page:
        group = await self.resolve_group(actor.tenant_id, group_id)
        return await self.store.list_owners(actor.tenant_id, group.id, self._hide_sp(q, version))

    async def _resolve_holder(self, actor: rights.Actor, object_id: str, user: bool) -> StoredObject:
        """The user (by id or userPrincipalName) or group whose memberships are listed; 404/400 as a GET of it."""
        return await self.resolve_user(actor.tenant_id, object_id) if user else await self.resolve_group(actor.tenant_id, object_id)

    async def list_member_of(self, actor: rights.Actor, object_id: str, q: ListQuery, user: bool) -> Page:
        """``GET /users/{id}/memberOf`` and ``GET /groups/{id}/memberOf`` — direct parent groups."""
        obj = await self._resolve_holder(actor, object_id, user)
        return await self.store.list_member_of(actor.tenant_id, obj.id, q)

    async def get_directory_object(self, actor: rights.Actor, object_id: str) -> StoredObject:
        """``GET /directoryObjects/{id}`` (resources/directoryobject.md)."""
        oid = ids.parse_object_id(object_id)
        obj = await self.store.get(actor.tenant_id, oid)
        if obj is None or obj.deleted is not None:
            raise errors.not_found(object_id)
        return obj

    # -- members ------------------------------------------------------------------------
    async def add_member(self, actor: rights.Actor, group_id: str, ref: Ref) -> None:
        """``POST /groups/{id}/members/$ref`` → 204 (group-post-members.md; checks in docs/behaviour.md#order-of-checks)."""
        gid = ids.parse_object_id(group_id)
        mail_sec = self.settings.mail_enabled_security_membership

        def check(tx: TxnView) -> EdgeWrite:
            group = get_live(tx, gid, _GROUP, view=True)
            member = resolve_ref(tx, ref)
            is_owner = actor.user_id is not None and tx.has_owner(gid, actor.user_id)
            rights.check_members_update(actor, group.props, is_owner)
            rights.check_member_type_grant(actor, member.type)
            kinds.check_membership_writable(group.props, mail_sec)
            kinds.check_member_type(group.props, member.type, member.props)
            if member.type == "group" and (member.id == gid or member.id in tx.ancestors(gid)):
                raise kinds.cycle()
            change = Change(gid, "group", "addMember", related_id=member.id, actor=actor.label)
            return EdgeWrite("members", "add", gid, member.id, member.type, change, _already_member)

        # every check reads; the one INSERT OR IGNORE comes after them (no savepoint needed)
        await self.store.write_one(actor.tenant_id, check)

    async def remove_member(self, actor: rights.Actor, group_id: str, member_id: str) -> None:
        """``DELETE /groups/{id}/members/{id}/$ref`` → 204; not a member → 404 naming the member (docs/behaviour.md#directory-error-messages)."""
        gid = ids.parse_object_id(group_id)
        mid = ids.parse_object_id(member_id)
        mail_sec = self.settings.mail_enabled_security_membership
        label = actor.label

        def check(tx: TxnView) -> EdgeWrite:
            props = get_live(tx, gid, _GROUP, view=True).props
            is_owner = actor.user_id is not None and tx.has_owner(gid, actor.user_id)
            rights.check_members_update(actor, props, is_owner)
            kinds.check_membership_writable(props, mail_sec)
            change = Change(gid, "group", "removeMember", related_id=mid, actor=label)
            return EdgeWrite("members", "remove", gid, mid, change=change, unchanged=lambda: errors.not_found(member_id))

        # every check reads; the one DELETE comes after them (no savepoint needed)
        await self.store.write_one(actor.tenant_id, check)

    async def delete_member_object(self, actor: rights.Actor, group_id: str, member_id: str, version: str) -> None:
        """``DELETE /groups/{id}/members/{id}`` without ``$ref`` deletes the member object itself when the
        caller may manage that type, else 403 (the caution box of group-delete-members.md)."""
        group = await self.resolve_group(actor.tenant_id, group_id)
        mid = ids.parse_object_id(member_id)
        if not await self.store.is_member(actor.tenant_id, group.id, mid):
            raise errors.not_found(member_id)
        member = await self.store.get(actor.tenant_id, mid)
        if member is None or member.deleted is not None:
            raise errors.not_found(member_id)
        needs = {
            "user": ("User.ReadWrite.All", "Directory.ReadWrite.All"),
            "group": ("Group.ReadWrite.All", "Directory.ReadWrite.All"),
        }.get(member.type, ("Directory.ReadWrite.All",))
        if not actor.has(*needs):
            raise errors.forbidden()
        if member.type == "user":
            await self.delete_user(actor, member.id)
        elif member.type == "group":
            await self.delete_group(actor, member.id, soft_delete_security=version == "beta")
        else:
            raise errors.forbidden()

    # -- owners ------------------------------------------------------------------------------
    async def add_owner(self, actor: rights.Actor, group_id: str, ref: Ref) -> None:
        """``POST /groups/{id}/owners/$ref`` → 204; users or service principals; at most 100 owners."""
        gid = ids.parse_object_id(group_id)

        def fn(tx: Txn) -> None:
            group = get_live(tx, gid, _GROUP, view=True)
            owner = resolve_ref(tx, ref)
            is_owner = actor.user_id is not None and tx.has_owner(gid, actor.user_id)
            rights.check_owners_update(actor, group.props, is_owner, owner.type)
            kinds.check_owners_writable(group.props, self.settings.mail_enabled_security_membership)
            if owner.type not in kinds.OWNER_TYPES:
                raise errors.bad_request(f"An object of type '{owner.type}' is unsupported as an owner of a group.")
            if tx.has_owner(gid, owner.id):
                raise errors.already_exist("owners")
            count = tx.count_owners(gid)
            if count + 1 > kinds.MAX_OWNERS:
                raise errors.quota_exceeded(count + 1, kinds.MAX_OWNERS, "owners")
            tx.add_owner(gid, owner.id, owner.type)
            tx.record(Change(gid, "group", "addOwner", related_id=owner.id, actor=actor.label))

        await self.store.write(actor.tenant_id, fn)

    async def remove_owner(self, actor: rights.Actor, group_id: str, owner_id: str) -> None:
        """``DELETE /groups/{id}/owners/{id}/$ref`` → 204; the last owner cannot be removed (400)."""
        gid = ids.parse_object_id(group_id)
        oid = ids.parse_object_id(owner_id)

        def fn(tx: Txn) -> None:
            group = get_live(tx, gid, _GROUP, view=True)
            owner = tx.peek(oid)
            is_owner = actor.user_id is not None and tx.has_owner(gid, actor.user_id)
            rights.check_owners_update(actor, group.props, is_owner, owner.type if owner else "user")
            kinds.check_owners_writable(group.props, self.settings.mail_enabled_security_membership)
            if not tx.has_owner(gid, oid):
                raise errors.not_found(owner_id)
            if tx.count_owners(gid) <= 1:
                raise errors.last_owner()
            tx.remove_owner(gid, oid)
            tx.record(Change(gid, "group", "removeOwner", related_id=oid, actor=actor.label))

        await self.store.write(actor.tenant_id, fn)

