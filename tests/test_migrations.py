"""Schema migrations on real SQLite: a database written by an earlier version keeps every row.

Migration 4 rebuilds ``objects`` as a rowid table (rows no longer spill into overflow pages);
the ids, attributes, renderings and the uniqueness of ``(tenant_id, id)`` and of the UPN survive.
Migration 5 records which projection each stored rendering was made with: a database rendered
with an older projection serves the current one after the upgrade, in each API version.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from graphdir.auth.tokens import mint
from graphdir.odata import serialize
from graphdir.query import ListQuery
from graphdir.settings import load_settings
from graphdir.store.base import StoredObject
from graphdir.store.migrations import LATEST, MIGRATIONS
from graphdir.store.sqlite import SqliteStore
from graphdir.web.app import build_app

T = "11111111-1111-4111-8111-111111111111"
U = "22222222-2222-4222-8222-222222222222"
G = "33333333-3333-4333-8333-333333333333"


def _database_at(path: Path, version: int) -> None:
    """A database as graphdir at schema ``version`` left it, with a user, a group and a membership."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number, _title, sql in MIGRATIONS:
            if number > version:
                break
            for stmt in [s for s in sql.split(";") if s.strip()]:
                conn.execute(stmt)
            conn.execute("INSERT INTO schema_version VALUES (?)", (number,))
        rows = [
            (T, U, "user", "Ada", "ada@contoso.onmicrosoft.com", "ada", f'{{"id": "{U}", "displayName": "Ada"}}', b'{"id":"u"}'),
            (T, G, "group", "Team", None, "team", f'{{"id": "{G}", "displayName": "Team", "groupTypes": []}}', None),
        ]
        conn.executemany(
            "INSERT INTO objects (tenant_id, id, type, display_name, upn, mail_nickname, created, deleted, props, rendered) "
            "VALUES (?,?,?,?,?,?,'2026-01-01T00:00:00Z',NULL,?,?)",
            rows,
        )
        conn.execute("INSERT INTO members VALUES (?,?,?,'user')", (T, G, U))
    finally:
        conn.close()


def _migrated_from_v3(db: Path) -> SqliteStore:
    _database_at(db, 3)
    store = SqliteStore(db)
    assert store.migrate() == LATEST >= 4
    return store


def test_migration_4_keeps_every_object_and_its_uniqueness(tmp_path: Path) -> None:
    db = tmp_path / "v3.db"
    store = _migrated_from_v3(db)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='objects'").fetchone()[0]
        assert "WITHOUT ROWID" not in ddl.upper()
        rows = conn.execute("SELECT id, type, display_name, upn, props, rendered FROM objects ORDER BY id").fetchall()
        assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(U, "user", "Ada", "ada@contoso.onmicrosoft.com"), (G, "group", "Team", None)]
        assert rows[0][5] == b'{"id":"u"}' and rows[1][5] is None
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO objects (tenant_id, id, type, created, props) VALUES (?, ?, 'user', 'x', '{}')", (T, U))
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO objects (tenant_id, id, type, upn, created, props) VALUES (?, ?, 'user', ?, 'x', '{}')",
                (T, "44444444-4444-4444-8444-444444444444", "ada@contoso.onmicrosoft.com"),
            )
    store.open()
    try:
        user = store.sync(store.get(T, U))
        assert isinstance(user, StoredObject) and user.props["displayName"] == "Ada"
        page = store.sync(store.list_members(T, G, ListQuery()))
        assert [o.id for o in page.items] == [U]
    finally:
        store.close()


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "again.db"
    assert _migrated_from_v3(db).migrate() == LATEST
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM objects").fetchone()[0] == 2
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == list(range(1, LATEST + 1))


# -- pre-rendered JSON carries the version of its projection (migration 5) ------------------------------
STALE = b'{"id":"stale","displayName":"rendered by an older projection"}'


def _stale_database(path: Path, version: int, rendered_version: str | None = None) -> None:
    """A database at schema ``version`` whose rows were rendered with an older default projection."""
    _database_at(path, version)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("UPDATE objects SET rendered=?", (STALE,))
        if version >= 5:
            conn.execute("UPDATE objects SET rendered_version=?", (rendered_version,))
            conn.execute("INSERT INTO meta VALUES ('rendered_version', ?)", (rendered_version,))
        conn.execute("INSERT INTO tenants VALUES (?, 'Contoso', 'contoso.onmicrosoft.com', '{}', '2026-01-01T00:00:00Z')", (T,))
        conn.execute("INSERT INTO meta VALUES ('default_tenant', ?)", (T,))


