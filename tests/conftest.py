"""Fixtures for the in-process HTTP suite; they live in :mod:`http_helpers` (see its docstring)."""

from http_helpers import anyio_backend, api, app, client, graph, make_api, make_app, template_db, token  # noqa: F401
