"""ASGI entry point for servers: ``graphdir.asgi:create_app`` (factory) reads settings from the environment."""

from __future__ import annotations

from graphdir.settings import load_settings
from graphdir.web.app import FrontDoor, build_app


def create_app() -> FrontDoor:
    return build_app(load_settings())
