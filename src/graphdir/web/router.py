"""Matching Graph paths: case-insensitive literal segments, ``{id}`` captures and OData cast segments.

Graph's path segment names are case-insensitive in practice (docs/behaviour.md#case-insensitive-names:
``/transitiveMembers/`` vs ``/transitivemembers/``). Casts may be written
``microsoft.graph.user`` or the SDK's short ``graph.user`` (docs/behaviour.md#cast-segments).
Every route carries its permissions (:class:`graphdir.auth.permissions.Perms`, or the explicit
:data:`ANONYMOUS` marker) and its Microsoft doc page; a route without either cannot be built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from graphdir import errors
from graphdir.auth.permissions import Perms
from graphdir.web.context import Ctx
from graphdir.web.responses import GraphResponse

CASTS = {
    "microsoft.graph.user": "user",
    "microsoft.graph.group": "group",
    "microsoft.graph.device": "device",
    "microsoft.graph.serviceprincipal": "servicePrincipal",
    "microsoft.graph.orgcontact": "orgContact",
    "microsoft.graph.application": "application",
}
CASTS.update({k[len("microsoft."):]: v for k, v in list(CASTS.items())})

#: A route's handler: thin, one per Graph operation (web/handlers_*.py).
Handler = Callable[[Ctx], Awaitable[GraphResponse]]

#: Where a route's doc page may live: Microsoft's Graph docs, or this repository's docs for
#: graphdir's own routes (the admin API).
DOC_PREFIXES = ("https://learn.microsoft.com/en-us/graph/", "docs/")


class Anonymous:
    """The route table's explicit marker for a route that needs no token, as Graph serves its
    ``$metadata`` anonymously. Written in the table in place of a :class:`Perms`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANONYMOUS"


ANONYMOUS = Anonymous()


class KeySegment(str):
    """A key written in parentheses, ``users('$x@y.com')``: always a value, never a literal or a cast.

    UPNs starting with ``$`` can only be addressed this way (user-get.md), so such a key must
    not be mistaken for ``$count``/``$ref`` or refused like a bare ``$`` segment.
    """


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    handler: Handler
    perms: Perms | Anonymous
    name: str
    #: the operation's doc page (https://learn.microsoft.com/en-us/graph/api/…)
    doc: str
    #: ``/me`` paths: only a delegated token has a signed-in user (user-get.md).
    delegated_only: bool = False
    #: what the route's row in the README's table adds to method, path and doc page
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.perms, Perms | Anonymous):
            raise TypeError(f"route {self.name} has no permissions declared")
        if not isinstance(self.doc, str) or not any(self.doc.startswith(p) and len(self.doc) > len(p) for p in DOC_PREFIXES):
            raise TypeError(f"route {self.name} has no doc page declared")


@dataclass
class Match:
    route: Route
    args: dict[str, str]


def _seg_matches(pat: str, seg: str, args: dict[str, str]) -> bool:
    if isinstance(seg, KeySegment):
        if not pat.startswith("{") or pat == "{cast}":
            return False
        args[pat[1:-1]] = str(seg)
        return True
    if pat.startswith("{"):
        name = pat[1:-1]
        if name == "cast":
            t = CASTS.get(seg.lower())
            if t is None:
                return False
            args["cast"] = t
            return True
        if seg.startswith("$"):
            return False
        args[name] = seg
        return True
    return pat.lower() == seg.lower()


class _Node:
    """One position in the route trie: literal children, a cast child, parameter children, and the
    routes (by method) that end here."""

    __slots__ = ("literals", "cast", "params", "routes")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.cast: _Node | None = None
        self.params: list[tuple[str, _Node]] = []
        self.routes: dict[str, Route] = {}

    def child(self, pat: str) -> _Node:
        if pat == "{cast}":
            self.cast = self.cast or _Node()
            return self.cast
        if pat.startswith("{"):
            name = pat[1:-1]
            for n, node in self.params:
                if n == name:
                    return node
            node = _Node()
            self.params.append((name, node))
            return node
        return self.literals.setdefault(pat.lower(), _Node())


def _find(node: _Node, segs: list[str], i: int, method: str, seen: list[bool]) -> tuple[Route, dict[str, str]] | None:
    """The first route end matching ``segs`` with ``method``, best first: literal, then cast, then
    parameter. ``seen[0]`` becomes true when a path matched with another method only (→ 405).
    Arguments are collected on the way back, so a failed branch allocates nothing."""
    if i == len(segs):
        if not node.routes:
            return None
        route = node.routes.get(method)
        if route is None:
            seen[0] = True
            return None
        return route, {}
    seg = segs[i]
    if not isinstance(seg, KeySegment):
        low = seg.lower()
        lit = node.literals.get(low)
        if lit is not None:
            hit = _find(lit, segs, i + 1, method, seen)
            if hit is not None:
                return hit
        if node.cast is not None:
            cast = CASTS.get(low)
            if cast is not None:
                hit = _find(node.cast, segs, i + 1, method, seen)
                if hit is not None:
                    hit[1]["cast"] = cast
                    return hit
        if seg.startswith("$"):
            return None
    for name, child in node.params:
        hit = _find(child, segs, i + 1, method, seen)
        if hit is not None:
            hit[1][name] = str(seg)
            return hit
    return None


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._root = _Node()
        for r in routes:
            node = self._root
            for pat in r.pattern:
                node = node.child(pat)
            node.routes.setdefault(r.method, r)

    @staticmethod
    def _prefix_matches(route: Route, segments: list[str], n: int) -> bool:
        return all(_seg_matches(p, s, {}) for p, s in zip(route.pattern[:n], segments[:n], strict=True))

    def match(self, method: str, segments: list[str]) -> Match:
        """The first route matching path and method; 405 when only the method differs; else 400.

        Most paths need no backtracking: follow the literal child where there is one, else the only
        parameter child. When that straight walk ends on a route for ``method`` it is the route the
        full best-first search (:func:`_find`) would return first; otherwise that search decides.
        """
        node = self._root
        args: dict[str, str] = {}
        for seg in segments:
            if type(seg) is str:  # not a KeySegment
                low = seg.lower()
                lit = node.literals.get(low)
                if lit is not None:
                    node = lit
                    continue
                if (node.cast is not None and low in CASTS) or seg.startswith("$"):
                    break
            if len(node.params) != 1:
                break
            name, node = node.params[0]
            args[name] = str(seg)
        else:
            route = node.routes.get(method)
            if route is not None:
                return Match(route, args)
        seen = [False]
        hit = _find(self._root, segments, 0, method, seen)
        if hit is not None:
            return Match(hit[0], hit[1])
        if seen[0]:
            raise errors.method_not_allowed()
        bad = segments[-1] if segments else ""
        for n in range(len(segments), 0, -1):
            if any(self._prefix_matches(r, segments, n) for r in self.routes if len(r.pattern) >= n):
                bad = segments[n] if n < len(segments) else segments[-1]
                break
        else:
            bad = segments[0] if segments else ""
        raise errors.segment_not_found(bad)
