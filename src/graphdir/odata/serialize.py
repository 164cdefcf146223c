"""Entities to Graph JSON (OData minimal metadata, docs/behaviour.md#response-bodies).

Default property sets per type come from :mod:`graphdir.directory.schema`;
``$select`` narrows them; polymorphic collections carry ``@odata.type`` on
every item; ``@odata.context`` names the entity set (or the cast type) and the
selected properties.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from graphdir.directory.schema import ENTITY_SETS, SCHEMAS, TYPE_NAMES, VERSIONS
from graphdir.directory.users import user_identities
from graphdir.store.base import Renderings, StoredObject

Projection = Mapping[str, tuple[str, ...]]  # type → the properties returned without $select, in order


def _defaults(version: str) -> dict[str, tuple[str, ...]]:
    """Each type's properties returned without ``$select`` on this API version, in order."""
    return {
        t: tuple(name for name, p in schema.items() if p.default and not p.write_only and version in p.versions)
        for t, schema in SCHEMAS.items()
    }


#: Each API version's default projection (directory/schema.py marks the properties a version does not
#: have). Versions whose defaults are equal share one rendering (see :func:`renderings`).
PROJECTIONS: dict[str, Projection] = {version: _defaults(version) for version in VERSIONS}
#: Bump when :func:`render_projection` encodes the same properties differently: the property lists are
#: fingerprinted into the rendering key already, the encoding is not. 2: collections are ``[]``, not ``null``.
RENDER_FORMAT = 2

#: Collection-valued properties (a name is a collection on every type that has it): never ``null``
#: on the wire, ``[]`` when an object holds none (OData collections are empty, not null;
#: ``$metadata`` declares them so).
_COLLECTIONS = frozenset(name for schema in SCHEMAS.values() for name, p in schema.items() if p.kind in ("strings", "objects"))


def _collections(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if n in _COLLECTIONS)


def rendering_key(projection: Projection) -> str:
    """The key of a projection's rendering: it changes whenever the projection (or :data:`RENDER_FORMAT`)
    does, so bytes stored under an older key are never served as the current projection."""
    digest = hashlib.blake2b(repr((RENDER_FORMAT, sorted(projection.items()))).encode(), digest_size=8).hexdigest()
    return f"{RENDER_FORMAT}.{digest}"


#: The rendering key of each API version (versions with equal projections share one).
RENDERING: dict[str, str] = {version: rendering_key(p) for version, p in PROJECTIONS.items()}


_TYPES = {t: "#" + name for t, name in TYPE_NAMES.items()}
_SELECTED: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, ...], tuple[str, ...]]] = {}
_DEFAULT_NAMES = {(version, t): (names, _collections(names)) for version, p in PROJECTIONS.items() for t, names in p.items()}


def _names(type_: str, select: list[str] | None, version: str = "v1.0") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The properties to emit for this type — its defaults in this version, or the selected ones it
    has — and which of them are collections (cached)."""
    if not select or "*" in select:
        return _DEFAULT_NAMES[(version, type_)]
    key = (type_, tuple(select))
    found = _SELECTED.get(key)
    if found is None:
        schema = SCHEMAS[type_]
        names = tuple(n for n in select if n in schema and not schema[n].write_only)
        found = names, _collections(names)
        if len(_SELECTED) < 4096:
            _SELECTED[key] = found
    return found


def entity(obj: StoredObject, select: list[str] | None = None, typed: bool = False, version: str = "v1.0") -> dict[str, Any]:
    """One object as Graph returns it in ``version``. Null-valued defaults are returned as ``null``, not omitted.

    This runs once per item of every page (up to 999), so it stays a plain loop.
    """
    out: dict[str, Any] = {"@odata.type": _TYPES[obj.type]} if typed else {}
    names, collections = _names(obj.type, select, version)
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


def render_projection(projection: Projection, type_: str, object_id: str, props: dict[str, Any]) -> bytes:
    """An object's default projection as JSON bytes, without ``@odata.type`` (a
    :data:`graphdir.store.base.Renderer` once the projection is bound); list pages are joined from these bytes."""
    names = projection[type_]
    return orjson.dumps(_project({}, names, _collections(names), object_id, props, None))  # only live objects are listed


def render_default(type_: str, object_id: str, props: dict[str, Any]) -> bytes:
    """v1.0's default projection as JSON bytes (the rendering the store keeps with each row)."""
    return render_projection(PROJECTIONS["v1.0"], type_, object_id, props)


def renderings(projections: Mapping[str, Projection] | None = None, stored: str = "v1.0") -> Renderings:
    """What the store needs to pre-render: one renderer per distinct rendering key; the bytes kept with
    each row are ``stored``'s (v1.0's; beta shares them while its projection is the same)."""
    projections = PROJECTIONS if projections is None else projections
    render = {rendering_key(p): functools.partial(render_projection, p) for p in projections.values()}
    return Renderings(rendering_key(projections[stored]), render)


_TYPED_HEADS = {t: (b'{"@odata.type":"' + name.encode() + b'",', b'{"@odata.type":"' + name.encode() + b'"}') for t, name in _TYPES.items()}


def typed_bytes(type_: str, rendered: bytes) -> bytes:
    """Prefix a rendered object with its ``@odata.type`` (polymorphic collections)."""
    head, empty = _TYPED_HEADS[type_]
    return head + rendered[1:] if len(rendered) > 2 else empty


def expanded(objs: list[StoredObject], select: list[str] | None, version: str) -> list[dict[str, Any]]:
    """An expanded relationship's items: directoryObjects, each with its ``@odata.type``, shaped as
    the relationship's listing shapes them (docs/behaviour.md#expand)."""
    return [entity(o, select, typed=True, version=version) for o in objs]


def context(base: str, version: str, entity_set: str, select: list[str] | None = None, single: bool = False, expand: str | None = None) -> str:
    """``{base}/{version}/$metadata#groups(id,displayName)/$entity`` and the like; an expanded
    relationship is listed as ``members()``, whatever its nested ``$select``, as Graph writes it
    (group-list.md, example 7)."""
    names = [*(select or ()), *((f"{expand}()",) if expand else ())]
    sel = f"({','.join(names)})" if names else ""
    return f"{base}/{version}/$metadata#{entity_set}{sel}{'/$entity' if single else ''}"


def entity_set_for(type_: str) -> str:
    return ENTITY_SETS[type_]
