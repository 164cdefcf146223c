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
from graphdir.directory.schema import NAVIGATION, OTHER_NAVIGATION, SCHEMAS, TYPE_NAMES, Prop, canonical
from graphdir.odata.filter import parse_filter, parse_search
from graphdir.query import ListQuery

MAX_TOP = 999
DEFAULT_TOP = 100
KNOWN = {"$select", "$top", "$skiptoken", "$count", "$filter", "$orderby", "$search", "$expand", "$skip", "$format", "$deltatoken"}


@dataclass
class Options:
    query: ListQuery
    select: list[str] | None = None
    expand: Expand | None = None
    params: list[tuple[str, str]] = field(default_factory=list)  # everything but $skiptoken, for nextLink


def _norm(name: str) -> str:
    low = name.lower()
    return low if low.startswith("$") else "$" + low


def encode_skiptoken(after: tuple[str, ...], order: str | None) -> str:
    raw = orjson.dumps({"a": list(after), "o": order or ""})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_skiptoken(token: str, order: str | None) -> tuple[str, ...]:
    """The keyset position of a ``$skiptoken`` made by :func:`encode_skiptoken` for this request.

    Anything else answers the one bad-skip-token 400 (https://learn.microsoft.com/en-us/graph/paging:
    clients use nextLinks verbatim): not base64url JSON, another order, or a position whose shape
    does not fit the order (one key when ordered by id, two — displayName, id — by displayName).
    """
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after = data["a"]
        if data.get("o", "") != (order or "") or not isinstance(after, list) or not all(isinstance(x, str) for x in after):
            raise ValueError
        if len(after) != (2 if order else 1):
            raise ValueError
        return tuple(after)
    except (ValueError, TypeError, KeyError, AttributeError, orjson.JSONDecodeError):
        raise errors.bad_request("Invalid skip token: the $skiptoken value is not valid for this request.") from None


def _find(resource: str, name: str, version: str) -> Prop | None:
    """The property ``name`` (any case) of the resource's type on ``version``; for directoryObject
    listings, of any type they may hold."""
    for schema in [SCHEMAS[resource]] if resource in SCHEMAS else SCHEMAS.values():
        found = canonical(schema, name, version)
        if found:
            return schema[found]
    return None


def _type_name(resource: str) -> str:
    return TYPE_NAMES.get(resource, "microsoft.graph.directoryObject")


def _not_found(name: str, resource: str) -> errors.GraphError:
    """The OData parser's message for a name the type does not have."""
    return errors.GraphError(400, "BadRequest", f"Could not find a property named '{name}' on type '{_type_name(resource)}'.")


def parse_select(value: str, resource: str, version: str = "v1.0") -> list[str]:
    """``$select`` names are case-insensitive; unknown ones (also those ``version`` does not have)
    are refused like Graph's OData parser does."""
    out: list[str] = []
    for raw in value.split(","):
        name = raw.strip()
        if not name:
            continue
        if name == "*":
            out.append("*")
            continue
        prop = _find(resource, name, version)
        if prop is None or (resource in SCHEMAS and prop.write_only):
            raise _not_found(name, resource)
        if prop.name not in out:
            out.append(prop.name)
    return out


#: The relationships graphdir expands, by the type that has them (group-get.md, group-list.md,
#: user-get.md, user-list.md); every other expansion keeps answering Graph's 400.
EXPANDABLE: dict[str, tuple[str, ...]] = {"group": ("members", "owners"), "user": ("memberOf",)}


@dataclass(frozen=True)
class Expand:
    """One expanded relationship: its canonical name and the nested ``$select`` (``None``: defaults)."""

    relation: str
    select: list[str] | None = None


def _expand_refused(shown: str) -> errors.GraphError:
    """Graph's answer to a relationship its schema does not let one expand (query-parameters.md)."""
    return errors.GraphError(400, "ExpandNotSupported", f"Expand is not allowed for property '{shown[:1].upper()}{shown[1:]}' according to the entity schema.")


def _bind_expand_item(raw: str, resource: str, version: str, expandable: tuple[str, ...]) -> Expand | errors.GraphError | None:
    """One item of ``$expand``: the expansion, the schema refusal it gets (decided after every item
    is bound and counted), or ``None`` for an empty item. Binding failures raise at once."""
    name = raw.split("(", 1)[0].split("/", 1)[0].strip()
    if not name:
        return None
    low = name.lower()
    navigation = [n for n in (*NAVIGATION.get(resource, ()), *OTHER_NAVIGATION.get(resource, ())) if n.lower() == low]
    prop = None if navigation else _find(resource, name, version)
    if navigation and navigation[0] in expandable:
        return _expand_item(navigation[0], raw, version)
    if navigation or name == "*" or (prop is not None and prop.complex):
        return _expand_refused(navigation[0] if navigation else prop.name if prop is not None else name)
    if prop is not None:
        raise errors.GraphError(
            400,
            "BadRequest",
            f"Property '{name}' on type '{_type_name(resource)}' is not a navigation property or complex property. "
            "Only navigation properties can be expanded.",
        )
    raise _not_found(name, resource)


