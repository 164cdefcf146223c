"""Schema migrations on real SQLite: a database written by an earlier version keeps every row.

Migration 4 rebuilds ``objects`` as a rowid table (rows no longer spill into overflow pages);
the ids, attributes, renderings and the uniqueness of ``(tenant_id, id)`` and of the UPN survive.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from graphdir.query import ListQuery
from graphdir.store.base import StoredObject
from graphdir.store.migrations import LATEST, MIGRATIONS
from graphdir.store.sqlite import SqliteStore

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
        user = store.get(T, U)
        assert isinstance(user, StoredObject) and user.props["displayName"] == "Ada"
        page = store.list_members(T, G, ListQuery())
        assert [o.id for o in page.items] == [U]
    finally:
        store.close()


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "again.db"
    assert _migrated_from_v3(db).migrate() == LATEST
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM objects").fetchone()[0] == 2
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == list(range(1, LATEST + 1))
