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


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database for one test (dropped afterwards); yields its URL."""
    import psycopg

    url = run_url()
    name = f"{url.rsplit('/', 1)[1]}_{os.getpid()}_{next(_SEQ)}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(_admin(url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
