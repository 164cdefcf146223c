"""Transitive membership, the part both stores share (docs/behaviour.md#transitive-membership).

Both stores answer the transitive relationships from the one ``members`` table, with no closure
table to maintain (so adding and removing a member costs what it did before):

* **upwards** (``transitiveMemberOf``, ``checkMemberGroups``, ``getMemberGroups``): a recursive
  walk from the object along ``members_reverse`` to every live group that holds it, directly or
  through live nested groups. An object sits in few groups, so the walk is short.
* **downwards** (``transitiveMembers``): first the live nested groups under the group (a recursive
  walk over the partial index ``members_nested``, which holds only the group-typed edges, so a
  1,000,000-member group's users are never read to find them), then one *arm* per group: that
  group's direct members past the page's position, in the page's order, at most ``top + 1`` of
  them. :func:`merge_arms` merges the arms and drops the members reached along several paths. A
  page thus costs ``top + 1`` rows per nested group whatever its depth in the listing, and a group
  without nested groups is paged exactly like its direct members.

Soft-deleted groups are neither walked through nor listed: a member reached only through a deleted
group is not a transitive member (https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers).
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

#: Up to this many soft-deleted groups in a tenant, a walk of the nesting skips reading each group's
#: row and checks what it reached against them instead (usually there are none: a deleted group stays
#: restorable for 30 days); with more, the walks check each group's row as they go.
FEW_DELETED = 1000

#: ASCII letters folded to lower case, every other character kept: the order of SQLite's NOCASE and
#: of PostgreSQL's ``lower()`` on "C" text, which the stores use for ``$orderby=displayName``.
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def reached_deleted(deleted: set[str], reached: Iterable[str]) -> bool:
    """Might an unchecked walk have reached a soft-deleted group? ``deleted``: the tenant's soft-deleted
    groups as read with a limit of :data:`FEW_DELETED` + 1 (more than that: assume so)."""
    return len(deleted) > FEW_DELETED or not deleted.isdisjoint(reached)


def _fold(v: Any) -> Any:
    return v.translate(_ASCII_LOWER) if isinstance(v, str) else v


def merge_arms(arms: Iterable[Sequence[tuple[Any, ...]]], width: int, top: int, by_name: bool, descending: bool) -> list[tuple[Any, ...]]:
    """The first ``top + 1`` distinct rows of several arms, each already sorted by the page's keys.

    A row's keys are its columns from ``width`` on: ``(displayName, id)`` when ``by_name`` (compared
    with ASCII letters folded, as the stores order them), else ``(id,)``. The last key, the member's
    id, makes rows equal exactly when they are the same member reached through two groups."""

    def key(r: tuple[Any, ...]) -> tuple[Any, ...]:
        return (_fold(r[width]), r[width + 1]) if by_name else (r[width],)

    out: list[tuple[Any, ...]] = []
    last: Any = None
    for r in heapq.merge(*arms, key=key, reverse=descending):
        ident = r[-1]
        if ident == last:
            continue
        last = ident
        out.append(r)
        if len(out) > top:
            break
    return out


#: What a store answers for a round of :func:`first_member_ids`: per (group, position or None, n),
#: the member ids of that group past the position, at most n of them. Every ask of a round has the
#: same n, and either every ask has a position or none has (the first round asks from the page's
#: position, every later one from where each arm stopped).
ArmFetch = Callable[[list[tuple[str, str | None, int]]], Awaitable[list[list[str]]]]


async def first_member_ids(fetch: ArmFetch, groups: Sequence[str], after: str | None, top: int, descending: bool) -> list[str]:
    """The first ``top + 1`` distinct member ids of several groups past ``after``, in id order (or
    reversed), reading as few edges as it can.

    Each round asks every arm that could still hold one of them for a few more ids: a first round of
    about ``2 (top + 1) / len(groups)`` ids per arm, then, only for the arms whose last id read still
    comes before the page's current last id (the bound), twice as many past it. An arm read to its
    end, or whose last id read is past the bound, cannot change the page. With random ids a page of a
    group holding 2,000 small nested groups reads a few thousand edges instead of all of them."""

    def before(a: str, b: str) -> bool:
        return a > b if descending else a < b

    n = max(2, 2 * (top + 1) // max(1, len(groups)) + 1)
    asks: list[tuple[str, str | None, int]] = [(g, after, n) for g in groups]
    found: set[str] = set()
    page: list[str] = []
    while asks:
        results = await fetch(asks)
        open_arms: list[tuple[str, str, int]] = []
        for (g, _, k), got in zip(asks, results, strict=True):
            found.update(got)
            if len(got) == k:  # the arm may hold more
                last = max(got) if not descending else min(got)
                open_arms.append((g, last, 2 * k))
        page = sorted(found, reverse=descending)[: top + 1]
        bound = page[-1] if len(page) > top else None
        asks = [(g, last, k) for g, last, k in open_arms if bound is None or before(last, bound)]
    return page
