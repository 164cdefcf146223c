"""Entities to Graph JSON (OData minimal metadata, graph-behaviour.md §0.2).

Default property sets per type come from :mod:`graphdir.directory.schema`;
``$select`` narrows them; polymorphic collections carry ``@odata.type`` on
every item; ``@odata.context`` names the entity set (or the cast type) and the
selected properties.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphdir.directory.schema import ENTITY_SETS, SCHEMAS, TYPE_NAMES
from graphdir.store.base import StoredObject

_DEFAULTS: dict[str, tuple[str, ...]] = {
    t: tuple(name for name, p in schema.items() if p.default and not p.write_only) for t, schema in SCHEMAS.items()
}


def entity(obj: StoredObject, select: list[str] | None = None, typed: bool = False) -> dict[str, Any]:
    """One object as Graph returns it. Null-valued defaults are returned as ``null``, not omitted."""
    props = obj.props
    out: dict[str, Any] = {"@odata.type": "#" + TYPE_NAMES[obj.type]} if typed else {}
    schema = SCHEMAS[obj.type]
    if select and "*" not in select:
        names: Iterable[str] = [n for n in select if n in schema and not schema[n].write_only]
    else:
        names = _DEFAULTS[obj.type]
    for name in names:
        if name == "id":
            out["id"] = obj.id
        elif name == "deletedDateTime":
            out[name] = obj.deleted
        else:
            out[name] = props.get(name)
    return out


def context(base: str, version: str, entity_set: str, select: list[str] | None = None, single: bool = False) -> str:
    """``{base}/{version}/$metadata#groups(id,displayName)/$entity`` and the like."""
    sel = f"({','.join(select)})" if select else ""
    return f"{base}/{version}/$metadata#{entity_set}{sel}{'/$entity' if single else ''}"


def entity_set_for(type_: str) -> str:
    return ENTITY_SETS[type_]
