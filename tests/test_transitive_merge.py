"""The merge of per-group arms (graphdir.store.transitive) against brute force: every page of a
transitiveMembers listing is the first ``top + 1`` distinct ids past the position, whatever the arms."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from graphdir.store.transitive import first_member_ids, merge_arms

IDS = st.lists(st.text("abcdef", min_size=1, max_size=3), max_size=30)


@settings(max_examples=300, deadline=None)
@given(arms=st.lists(IDS, min_size=1, max_size=8), top=st.integers(1, 12), after=st.none() | st.text("abcdef", max_size=3),
       descending=st.booleans())
def test_first_member_ids_is_the_brute_force_page(arms: list[list[str]], top: int, after: str | None, descending: bool) -> None:
    groups = [f"g{i}" for i in range(len(arms))]
    data = dict(zip(groups, arms, strict=True))
    asked: list[int] = []

    def past(x: str, pos: str | None) -> bool:
        return pos is None or (x < pos if descending else x > pos)

    async def fetch(asks: list[tuple[str, str | None, int]]) -> list[list[str]]:
        assert len({k for _, _, k in asks}) == 1  # one limit a round
        asked.append(len(asks))
        return [sorted((x for x in set(data[g]) if past(x, pos)), reverse=descending)[:k] for g, pos, k in asks]

    want = sorted({x for a in arms for x in a if past(x, after)}, reverse=descending)[: top + 1]
    assert asyncio.run(first_member_ids(fetch, groups, after, top, descending)) == want
    assert len(asked) <= 8  # the rounds end: each doubles what an open arm is asked for


def test_merge_arms_drops_the_member_reached_twice() -> None:
    a = [("x", "1"), ("y", "3")]
    b = [("x", "1"), ("z", "2")]
    assert merge_arms([a, b], 1, 5, False, False) == [("x", "1"), ("z", "2"), ("y", "3")]
