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
from collections.abc import Iterable, Sequence
from typing import Any

#: ASCII letters folded to lower case, every other character kept: the order of SQLite's NOCASE and
#: of PostgreSQL's ``lower()`` on "C" text, which the stores use for ``$orderby=displayName``.
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


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
