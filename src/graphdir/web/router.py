"""Matching Graph paths: case-insensitive literal segments, ``{id}`` captures and OData cast segments.

Graph's path segment names are case-insensitive in practice (graph-behaviour.md
§0.1: ``/transitiveMembers/`` vs ``/transitivemembers/``). Casts may be written
``microsoft.graph.user`` or the SDK's short ``graph.user`` (sdk-wire.md §5).
Every route carries its permissions (:class:`graphdir.auth.permissions.Perms`);
a route without them cannot be built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphdir import errors
from graphdir.auth.permissions import Perms

CASTS = {
    "microsoft.graph.user": "user",
    "microsoft.graph.group": "group",
    "microsoft.graph.device": "device",
    "microsoft.graph.serviceprincipal": "servicePrincipal",
    "microsoft.graph.orgcontact": "orgContact",
    "microsoft.graph.application": "application",
}
CASTS.update({k[len("microsoft."):]: v for k, v in list(CASTS.items())})

Handler = Callable[[Any], Awaitable[Any]]


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
    perms: Perms
    name: str
    #: ``/me`` paths: only a delegated token has a signed-in user (user-get.md).
    delegated_only: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.perms, Perms):
            raise TypeError(f"route {self.name} has no permissions declared")


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


def _matches(pattern: tuple[str, ...], segments: list[str], args: dict[str, str]) -> bool:
    for p, s in zip(pattern, segments, strict=True):
        if not _seg_matches(p, s, args):
            return False
    return True


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        # candidates by (segment count, first segment): every route starts with a literal segment
        self._index: dict[tuple[int, str], list[Route]] = {}
        for r in routes:
            self._index.setdefault((len(r.pattern), r.pattern[0].lower()), []).append(r)

    @staticmethod
    def _prefix_matches(route: Route, segments: list[str], n: int) -> bool:
        return all(_seg_matches(p, s, {}) for p, s in zip(route.pattern[:n], segments[:n], strict=True))

    def match(self, method: str, segments: list[str]) -> Match:
        """The first route matching path and method; 405 when only the method differs; else 400."""
        path_matched = False
        first = segments[0].lower() if segments and not isinstance(segments[0], KeySegment) else ""
        for r in self._index.get((len(segments), first), ()):
            args: dict[str, str] = {}
            if _matches(r.pattern, segments, args):
                if r.method == method:
                    return Match(r, args)
                path_matched = True
        if path_matched:
            raise errors.method_not_allowed()
        bad = segments[-1] if segments else ""
        for n in range(len(segments), 0, -1):
            if any(self._prefix_matches(r, segments, n) for r in self.routes if len(r.pattern) >= n):
                bad = segments[n] if n < len(segments) else segments[-1]
                break
        else:
            bad = segments[0] if segments else ""
        raise errors.segment_not_found(bad)
