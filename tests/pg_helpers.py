"""PostgreSQL databases for tests: each test that needs one gets a fresh database, dropped afterwards.

``scripts/test.sh`` creates one throwaway database per run and exports its URL as
``GRAPHDIR_TEST_PG_URL`` (scripts/pg-up.sh); tests make their own databases named after it with a
suffix, which scripts/pg-down.sh drops at the end of the run if a test could not. Without the variable
(a bare ``pytest`` on a machine without PostgreSQL) these tests skip, saying why; ``scripts/test.sh``
always sets it unless told ``GRAPHDIR_SKIP_PG=1``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

ENV = "GRAPHDIR_TEST_PG_URL"
_SEQ = itertools.count()


def run_url() -> str:
    """The run's database URL, or skip the test (no PostgreSQL configured)."""
    url = os.environ.get(ENV, "")
    if not url:
        pytest.skip(f"{ENV} is not set: no PostgreSQL for this run (scripts/test.sh sets it; GRAPHDIR_SKIP_PG=1 skips)")
    return url


def _admin(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def create_database(template: str | None = None) -> str:
    """A new database named after the run's (``<run db>_<pid>_<n>_<random>``, so scripts/pg-down.sh
    drops it if the test run could not); a copy of ``template`` (a database URL) if given. Its URL."""
    import psycopg

    url = run_url()
    name = f"{url.rsplit('/', 1)[1]}_{os.getpid()}_{next(_SEQ)}_{uuid.uuid4().hex[:6]}"
    from_template = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{from_template}')
    return url.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    """Drop a database :func:`create_database` made (ending its sessions)."""
    import psycopg

    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database for one test (dropped afterwards); yields its URL."""
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


#: The schema of a :class:`ResettableDatabases` database that keeps the template's rows.
SNAPSHOT_SCHEMA = "graphdir_test_snapshot"


class ResettableDatabases:
    """Databases with the same starting state, reused from test to test: the HTTP suite on PostgreSQL.

    The template (a migrated database the caller has filled, e.g. with the default tenant and the
    signing keys) gets a copy of its rows in the schema :data:`SNAPSHOT_SCHEMA`. The ``n``-th database
    a test asks for is made once per session from the template (``CREATE DATABASE … TEMPLATE``) and
    handed out again to later tests after :meth:`reset`: every table of ``public`` except
    ``schema_version`` emptied with ``DELETE`` and re-filled from the snapshot in one transaction
    (about 1-4 ms; a ``CREATE DATABASE`` from a template takes ~70 ms plus ~150 ms for its ``DROP``,
    and ``TRUNCATE`` of the eleven tables ~70 ms). Every app on a database must be stopped before it
    is handed out again.
    """

    def __init__(self, template: str) -> None:
        import psycopg

        self.template = template
        self._urls: list[str] = []
        self._conns: list[Any] = []
        with psycopg.connect(template, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'schema_version' ORDER BY 1")]
            referencing = {r[0] for r in conn.execute("SELECT conrelid::regclass::text FROM pg_constraint WHERE contype='f'")}
            with conn.transaction():
                conn.execute(f'CREATE SCHEMA "{SNAPSHOT_SCHEMA}"')
                for table in tables:
                    conn.execute(f'CREATE TABLE "{SNAPSHOT_SCHEMA}"."{table}" AS TABLE public."{table}"')
        # edges first out, last in (their foreign keys need the objects)
        deletes = [f'DELETE FROM public."{t}"' for t in sorted(tables, key=lambda t: t not in referencing)]
        inserts = [f'INSERT INTO public."{t}" SELECT * FROM "{SNAPSHOT_SCHEMA}"."{t}"' for t in sorted(tables, key=lambda t: t in referencing)]
        self._reset_sql = "BEGIN; " + "; ".join(deletes + inserts) + "; COMMIT"

    def get(self, n: int) -> str:
        """The URL of database ``n`` (0, 1, … within one test), in the template's state."""
        import psycopg

        if n < len(self._urls):
            self.reset(n)
        while len(self._urls) <= n:
            url = create_database(self.template)
            self._urls.append(url)
            self._conns.append(psycopg.connect(url, autocommit=True))
        return self._urls[n]

    def reset(self, n: int) -> None:
        self._conns[n].execute(self._reset_sql)

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        for url in self._urls:
            drop_database(url)
        self._urls, self._conns = [], []
