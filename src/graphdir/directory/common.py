"""Shared pieces of the directory layer: references, body validation, look-ups."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graphdir import errors
from graphdir.directory.schema import RESOURCE_NAMES, TYPE_NAMES, Prop, canonical, check_value
from graphdir.store.base import Change, StoredObject, Txn, TxnView


@dataclass(frozen=True)
class Ref:
    """A reference to a directory object, from an ``@odata.id`` or ``…@odata.bind`` URL.

    ``type_hint`` is the entity set the URL named (``users`` → ``user``), or None for
    ``directoryObjects``; the referenced object must then be of that type.
    """

    id: str
    type_hint: str | None = None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def security_identifier(object_id: str) -> str:
    """``S-1-12-1-a-b-c-d``: the object GUID's 16 bytes as four little-endian uint32 (Entra's cloud SIDs)."""
    b = uuid.UUID(object_id).bytes_le
    parts = [int.from_bytes(b[i : i + 4], "little") for i in range(0, 16, 4)]
    return "S-1-12-1-" + "-".join(str(p) for p in parts)


def validate_body(
    schema: dict[str, Prop], body: dict[str, Any], type_key: str, mode: str, version: str = "v1.0", current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Check a POST/PATCH body against the type's properties; return canonical names → values.

    Unknown properties (also those ``version`` does not have) → 400 (the OData reader's message);
    wrong JSON types or characters a directory string cannot hold → 400 ``Invalid value specified
    for property …``; read-only ones → 400, except on update (``current`` given) when the value
    sent is the one the object already has: that is accepted and changes nothing (clients send
    back what they read, as group-update.md's own example does).
    ``@odata.type`` (the SDKs send it, docs/behaviour.md#bodies-and-references) is accepted and ignored.
    """
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "@odata.type" or key.endswith("@odata.bind"):
            continue
        name = canonical(schema, key, version)
        if name is None:
            raise errors.property_not_found(key, TYPE_NAMES[type_key])
        prop = schema[name]
        allowed = prop.create if mode == "create" else prop.update
        if not allowed:
            if current is not None and name in current and current[name] == value:
                continue
            raise errors.bad_request(f"Property '{name}' is read-only and cannot be set.")
        if not check_value(prop, value):
            raise errors.invalid_property_value(name, RESOURCE_NAMES[type_key])
        out[name] = value
    return out


def soft_delete(tx: Txn, obj: StoredObject, actor_label: str) -> None:
    """Soft delete (users, Microsoft 365 groups; security groups on beta): the object stays,
    restorable for 30 days, and disappears from every listing (docs/behaviour.md#groups-and-users)."""
    when = now()
    obj.props["deletedDateTime"] = when
    obj.deleted = when
    tx.update(obj)
    tx.record(Change(obj.id, obj.type, "softDelete", actor=actor_label))


def get_live(tx: TxnView, object_id: str, types: tuple[str, ...] | None = None, view: bool = False) -> StoredObject:
    """The live (not soft-deleted) object of one of ``types``, else 404 naming the id.

    ``view=True`` returns the transaction's read-only view (no copy: for checks); the default
    returns a copy the caller may modify and write back.
    """
    obj = tx.peek(object_id) if view else tx.get(object_id)
    if obj is None or obj.deleted is not None or (types is not None and obj.type not in types):
        raise errors.not_found(object_id)
    return obj


def resolve_ref(tx: TxnView, ref: Ref) -> StoredObject:
    """The live object a reference names (read-only view), else 404 naming the id."""
    obj = tx.peek(ref.id)
    if obj is None or obj.deleted is not None or (ref.type_hint is not None and obj.type != ref.type_hint):
        raise errors.not_found(ref.id)
    return obj


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 20_000)
    return "pbkdf2$20000$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        _, rounds, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(rounds))
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False