def _expand_item(relation: str, raw: str, version: str) -> Expand:
    """``members``, ``members($select=id,displayName)``: only a nested ``$select`` is served; a path
    (``members/$ref``, a cast) or another nested option is refused (docs/behaviour.md#expand)."""
    text = raw.strip()
    head, _, rest = text.partition("(")
    if "/" in head:
        raise errors.unsupported_query(f"The expand path '{head.strip()}' is not supported.")
    if not rest:
        return Expand(relation)
    if not rest.rstrip().endswith(")"):
        raise errors.GraphError(400, "BadRequest", "Found an unbalanced bracket expression.")  # the OData parser's
    select: list[str] | None = None
    for option in _split_top_level(rest.rstrip()[:-1], ";"):
        key, eq, value = option.partition("=")
        key = _norm(key.strip()) if key.strip() else ""
        if not key and not eq:
            continue
        if key != "$select":
            raise errors.unsupported_query(f"The query option '{key or option}' is not supported inside $expand; only $select is.")
        if select is not None:
            raise errors.GraphError(400, "BadRequest", "Query option '$select' was specified more than once, but it must be specified at most once.")
        select = parse_select(value, "directoryObject", version)
    return Expand(relation, select or None)


def parse_expand(value: str, resource: str, version: str = "v1.0", expandable: bool = False) -> Expand | None:
    """``$expand`` (https://learn.microsoft.com/en-us/graph/query-parameters#expand-parameter).

    With ``expandable`` (single groups and users and their listings), the relationships of
    :data:`EXPANDABLE` are served: one per request, with an optional nested ``$select``. Every
    other name answers the 400 Graph's parser or schema gives (docs/behaviour.md#expand):

    * a name the type does not have: "Could not find a property named '…' on type '…'.";
    * a structural property: "Property '…' on type '…' is not a navigation property or complex
      property. Only navigation properties can be expanded.";
    * then, two items or more: Graph's "The result of parsing $expand contained at least 2 items,
      but the maximum allowed is 1." (microsoftgraph/microsoft-graph-docs#96);
    * then a relationship, complex property or ``*`` not served here: ``400 ExpandNotSupported``
      "Expand is not allowed for property 'Photo' according to the entity schema."
      (query-parameters.md's own example).
    """
    served = EXPANDABLE.get(resource, ()) if expandable else ()
    items = [b for b in (_bind_expand_item(raw, resource, version, served) for raw in _split_top_level(value)) if b is not None]
    if len(items) > 1:
        raise errors.GraphError(400, "BadRequest", "The result of parsing $expand contained at least 2 items, but the maximum allowed is 1.")
    if not items:
        return None
    if isinstance(items[0], errors.GraphError):
        raise items[0]
    return items[0]


def _split_top_level(value: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses: ``members($select=id,displayName),owners``."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(value):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return parts


def _expand_with_advanced_query(search: bool) -> errors.GraphError:
    """``$expand`` is not supported with advanced queries (aad-advanced-queries.md): such a request
    is answered as the directory answers it without the advanced-query engine — with ``$search``,
    the 400 Graph gives for it (observed: microsoftgraph/microsoft-graph-docs-contrib#2577), else the
    ``$count`` refusal of the non-advanced path (docs/behaviour.md#expand)."""
    return errors.search_needs_consistency() if search else errors.count_not_supported()


def parse_top(value: str, cap: bool) -> int:
    """``$top``: ASCII digits only (``int()`` would also take ``５``, `` 5`` and ``1_0``)."""
    if not (value.isascii() and value.isdigit()):
        raise errors.GraphError(
            400, "BadRequest", f"Invalid value '{value}' for $top query option found. The $top query option requires a non-negative integer value."
        )
    top = int(value)
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
    version: str = "v1.0",
    expandable: bool = False,
) -> Options:
    """Parse a request's query options. ``resource`` names the item type ("user", "group" or
    "directoryObject"); ``relationship`` is true for members/owners/memberOf listings;
    ``expandable`` serves the expansions of :data:`EXPANDABLE` (single groups and users, their listings)."""
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
        out.select = parse_select(opts["$select"], resource, version)
    if "$expand" in opts:
        out.expand = parse_expand(opts["$expand"], resource, version, expandable)
    if not collection:
        extra = [k for k in opts if k not in ("$select", "$expand", "$format")]
        if extra:
            raise errors.GraphError(400, "BadRequest", f"Query option '{extra[0]}' is not allowed on a single entity.")
        return out
    count_true = opts.get("$count", "").lower() == "true"
    if "$count" in opts and opts["$count"].lower() not in ("true", "false"):  # only ASCII folds to these
        raise errors.GraphError(400, "BadRequest", f"Invalid value '{opts['$count']}' for $count query option found. Valid values are 'true' and 'false'.")
    advanced = eventual and count_true
    if out.expand is not None and eventual and (advanced or "$search" in opts):
        raise _expand_with_advanced_query("$search" in opts)
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
