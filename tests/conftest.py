"""Fixtures for the in-process HTTP suite; they live in :mod:`http_helpers` (see its docstring)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_helpers import BACKEND_ENV, _test_loop, anyio_backend, api, app, backend, client, graph, make_api, make_app, template_db, token  # noqa: F401
from pg_helpers import ENV as PG_ENV


@pytest.fixture(autouse=True, scope="session")
def _no_real_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default database lives under ``$XDG_DATA_HOME``: point it (for this process and every
    ``graphdir`` subprocess) at a temporary directory, so no test touches the real home."""
    home = tmp_path_factory.mktemp("xdg-data-home")
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = old


def pytest_configure(config: pytest.Config) -> None:
    """``GRAPHDIR_TEST_BACKEND=postgresql`` needs the run's PostgreSQL database: refuse to start without it
    (rather than skipping the whole HTTP suite)."""
    if backend() == "postgresql" and not os.environ.get(PG_ENV):
        raise pytest.UsageError(f"{BACKEND_ENV}=postgresql needs {PG_ENV} (a database URL; scripts/pg-up.sh makes one)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, run only the tests that use the HTTP suite's app (their fixtures need ``template_db``):
    the others do not depend on ``GRAPHDIR_TEST_BACKEND`` and already ran in the SQLite run."""
    if backend() != "postgresql":
        return
    keep = [item for item in items if "template_db" in getattr(item, "fixturenames", ())]
    dropped = [item for item in items if "template_db" not in getattr(item, "fixturenames", ())]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> str:
    return f"HTTP suite backend: {backend()} ({BACKEND_ENV})"
