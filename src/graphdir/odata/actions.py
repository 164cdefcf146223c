"""Parameters of OData actions in request bodies: ``{"groupIds": [...]}``, ``{"securityEnabledOnly": true}``…

The membership functions and ``getByIds`` are OData actions: the body is one JSON object whose
members are the action's parameters (https://learn.microsoft.com/en-us/graph/api/directoryobject-checkmembergroups,
…-checkmemberobjects, …-getmembergroups, …-getmemberobjects, …-getbyids). This module checks the
body's *shape* only — names and JSON types — as Graph's OData reader does before the directory sees
it; limits, GUIDs and meaning are the directory's (:mod:`graphdir.directory.functions`). Names
match without regard to case (docs/behaviour.md#case-insensitive-names); instance annotations
(``@odata.type``…) are ignored. Messages: docs/behaviour.md#membership-functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from graphdir import errors

Kind = Literal["strings", "bool"]


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    required: bool = True


def _node(value: Any) -> str:
    """The OData JSON reader's name for the node a value starts with."""
    if isinstance(value, dict):
        return "StartObject"
    if isinstance(value, list):
        return "StartArray"
    return "PrimitiveValue"


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise errors.unexpected_node(_node(value), "StartArray")
    for item in value:
        if isinstance(item, dict | list):
            raise errors.unexpected_node(_node(item), "PrimitiveValue")
        if not isinstance(item, str):
            raise errors.cannot_convert("Edm.String")
    return value


def _bool(name: str, value: Any) -> bool:
    if value is None:
        raise errors.null_not_allowed(name, "Edm.Boolean")
    if isinstance(value, dict | list):
        raise errors.unexpected_node(_node(value), "PrimitiveValue")
    if type(value) is not bool:
        raise errors.cannot_convert("Edm.Boolean")
    return value


def parameters(body: dict[str, Any], operation: str, params: tuple[Param, ...]) -> dict[str, Any]:
    """The action's parameters by canonical name; an optional parameter left out (or ``null``) is absent.

    Unknown member → 400 ``BadRequest`` (the reader's "not a valid parameter" text); a required one
    missing or ``null`` (a collection) → 400 ``Request_BadRequest`` "Property {name} value is required
    but is empty or missing."; a wrong JSON type → 400 ``BadRequest`` with the reader's text."""
    by_lower = {p.name.lower(): p for p in params}
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key.startswith("@") or "@" in key:
            continue  # instance annotations (@odata.type) say nothing about the parameters
        p = by_lower.get(key.lower())
        if p is None:
            raise errors.unknown_parameter(key, operation)
        if p.kind == "bool":
            out[p.name] = _bool(p.name, value)
        elif value is not None:
            out[p.name] = _strings(value)
    for p in params:
        if p.required and p.name not in out:
            raise errors.required_property(p.name)
    return out


CHECK_MEMBER_GROUPS = (Param("groupIds", "strings"),)
CHECK_MEMBER_OBJECTS = (Param("ids", "strings"),)
GET_MEMBER = (Param("securityEnabledOnly", "bool"),)
GET_BY_IDS = (Param("ids", "strings"), Param("types", "strings", required=False))
