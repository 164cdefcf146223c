"""Bench-only ASGI factory: graphdir's own app behind a thin front that adds three bench paths.

With ``GRAPHDIR_BENCH_NOOP=1``:

* ``/bench/noop/{anything}`` (any method) answers 204 with no body and touches nothing else: the
  stack's ceiling — the same granian process and settings, an ASGI dispatch on the path, a Starlette
  ``Response`` (two ASGI messages, as graphdir's own ``GraphResponse`` sends) — measured with the same wrk script,
  paths and headers as the real remove-member requests;
* ``/bench/sqlread/{anything}`` does the same after one SQLite point read on the event loop (a
  diagnostic: what a read costs on this stack);
* ``/bench/starlette/v1.0/groups/{gid}/members/{mid}/$ref`` answers 204 through a Starlette app and
  its router (path parameters, ``Request``): the "granian + Starlette" ceiling of
  bench/README.md#design-measurements, the reference against which the issue's durable prototype reached 54 %. A
  second ceiling, for context only: graphdir's hot path does not go through Starlette.

Every other request goes to graphdir's app unchanged (one extra ``startswith`` per request).
Never used outside bench/.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from graphdir.asgi import create_app as graphdir_create_app

_local = threading.local()


def _sqlread() -> None:
    conn = getattr(_local, "conn", None)
    if conn is None:
        path = os.environ["GRAPHDIR_DATABASE_URL"][len("sqlite:///") :]
        conn = _local.conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("SELECT 1 FROM meta WHERE key=?", ("default_tenant",)).fetchall()


async def _starlette_noop(request: Request) -> Response:
    request.path_params["gid"], request.path_params["mid"]  # noqa: B018 - a real handler reads its parameters
    return Response(status_code=204)


_STARLETTE = Starlette(routes=[Route("/bench/starlette/v1.0/groups/{gid}/members/{mid}/$ref", _starlette_noop, methods=["DELETE"])])


class BenchFront:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = getattr(app, "state", None)  # profile_app reaches graphdir through app.state.graph

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bench/"):
            path = scope["path"]
            if path.startswith("/bench/noop/"):
                await Response(status_code=204)(scope, receive, send)
                return
            if path.startswith("/bench/starlette/"):
                await _STARLETTE(scope, receive, send)
                return
            if path.startswith("/bench/sqlread/"):
                _sqlread()
                await Response(status_code=204)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app() -> Any:
    app = graphdir_create_app()
    if os.environ.get("GRAPHDIR_BENCH_NOOP") == "1":
        return BenchFront(app)
    return app
