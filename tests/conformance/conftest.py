"""Conformance harness: one live ``graphdir serve`` per session, driven by the official SDKs.

* The server runs as a subprocess (``sys.executable -m graphdir serve``) on a free port with a
  SQLite database in a temporary directory; the fixture waits until the port answers and
  terminates that process (and its own process group) at the end of the session.
* Clients are built exactly as in docs/behaviour.md#credentials-and-tls (see conformance_helpers.make_client).
* The SDKs are async; every test drives them on one session-wide event loop (``run``), so the
  httpx connection pools inside the adapters stay on the loop that created them.
* ``flavour`` is parametrised over ``v1.0`` (``msgraph``) and ``beta`` (``msgraph_beta``).
* ``server`` is parametrised over the backends: the embedded SQLite default (one worker) and
  PostgreSQL with two workers (a fresh database from tests/pg_helpers.py; skipped, saying why, when
  the run has no PostgreSQL), so the whole suite runs once against each.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.register_assert_rewrite("conformance_helpers")

from conformance_helpers import DOMAIN, STARTUP_TIMEOUT, Factory, Flavour, Server, free_port, port_answers, stop_server  # noqa: E402

from pg_helpers import fresh_database  # noqa: E402

T = TypeVar("T")


@pytest.fixture(scope="session", params=["sqlite", "postgresql-2-workers"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "sqlite":
        workdir = Path(tempfile.mkdtemp(prefix="graphdir-conformance-"))
        yield from _serve(workdir, f"sqlite:///{workdir / 'g.db'}")
        return
    with fresh_database() as url:
        yield from _serve(Path(tempfile.mkdtemp(prefix="graphdir-conformance-")), url, "--workers", "2")


def _serve(workdir: Path, db_url: str, *args: str) -> Iterator[Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHDIR_")}
    env["GRAPHDIR_DEFAULT_DOMAIN"] = DOMAIN
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphdir", "serve", "--host", "127.0.0.1", "--port", str(port), "--db", db_url, *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []

    def pump() -> None:  # keep draining stdout so the server never blocks on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        info: dict[str, str] = {}
        while time.monotonic() < deadline:
            for line in list(lines):
                for key in ("base URL:", "tenant id:", "token:"):
                    if line.startswith(key):
                        info[key] = line[len(key) :].strip()
            if len(info) == 3 and port_answers(port):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"graphdir serve exited with {proc.returncode}:\n" + "\n".join(lines))
            time.sleep(0.1)
        else:
            raise RuntimeError(f"graphdir serve did not come up within {STARTUP_TIMEOUT}s:\n" + "\n".join(lines))
        origin = f"http://127.0.0.1:{port}"
        assert info["base URL:"].startswith(f"{origin}/v1.0"), info["base URL:"]
        yield Server(origin=origin, tenant_id=info["tenant id:"], token=info["token:"], db_url=db_url, workdir=workdir, env=env, output=lines)
    finally:
        stop_server(proc)
        pumper.join(timeout=15)  # the pipe ends once every process holding it has exited
        assert proc.stdout is not None
        proc.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def run() -> Iterator[Callable[[Awaitable[T]], T]]:
    loop = asyncio.new_event_loop()

    def _run(awaitable: Awaitable[T]) -> T:
        return loop.run_until_complete(awaitable)

    yield _run
    for flavour in _FLAVOURS.values():  # the adapters' httpx pools live on this loop: close them on it
        loop.run_until_complete(flavour.aclose())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


_FLAVOURS: dict[tuple[str, str], Flavour] = {}


@pytest.fixture(scope="session", params=["v1.0", "beta"])
def flavour(request: pytest.FixtureRequest, server: Server) -> Flavour:
    key = (request.param, server.origin)
    if key not in _FLAVOURS:
        _FLAVOURS[key] = Flavour(request.param, server)
    return _FLAVOURS[key]


@pytest.fixture
def make(flavour: Flavour, run: Callable[[Awaitable[Any]], Any]) -> Factory:
    return Factory(flavour, run)
