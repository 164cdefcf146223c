"""The HTTP suite's databases (tests/http_helpers.py): every app of a test starts in the template's state,
on either backend (``GRAPHDIR_TEST_BACKEND``), and PostgreSQL's reused databases really are reset."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette

from http_helpers import BASE_URL, ON_POSTGRESQL, Api
from pg_helpers import ResettableDatabases, create_database, drop_database


async def _users(api: Api) -> list[str]:
    return await api.ids("/v1.0/users")


@pytest.mark.anyio
async def test_each_app_of_a_test_has_a_database_of_its_own(make_app: Callable[..., Starlette]) -> None:
    first, second = make_app(), make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url=BASE_URL) as c1, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url=BASE_URL) as c2:  # fmt: skip
        one, two = Api(first, c1), Api(second, c2)
        urls = [first.state.graph.settings.database_url, second.state.graph.settings.database_url]
        assert urls[0] != urls[1]
        assert all(url.startswith("postgresql://" if ON_POSTGRESQL else "sqlite:///") for url in urls), urls  # GRAPHDIR_TEST_BACKEND
        user = await one.create_user()
        assert await _users(one) == [user["id"]]
        assert await _users(two) == []
        # the same template: the same tenant and signing keys, no key generated per test
        assert one.tenant_id == two.tenant_id
        assert first.state.graph.app_id == second.state.graph.app_id


@pytest.mark.anyio
async def test_a_test_starts_with_no_objects_whatever_the_previous_test_wrote(api: Api) -> None:
    """Run after the test above (same module, pytest's order): the database it wrote to was reset."""
    assert await _users(api) == []
    await api.create_user()
    assert len(await _users(api)) == 1


def test_resettable_databases_restore_the_templates_rows() -> None:
    import psycopg

    template = create_database()
    try:
        with psycopg.connect(template, autocommit=True) as conn:
            conn.execute("CREATE TABLE schema_version (version int)")
            conn.execute("CREATE TABLE objects (id text PRIMARY KEY)")
            conn.execute("CREATE TABLE members (group_id text REFERENCES objects ON DELETE CASCADE, member_id text REFERENCES objects ON DELETE CASCADE)")
            conn.execute("INSERT INTO schema_version VALUES (1)")
            conn.execute("INSERT INTO objects VALUES ('g'), ('u')")
            conn.execute("INSERT INTO members VALUES ('g', 'u')")
        databases = ResettableDatabases(template)
        try:
            url = databases.get(0)
            assert databases.get(1) != url
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DELETE FROM objects WHERE id='u'")
                conn.execute("INSERT INTO objects VALUES ('x')")
                conn.execute("INSERT INTO members VALUES ('g', 'x')")
            assert databases.get(0) == url  # the same database, reset
            with psycopg.connect(url, autocommit=True) as conn:
                assert conn.execute("SELECT id FROM objects ORDER BY id").fetchall() == [("g",), ("u",)]
                assert conn.execute("SELECT group_id, member_id FROM members").fetchall() == [("g", "u")]
                assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]  # not snapshotted: kept
        finally:
            databases.close()
        with psycopg.connect(template, autocommit=True) as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname = %s", (url.rsplit("/", 1)[1],))]
        assert names == []  # close() dropped them
    finally:
        drop_database(template)
