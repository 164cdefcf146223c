"""System query options for directory collections (docs/behaviour.md#queries, query-parameters.md, paging.md).

Turns ``$select``, ``$top``, ``$skiptoken``, ``$count``, ``$filter``,
``$orderby`` and ``$search`` into a :class:`~graphdir.query.ListQuery`, with
Graph's errors and its advanced-query rules (``ConsistencyLevel: eventual`` +
``$count=true``). No web framework here.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import orjson

from graphdir import errors
from graphdir.directory.schema import SCHEMAS, TYPE_NAMES, canonical
from graphdir.odata.filter import parse_filter, parse_search
from graphdir.query import ListQuery

MAX_TOP = 999
DEFAULT_TOP = 100
KNOWN = {"$select", "$top", "$skiptoken", "$count", "$filter", "$orderby", "$search", "$expand", "$skip", "$format", "$deltatoken"}


@dataclass
class Options:
    query: ListQuery
    select: list[str] | None = None
    expand: list[str] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)  # everything but $skiptoken, for nextLink


def _norm(name: str) -> str:
    low = name.lower()
    return low if low.startswith("$") else "$" + low


def encode_skiptoken(after: tuple[str, ...], order: str | None) -> str:
    raw = orjson.dumps({"a": list(after), "o": order or ""})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_skiptoken(token: str, order: str | None) -> tuple[str, ...]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = data["a"]
        if data.get("o", "") != (order or "") or not isinstance(after, list) or not all(isinstance(x, str) for x in after):
            raise ValueError
        return tuple(after)
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise errors.bad_request("Invalid skip token: the $skiptoken value is not valid for this request.") from None


def parse_select(value: str, resource: str) -> list[str]:
    """``$select`` names are case-insensitive; unknown ones are refused like Graph's OData parser does."""
    schemas = [SCHEMAS[resource]] if resource in SCHEMAS else list(SCHEMAS.values())
    out: list[str] = []
    for raw in value.split(","):
        name = raw.strip()
        if not name:
            continue
        if name == "*":
            out.append("*")
            continue
        found = None
        for schema in schemas:
            found = canonical(schema, name)
            if found:
                break
        if found is None or (resource in SCHEMAS and SCHEMAS[resource][found].write_only):
            type_name = TYPE_NAMES.get(resource, "microsoft.graph.directoryObject")
            raise errors.GraphError(400, "BadRequest", f"Could not find a property named '{name}' on type '{type_name}'.")
        if found not in out:
            out.append(found)
    return out


def parse_top(value: str, cap: bool) -> int:
    try:
        top = int(value)
    except ValueError:
        raise errors.GraphError(
            400, "BadRequest", f"Invalid value '{value}' for $top query option found. The $top query option requires a non-negative integer value."
        ) from None
    if top > MAX_TOP and cap:
        return MAX_TOP
    if top < 1 or top > MAX_TOP:
        raise errors.bad_request(f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_TOP} inclusive.")
    return top


def parse_options(
    params: list[tuple[str, str]],
    *,
    resource: str,
    eventual: bool,
    relationship: bool = False,
    collection: bool = True,
    cap_top: bool = False,
) -> Options:
    """Parse a request's query options. ``resource`` names the item type ("user", "group" or
    "directoryObject"); ``relationship`` is true for members/owners/memberOf listings."""
    opts: dict[str, str] = {}
    kept: list[tuple[str, str]] = []
    for name, value in params:
        if name.startswith("$") or _norm(name) in KNOWN:
            key = _norm(name)
            if key not in KNOWN:
                raise errors.GraphError(400, "BadRequest", f"Query option '{name}' is not supported.")
            if key in opts:
                raise errors.GraphError(400, "BadRequest", f"Query option '{key}' was specified more than once, but it must be specified at most once.")
            opts[key] = value
            if key != "$skiptoken":
                kept.append((key, value))
        else:
            kept.append((name, value))
    if "$skip" in opts:
        raise errors.bad_request("'$skip' is not supported by the service.")
    q = ListQuery()
    out = Options(q, params=kept)
    if "$select" in opts:
        out.select = parse_select(opts["$select"], resource)
    if "$expand" in opts:
        out.expand = [e.strip() for e in opts["$expand"].split(",") if e.strip()]
    if not collection:
        extra = [k for k in opts if k not in ("$select", "$expand", "$format")]
        if extra:
            raise errors.GraphError(400, "BadRequest", f"Query option '{extra[0]}' is not allowed on a single entity.")
        return out
    count_true = opts.get("$count", "").lower() == "true"
    if "$count" in opts and opts["$count"].lower() not in ("true", "false"):
        raise errors.GraphError(400, "BadRequest", f"Invalid value '{opts['$count']}' for $count query option found. Valid values are 'true' and 'false'.")
    advanced = eventual and count_true
    q.count = advanced
    if "$top" in opts:
        q.top = parse_top(opts["$top"], cap_top)
    if "$search" in opts:
        if not eventual:
            raise errors.search_needs_consistency()
        q.search = parse_search(opts["$search"], resource)
    if "$filter" in opts:
        if relationship and not advanced:
            raise errors.unsupported_query("The specified filter to the reference property query is currently not supported.")
        q.where = parse_filter(opts["$filter"], resource, advanced)
    if "$orderby" in opts:
        parts = opts["$orderby"].strip().split()
        orderable = bool(parts) and parts[0].lower() == "displayname"  # group-list.md: displayName by default
        if not orderable or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise errors.unsupported_query(f"Order by '{opts['$orderby']}' is not supported.")
        if (relationship or q.where is not None or q.search is not None) and not advanced:
            raise errors.unsupported_query("Sorting not supported for current query.")
        q.order_by = "displayName"
        q.descending = len(parts) == 2 and parts[1].lower() == "desc"
    if "$skiptoken" in opts:
        q.after = decode_skiptoken(opts["$skiptoken"], q.order_by)
    return out