async def _lists(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every list of the two objects, in both versions, without and with ``$select`` of the defaults."""
    app = build_app(load_settings(database_url=f"sqlite:///{path}", env={}))
    graph = app.state.graph
    await asyncio.to_thread(graph.start)  # start-up writes synchronously: not on the event loop's thread
    try:
        token = mint(graph.ring, T, app_id=graph.app_id, roles=["Directory.Read.All"])
        out: dict[str, list[dict[str, Any]]] = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            for version in ("v1.0", "beta"):
                for path_ in ("/users", "/groups", f"/groups/{G}/members", f"/users/{U}/memberOf"):
                    r = await c.get(f"/{version}{path_}", headers={"Authorization": f"Bearer {token}"})
                    assert r.status_code == 200, r.text
                    out[f"{version}{path_}"] = r.json()["value"]
    finally:
        await asyncio.to_thread(graph.stop)
    return out


def _current(version: str, type_: str, object_id: str, props: dict[str, Any], typed: bool) -> dict[str, Any]:
    return serialize.entity(StoredObject(T, object_id, type_, props, "2026-01-01T00:00:00Z"), None, typed, version)


def _expected() -> dict[str, list[dict[str, Any]]]:
    user = {"id": U, "displayName": "Ada"}
    group = {"id": G, "displayName": "Team", "groupTypes": []}
    out = {}
    for v in ("v1.0", "beta"):
        out[f"{v}/users"] = [_current(v, "user", U, user, False)]
        out[f"{v}/groups"] = [_current(v, "group", G, group, False)]
        out[f"{v}/groups/{G}/members"] = [_current(v, "user", U, user, True)]
        out[f"{v}/users/{U}/memberOf"] = [_current(v, "group", G, group, True)]
    return out


@pytest.mark.anyio
@pytest.mark.parametrize(("version", "rendered_version"), [(4, None), (5, "0.older-projection")])
async def test_rows_rendered_with_an_older_projection_serve_the_current_one(tmp_path: Path, version: int, rendered_version: str | None) -> None:
    """A database written before its rows' rendering was versioned (schema 4), or rendered with a
    projection that has changed since: after the upgrade every list serves the current default
    projection of its own API version, and the stored renderings are brought up to date."""
    db = tmp_path / f"stale-{version}.db"
    _stale_database(db, version, rendered_version)
    assert await _lists(db) == _expected()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT type, rendered, rendered_version FROM objects ORDER BY type").fetchall()
        current = serialize.RENDERING["v1.0"]
        assert [(t, v) for t, _, v in rows] == [("group", current), ("user", current)]
        assert all(r != STALE for _, r, _ in rows)
        assert conn.execute("SELECT value FROM meta WHERE key='rendered_version'").fetchone() == (current,)


@pytest.mark.anyio
async def test_a_row_rendered_by_an_older_projection_after_the_upgrade_is_rendered_on_read(tmp_path: Path) -> None:
    """Rows an older graphdir writes next to this one (no key, or another key) are never served stale."""
    db = tmp_path / "late.db"
    _stale_database(db, 5, serialize.RENDERING["v1.0"])  # the start-up step believes every row is current
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("UPDATE objects SET rendered_version='0.older-projection' WHERE type='user'")
        conn.execute("UPDATE objects SET rendered_version=NULL WHERE type='group'")
    assert await _lists(db) == _expected()


def test_each_api_version_gets_the_rendering_of_its_own_projection(tmp_path: Path) -> None:
    """Where v1.0's and beta's default projections differ, each list gets its own version's rendering
    (the row keeps v1.0's bytes; beta's are made from the attributes); where they are equal, one key."""
    v1 = serialize.PROJECTIONS["v1.0"]
    beta = {**v1, "user": tuple(n for n in v1["user"] if n != "jobTitle") + ("employeeId",)}
    assert serialize.rendering_key(v1) == serialize.rendering_key(dict(v1)) != serialize.rendering_key(beta)
    assert serialize.RENDERING["v1.0"] == serialize.RENDERING["beta"]  # today's projections are equal
    store = SqliteStore(tmp_path / "versions.db", render=serialize.renderings({"v1.0": v1, "beta": beta}))
    store.open()
    try:
        props = {"id": U, "displayName": "Ada", "jobTitle": "Engineer", "employeeId": "E1"}
        store.write_sync(T, lambda tx: tx.insert(StoredObject(T, U, "user", props, "2026-01-01T00:00:00Z")))
        got = {}
        for name, projection in (("v1.0", v1), ("beta", beta)):
            page = store.sync(store.list_objects(T, ("user",), ListQuery(rendered=serialize.rendering_key(projection))))
            assert page.rendered is not None
            got[name] = orjson.loads(page.rendered[0][1])
    finally:
        store.close()
    assert got["v1.0"] == orjson.loads(serialize.render_projection(v1, "user", U, props)) and got["v1.0"]["jobTitle"] == "Engineer"
    assert got["beta"] == orjson.loads(serialize.render_projection(beta, "user", U, props)) and "jobTitle" not in got["beta"]
    assert list(got["beta"]) == list(beta["user"]) and got["beta"]["employeeId"] == "E1"
