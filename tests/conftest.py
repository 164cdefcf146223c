"""Fixtures for the in-process HTTP suite; they live in :mod:`http_helpers` (see its docstring)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_helpers import anyio_backend, api, app, client, graph, make_api, make_app, template_db, token  # noqa: F401


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
