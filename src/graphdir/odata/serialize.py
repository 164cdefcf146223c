"""Entities to Graph JSON (OData minimal metadata, docs/behaviour.md#response-bodies).

Default property sets per type come from :mod:`graphdir.directory.schema`;
``$select`` narrows them; polymorphic collections carry ``@odata.type`` on
every item; ``@odata.context`` names the entity set (or the cast type) and the
selected properties.
"""

from __future__ import annotations

from typing import Any

import orjson

from graphdir.directory.schema import ENTITY_SETS, SCHEMAS, TYPE_NAMES
from graphdir.directory.users import user_identities
from graphdir.store.base import StoredObject

_DEFAULTS: dict[str, tuple[str, ...]] = {
    t: tuple(name for name, p in schema.items() if p.default and not p.write_only) for t, schema in SCHEMAS.items()
}

#: Collection-valued properties (a name is a collection on every type that has it): never ``null``
#: on the wire, ``[]`` when an object holds none (OData collections are empty, not null;
#: ``$metadata`` declares them so).
_COLLECTIONS = frozenset(name for schema in SCHEMAS.values() for name, p in schema.items() if p.kind in ("strings", "objects"))


def _collections(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if n in _COLLECTIONS)


_DEFAULT_COLLECTIONS = {t: _collections(names) for t, names in _DEFAULTS.items()}
_TYPES = {t: "#" + name for t, name in TYPE_NAMES.items()}
_SELECTED: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _names(type_: str, select: list[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The properties to emit for this type — its defaults, or the selected ones it has — and which
    of them are collections (cached)."""
    if not select or "*" in select:
        return _DEFAULTS[type_], _DEFAULT_COLLECTIONS[type_]
    key = (type_, tuple(select))
    found = _SELECTED.get(key)
    if found is None:
        schema = SCHEMAS[type_]
        names = tuple(n for n in select if n in schema and not schema[n].write_only)
        found = names, _collections(names)
        if len(_SELECTED) < 4096:
            _SELECTED[key] = found
    return found


def entity(obj: StoredObject, select: list[str] | None = None, typed: bool = False) -> dict[str, Any]:
    """One object as Graph returns it. Null-valued defaults are returned as ``null``, not omitted.

    This runs once per item of every page (up to 999), so it stays a plain loop.
    """
    out: dict[str, Any] = {"@odata.type": _TYPES[obj.type]} if typed else {}
    names, collections = _names(obj.type, select)
    _project(out, names, collections, obj.id, obj.props, obj.deleted)
    if obj.type == "user" and "identities" in out:
        out["identities"] = user_identities(obj.props)  # derived: in step with the UPN
    return out


def _project(
    out: dict[str, Any], names: tuple[str, ...], collections: tuple[str, ...], object_id: str, props: dict[str, Any], deleted: str | None
) -> dict[str, Any]:
    """Copy ``names`` from the attributes; ``id`` and ``deletedDateTime`` come from the object itself;
    a collection (of ``collections``) the object does not hold is ``[]``."""
    for name in names:
        out[name] = props.get(name)
    for name in collections:
        if out[name] is None:
            out[name] = []
    if "id" in out:
        out["id"] = object_id
    if "deletedDateTime" in out:
        out["deletedDateTime"] = deleted
    return out


def render_default(type_: str, object_id: str, props: dict[str, Any]) -> bytes:
    """The default projection as JSON bytes, without ``@odata.type`` (stored at write time, see
    :data:`graphdir.store.base.Renderer`); list pages are then joined from these bytes."""
    return orjson.dumps(_project({}, _DEFAULTS[type_], _DEFAULT_COLLECTIONS[type_], object_id, props, None))  # only live objects are listed


_TYPED_HEADS = {t: (b'{"@odata.type":"' + name.encode() + b'",', b'{"@odata.type":"' + name.encode() + b'"}') for t, name in _TYPES.items()}


def typed_bytes(type_: str, rendered: bytes) -> bytes:
    """Prefix a rendered object with its ``@odata.type`` (polymorphic collections)."""
    head, empty = _TYPED_HEADS[type_]
    return head + rendered[1:] if len(rendered) > 2 else empty


def context(base: str, version: str, entity_set: str, select: list[str] | None = None, single: bool = False) -> str:
    """``{base}/{version}/$metadata#groups(id,displayName)/$entity`` and the like."""
    sel = f"({','.join(select)})" if select else ""
    return f"{base}/{version}/$metadata#{entity_set}{sel}{'/$entity' if single else ''}"


def entity_set_for(type_: str) -> str:
    return ENTITY_SETS[type_]
