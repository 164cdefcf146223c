"""References in request bodies: ``@odata.id`` and ``…@odata.bind`` URLs (group-post-members.md, docs/behaviour.md#order-of-checks).

Any absolute URL whose path ends ``/{entitySet}/{id}`` is accepted (Graph's host or
our own, v1.0 or beta, docs/behaviour.md#bodies-and-references); the entity set may be ``directoryObjects``,
``users``, ``groups``, ``devices``, ``servicePrincipals`` (or the doc's singular
``servicePrincipal``), ``contacts``/``orgContacts``/``orgContact``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from graphdir import errors, ids
from graphdir.directory.common import Ref

_SETS = {
    "directoryobjects": None,
    "users": "user",
    "groups": "group",
    "devices": "device",
    "serviceprincipals": "servicePrincipal",
    "serviceprincipal": "servicePrincipal",
    "contacts": "orgContact",
    "orgcontacts": "orgContact",
    "orgcontact": "orgContact",
}


def _url_path(value: str) -> str:
    """The decoded path of an absolute or relative URL (``urlsplit`` without its cost on the hot path)."""
    if "://" in value:
        rest = value.split("://", 1)[1]
        slash = rest.find("/")
        value = rest[slash:] if slash >= 0 else ""
    value = value.split("?", 1)[0].split("#", 1)[0]
    return unquote(value) if "%" in value else value


def parse_ref(value: Any) -> Ref:
    """Parse one reference URL into a :class:`Ref`; malformed → 400 ``Invalid object identifier``."""
    if not isinstance(value, str) or not value:
        raise errors.bad_request("Invalid reference: the @odata.id value must be a URL string.")
    path = _url_path(value).rstrip("/")
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        raise errors.invalid_object_id(value)
    last = parts[-1]
    entity_set = parts[-2].lower()
    # tolerate a trailing type segment: /directoryObjects/{id}/Microsoft.DirectoryServices.Group
    if not ids.is_guid(last) and len(parts) >= 3 and ids.is_guid(parts[-2]):
        last, entity_set = parts[-2], parts[-3].lower()
    if entity_set not in _SETS:
        raise errors.invalid_object_id(last)
    return Ref(ids.parse_object_id(last), _SETS[entity_set])


def ref_body(body: Any) -> Ref:
    """The body of ``POST …/members/$ref`` / ``…/owners/$ref``: ``{"@odata.id": "…"}``."""
    if not isinstance(body, dict):
        raise errors.bad_request("Invalid request body: a JSON object with '@odata.id' is required.")
    for key in body:
        if key != "@odata.id" and key != "@odata.type":
            raise errors.property_not_found(key, "microsoft.graph.referenceCreate")
    if "@odata.id" not in body:
        raise errors.bad_request("Property '@odata.id' is required in the request body.")
    return parse_ref(body["@odata.id"])


def bind_list(body: dict[str, Any], key: str) -> list[Ref]:
    """``members@odata.bind`` / ``owners@odata.bind``: a JSON array of reference URLs."""
    found = [k for k in body if k.lower() == key.lower()]
    if not found:
        return []
    value = body[found[0]]
    if not isinstance(value, list):
        raise errors.bad_request(f"The value of '{key}' must be an array of URLs.")
    return [parse_ref(v) for v in value]


def unknown_binds(body: dict[str, Any]) -> list[str]:
    return [k for k in body if k.endswith("@odata.bind") and k.lower() not in ("members@odata.bind", "owners@odata.bind")]
