"""Bench-only ASGI factory: graphdir's own app, plus (when ``GRAPHDIR_BENCH_NOOP=1``) one trivial route.

``DELETE|GET|POST /bench/noop/{anything}`` answers 204 with no body and touches nothing else: it is
the stack's ceiling (granian + Starlette + this process, same settings, same worker), measured with the
same wrk script and paths as the real remove-member requests. The route is inserted ahead of graphdir's
catch-all routes; graphdir's own request path is unchanged (its requests see one extra non-matching
route, a sub-microsecond regex test). Never used outside bench/.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from graphdir.asgi import create_app as graphdir_create_app


async def noop(request: Request) -> Response:
    return Response(status_code=204)


_local = threading.local()


async def sqlread(request: Request) -> Response:
    """Diagnostic: the trivial route plus one SQLite point read on the event loop (as graphdir's reads run)."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = sqlite3.connect(os.environ["GRAPHDIR_DATABASE_URL"][len("sqlite:///"):], check_same_thread=False)
    conn.execute("SELECT 1 FROM meta WHERE key=?", ("default_tenant",)).fetchall()
    return Response(status_code=204)


def create_app() -> Starlette:
    app: Starlette = graphdir_create_app()
    if os.environ.get("GRAPHDIR_BENCH_NOOP") == "1":
        app.router.routes.insert(0, Route("/bench/noop/{path:path}", noop, methods=["GET", "POST", "DELETE"]))
        app.router.routes.insert(1, Route("/bench/sqlread/{path:path}", sqlread, methods=["GET", "POST", "DELETE"]))
    return app
