"""SQLite's plan for the transitive walks (docs/behaviour.md#membership-functions, "Cost").

Each recursive step of ``up`` (the groups holding an object: checkMemberGroups, getMemberGroups,
transitiveMemberOf) and ``down`` (the groups nested in a group: transitiveMembers) must be one index
lookup keyed by the step's row. Left to itself SQLite's planner may put ``members`` outermost and scan
every member of the tenant once per row (an object in 11,000 groups took minutes); the queries pin
the order with ``CROSS JOIN``. The plan is read with ``EXPLAIN QUERY PLAN`` on a database migrated
as graphdir migrates it, with and without ``ANALYZE`` statistics: no timing.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from graphdir import bootstrap
from graphdir.settings import load_settings
from graphdir.store import sqlite as sqlite_store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "plan.db"
    store = bootstrap.open_store(load_settings(env={}, database_url=f"sqlite:///{path}"))
    store.open()
    store.close()
    return path


def _steps(conn: sqlite3.Connection, sql: str, params: tuple[str, ...]) -> list[str]:
    """The plan lines under ``RECURSIVE STEP``."""
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    step = next(r[0] for r in rows if r[3] == "RECURSIVE STEP")
    return [r[3] for r in rows if r[1] == step]


@pytest.mark.parametrize("analyze", [False, True])
def test_each_recursive_step_is_an_index_lookup(db: Path, analyze: bool) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        t = "tenant"
        objects = [(t, f"g{i}", "group") for i in range(2000)] + [(t, "u", "user")]
        conn.executemany("INSERT INTO objects (tenant_id, id, type, created, props) VALUES (?, ?, ?, '', '{}')", objects)
        conn.executemany("INSERT INTO members VALUES (?, ?, ?, ?)", [(t, f"g{i}", "u", "user") for i in range(2000)])
        conn.executemany("INSERT INTO members VALUES (?, ?, ?, ?)", [(t, f"g{i}", f"g{i + 1}", "group") for i in range(49)])
        if analyze:
            conn.execute("ANALYZE")
        up = _steps(conn, f"{sqlite_store._UP} SELECT g FROM up", (t, "u", t))
        down = _steps(conn, f"{sqlite_store._DOWN} SELECT g FROM down", ("g0", t))
    assert up[0] == "SCAN up", up
    assert any("members" in s and "member_id=?" in s for s in up), up
    assert down[0] == "SCAN down", down
    assert any(s.startswith("SEARCH m USING") and "group_id=?" in s for s in down), down
    for s in up + down:  # never a member scan keyed by the tenant alone
        assert not s.endswith("(tenant_id=?)"), s
