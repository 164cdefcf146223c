"""Users: create, get (by id or userPrincipalName), list, update, delete.

Graph behaviour: user-post-users.md, user-get.md, https://learn.microsoft.com/en-us/graph/api/resources/user.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from graphdir import errors, ids
from graphdir.directory import rights
from graphdir.directory.base import DirectoryBase
from graphdir.directory.common import get_live, hash_password, now, soft_delete, validate_body
from graphdir.directory.schema import COMPLEX_TYPES, USER, canonical
from graphdir.query import ListQuery
from graphdir.store.base import Change, Conflict, Page, StoredObject, Txn

_UPN_ALIAS = re.compile(r"^[A-Za-z0-9'.\-_!#^~]+$")
_REQUIRED_USER = ("accountEnabled", "displayName", "mailNickname", "passwordProfile", "userPrincipalName")


_IDENTITY = COMPLEX_TYPES["objectIdentity"]
_DUPLICATE_UPN = "Another object with the same value for property userPrincipalName already exists."


def _stored_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """What is kept of a ``passwordProfile``: the flag and a hash of the checked password, never the password."""
    return {
        "forceChangePasswordNextSignIn": bool(profile.get("forceChangePasswordNextSignIn", True)),
        "hash": hash_password(_check_password(profile)),
    }


def _check_password(profile: dict[str, Any]) -> str:
    pw = profile.get("password")
    if not isinstance(pw, str) or not pw:
        raise errors.required_property("password")
    classes = sum(bool(re.search(p, pw)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    if not 8 <= len(pw) <= 256 or classes < 3:
        raise errors.bad_request(
            "The specified password does not comply with password complexity requirements. Please provide a different password."
        )
    return pw


def user_identities(props: dict[str, Any]) -> list[dict[str, Any]]:
    """A user's ``identities`` as Graph returns them: first the ``userPrincipalName`` identity, always
    derived from the current UPN (so it follows every UPN change), then those a client set.

    https://learn.microsoft.com/en-us/graph/api/user-get (example 3) and resources/objectidentity:
    ``{"signInType": "userPrincipalName", "issuer": <the UPN's domain>, "issuerAssignedId": <UPN>}``.
    """
    upn = props.get("userPrincipalName")
    own = [i for i in props.get("identities") or [] if isinstance(i, dict)]
    if not isinstance(upn, str) or "@" not in upn:
        return own
    return [{"signInType": "userPrincipalName", "issuer": upn.rpartition("@")[2], "issuerAssignedId": upn}, *own]


def _own_identities(identities: list[dict[str, Any]] | None, upn: str) -> list[dict[str, Any]]:
    """The identities a client sent, to store: the ``userPrincipalName`` one is derived, so it is
    accepted only when it names the user's UPN (and then not stored); every other needs a
    ``signInType`` and an ``issuer``. Anything else → 400 invalid value."""
    out: list[dict[str, Any]] = []
    for item in identities or []:
        fields = {canonical(_IDENTITY, k) or k: v for k, v in item.items()}
        sign_in, issuer, assigned = fields.get("signInType"), fields.get("issuer"), fields.get("issuerAssignedId")
        if sign_in == "userPrincipalName":
            if not isinstance(assigned, str) or assigned.lower() != upn.lower():
                raise errors.invalid_property_value("identities", "User")
            continue
        if not sign_in or not issuer:
            raise errors.invalid_property_value("identities", "User")
        out.append({"signInType": sign_in, "issuer": issuer, "issuerAssignedId": assigned})
    return out


class UsersMixin(DirectoryBase):
    async def _domains(self, tenant_id: str) -> set[str]:
        t = await self.store.get_tenant(tenant_id) or {}
        doms = {str(t.get("domain", "")).lower()}
        doms |= {d.lower() for d in t.get("props", {}).get("domains", [])}
        return doms

    async def _check_upn(self, tenant_id: str, upn: str) -> None:
        alias, _, domain = upn.rpartition("@")
        if not alias or not _UPN_ALIAS.match(alias) or alias.startswith(".") or alias.endswith("."):
            raise errors.invalid_property_value("userPrincipalName", "User")
        if domain.lower() not in await self._domains(tenant_id):
            raise errors.bad_request(
                "The domain portion of the userPrincipalName property is invalid. "
                "You must use one of the verified domain names in your organization."
            )

    async def resolve_user(self, tenant_id: str, key: str) -> StoredObject:
        """``/users/{id | userPrincipalName}`` (user-get.md)."""
        if ids.is_guid(key):
            obj = await self.store.get(tenant_id, key.lower())
        elif "@" in key:
            obj = await self.store.get_by_upn(tenant_id, key)
        else:
            raise errors.invalid_object_id(key)
        if obj is None or obj.deleted is not None or obj.type != "user":
            raise errors.not_found(key)
        return obj

    async def create_user(
        self, actor: rights.Actor, body: dict[str, Any], then: Callable[[Txn, StoredObject], None] | None = None
    ) -> StoredObject:
        """``POST /users`` → 201 with the default property set (user-post-users.md).

        ``then`` runs in the same transaction after the insert (the CLI assigns roles there, so a
        failure leaves no user behind)."""
        rights.check_user_write(actor, None)
        props = validate_body(USER, body, "user", "create")
        for name in _REQUIRED_USER:
            if props.get(name) in (None, ""):
                raise errors.required_property(name)
        await self._check_upn(actor.tenant_id, props["userPrincipalName"])
        if "identities" in props:
            props["identities"] = _own_identities(props["identities"], props["userPrincipalName"])
        stored_profile = _stored_profile(dict(props["passwordProfile"]))
        created = now()
        obj_props: dict[str, Any] = {
            "businessPhones": [],
            "givenName": None,
            "jobTitle": None,
            "mail": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": None,
            "userType": "Member",
            "otherMails": [],
            "proxyAddresses": [],
            "imAddresses": [],
            "createdDateTime": created,
            "creationType": None,
            **props,
            "passwordProfile": stored_profile,
        }
        uid = ids.new_id()
        obj_props["id"] = uid
        obj = StoredObject(actor.tenant_id, uid, "user", obj_props, created)

        def fn(tx: Txn) -> StoredObject:
            try:
                tx.insert(obj)
            except Conflict:
                raise errors.bad_request(_DUPLICATE_UPN) from None
            tx.record(Change(uid, "user", "create", actor=actor.label))
            if then is not None:
                then(tx, obj)
            return obj

        return await self.store.write(actor.tenant_id, fn)

    async def get_user(self, actor: rights.Actor, key: str) -> StoredObject:
        return await self.resolve_user(actor.tenant_id, key)

    async def list_users(self, actor: rights.Actor, q: ListQuery) -> Page:
        return await self.store.list_objects(actor.tenant_id, ("user",), q)

    async def update_user(self, actor: rights.Actor, key: str, body: dict[str, Any]) -> None:
        """``PATCH /users/{id}`` → 204."""
        target = await self.resolve_user(actor.tenant_id, key)
        rights.check_user_write(actor, target.id)
        props = validate_body(USER, body, "user", "update", current=target.props)
        if "displayName" in props and not props["displayName"]:
            raise errors.invalid_property_value("displayName", "User")
        if "userPrincipalName" in props:
            if not props["userPrincipalName"]:
                raise errors.invalid_property_value("userPrincipalName", "User")
            await self._check_upn(actor.tenant_id, props["userPrincipalName"])
        if "passwordProfile" in props:
            if not isinstance(props["passwordProfile"], dict):  # null: a password cannot be cleared
                raise errors.invalid_property_value("passwordProfile", "User")
            props["passwordProfile"] = _stored_profile(dict(props["passwordProfile"]))
        if "identities" in props:
            props["identities"] = _own_identities(props["identities"], props.get("userPrincipalName") or str(target.props.get("userPrincipalName")))

        def fn(tx: Txn) -> None:
            obj = get_live(tx, target.id, ("user",))
            obj.props.update(props)
            try:
                tx.update(obj)
            except Conflict:
                raise errors.bad_request(_DUPLICATE_UPN) from None
            tx.record(Change(obj.id, "user", "update", actor=actor.label, detail={"props": sorted(props)}))

        await self.store.write(actor.tenant_id, fn)

    async def delete_user(self, actor: rights.Actor, key: str) -> None:
        """``DELETE /users/{id}`` → 204; users are soft-deleted (restorable for 30 days)."""
        target = await self.resolve_user(actor.tenant_id, key)
        rights.check_user_write(actor, None)

        def fn(tx: Txn) -> None:
            soft_delete(tx, get_live(tx, target.id, ("user",)), actor.label)

        await self.store.write(actor.tenant_id, fn)
