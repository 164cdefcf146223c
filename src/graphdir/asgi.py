"""ASGI entry point for servers: ``graphdir.asgi:create_app`` (factory) reads settings from the environment."""

from __future__ import annotations

from starlette.applications import Starlette

from graphdir.settings import load_settings
from graphdir.web.app import build_app


def create_app() -> Starlette:
    return build_app(load_settings())
