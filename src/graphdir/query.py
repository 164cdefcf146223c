"""A neutral description of a directory query.

The OData layer (:mod:`graphdir.odata`) parses ``$filter``, ``$search``,
``$orderby``, ``$top`` and ``$skiptoken`` into these plain objects; the store
compiles them to parameterised SQL over a whitelist of properties. Nothing
here knows about HTTP, JSON or SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scalar = str | bool | int | float | None

CmpOp = Literal["eq", "ne", "gt", "ge", "lt", "le"]


@dataclass(frozen=True)
class Compare:
    """``prop op value``; string comparisons are case-insensitive like Entra's."""

    prop: str
    op: CmpOp
    value: Scalar


@dataclass(frozen=True)
class StartsWith:
    prop: str
    value: str


@dataclass(frozen=True)
class EndsWith:
    prop: str
    value: str


@dataclass(frozen=True)
class In:
    prop: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class AnyEq:
    """``coll/any(x: x eq 'v')`` (or ``startsWith(x, 'v')`` when ``prefix``) over a string collection."""

    prop: str
    value: str
    prefix: bool = False


@dataclass(frozen=True)
class AnyEndsWith:
    """``coll/any(x: endsWith(x, 'v'))`` over a string collection (advanced queries only).

    Added for ``proxyAddresses``/``otherMails``, the collections on which Graph allows
    ``endsWith`` (aad-advanced-queries.md); :class:`AnyEq` only covers eq and prefix.
    """

    prop: str
    value: str


@dataclass(frozen=True)
class And:
    items: tuple[Predicate, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Predicate, ...]


@dataclass(frozen=True)
class Not:
    item: Predicate


Predicate = Compare | StartsWith | EndsWith | In | AnyEq | AnyEndsWith | And | Or | Not


@dataclass(frozen=True)
class SearchTerm:
    """One ``"property:token"`` clause of ``$search`` (tokens match word prefixes)."""

    prop: str
    token: str


@dataclass(frozen=True)
class Search:
    """``$search`` clauses combined with AND/OR (https://learn.microsoft.com/en-us/graph/search-query-parameter)."""

    op: Literal["AND", "OR"]
    terms: tuple[SearchTerm | Search, ...]


@dataclass
class ListQuery:
    """What a list call asks of the store: a filter, an order and one page."""

    where: Predicate | None = None
    search: Search | None = None
    order_by: str | None = None  # a property name, e.g. "displayName"; None = by id
    descending: bool = False
    top: int = 100
    after: tuple[str, ...] | None = None  # keyset position taken from $skiptoken
    types: tuple[str, ...] | None = None  # OData cast: restrict to these object types
    count: bool = False
    #: a rendering key (``graphdir.store.base.Renderings``): return each item's default projection
    #: as JSON bytes (``Page.rendered``) instead of objects
    rendered: str | None = None
