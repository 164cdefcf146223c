"""The connection limits in process: URI and header limits through the real app, the body-read
deadline's watcher, the busy-port probe and what ``graphdir.serving.run`` hands granian.

The same behaviours against a live server: tests/test_live_connections.py.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette

from graphdir import cli, serving
from graphdir.settings import load_settings
from graphdir.web.deadlines import BodyDeadlines, BodyTimeout
from http_helpers import BASE_URL

pytestmark = pytest.mark.anyio


# -- URI and header limits (the front door: every route) ----------------------------------------
@pytest.mark.parametrize("path", ["/v1.0/users", "/beta/groups", "/common/oauth2/v2.0/token", "/nowhere"])
async def test_uri_and_header_limits_answer_graph_json_on_every_route(make_app: Callable[..., Starlette], path: str) -> None:
    app = make_app(max_uri_bytes=200, max_header_bytes=1000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        long_uri = await c.get(path, params={"q": "x" * 200}, headers={"client-request-id": "mine"})
        big_headers = await c.get(path, headers={"X-Padding": "p" * 1000})
        huge_cid = await c.get(path, headers={"client-request-id": "c" * 1000})
        fine = await c.get(path, params={"q": "x" * 50})
    assert long_uri.status_code == 414
    assert long_uri.headers["content-type"] == "application/json"
    assert long_uri.headers["connection"] == "close"
    assert long_uri.json()["error"]["message"] == "The request URI is longer than the maximum of 200 bytes."
    assert long_uri.json()["error"]["innerError"]["client-request-id"] == "mine"
    assert big_headers.status_code == 431
    assert big_headers.json()["error"] == {"code": "BadRequest", "message": "The request headers are larger than the maximum of 1000 bytes.",
                                           "innerError": big_headers.json()["error"]["innerError"]}  # fmt: skip
    assert huge_cid.status_code == 431
    assert huge_cid.headers["client-request-id"] == huge_cid.headers["request-id"]  # the oversized id is not echoed
    assert fine.status_code not in (414, 431)


# -- the body-read deadline ---------------------------------------------------------------------
async def _stalled(first: bytes, forever: asyncio.Event) -> AsyncIterator[bytes]:
    yield first
    await forever.wait()
    yield b"never"  # pragma: no cover - the event is never set


async def test_the_watcher_cuts_a_stalled_body_read() -> None:
    deadlines = BodyDeadlines(0.1)
    deadlines.start()
    forever = asyncio.Event()
    try:
        with pytest.raises(BodyTimeout):
            await deadlines.read(_stalled(b"{", forever), 100, lambda: ValueError("too large"))
        assert await deadlines.read(_chunks(b"ab", b"cd"), 100, lambda: ValueError("too large")) == b"abcd"
        with pytest.raises(ValueError, match="too large"):
            await deadlines.read(_chunks(b"ab", b"cd"), 3, lambda: ValueError("too large"))
        assert not deadlines._reads and not deadlines._expired  # nothing left behind
    finally:
        await deadlines.stop()
    await deadlines.stop()  # idempotent


async def test_a_cancellation_that_is_not_the_watchers_passes_through() -> None:
    deadlines = BodyDeadlines(60)
    deadlines.start()
    forever = asyncio.Event()
    try:
        task = asyncio.get_running_loop().create_task(deadlines.read(_stalled(b"{", forever), 100, lambda: ValueError()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert deadlines.expire(float("inf")) == 0  # the read unregistered itself
    finally:
        await deadlines.stop()


async def test_without_a_watcher_there_is_no_deadline() -> None:
    deadlines = BodyDeadlines(0)  # 0 = off: start() starts nothing
    deadlines.start()
    assert deadlines._watcher is None
    assert await deadlines.read(_chunks(b"x"), 10, lambda: ValueError()) == b"x"


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_stalled_body_gets_a_graph_408_through_the_app(make_app: Callable[..., Starlette]) -> None:
    from http_helpers import token_factory

    front = make_app(body_read_timeout=0.1)
    graph = front.state.graph
    bearer = token_factory(graph)()
    graph.deadlines.start()
    forever = asyncio.Event()
    sent: list[dict[str, Any]] = []
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b'{"displayName"', "more_body": True}
        await forever.wait()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1.0/groups", "raw_path": b"/v1.0/groups", "query_string": b"", "scheme": "http",
             "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {bearer}".encode()), (b"content-type", b"application/json")]}  # fmt: skip
    try:
        await front(scope, receive, send)  # type: ignore[operator]
    finally:
        await graph.deadlines.stop()
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert b'"code":"RequestTimeout"' in sent[1]["body"]


# -- the busy-port probe and granian's settings -------------------------------------------------
def test_check_address_refuses_a_listening_port_and_accepts_a_free_one() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(serving.AddressInUse, match=f"^address already in use: 127.0.0.1:{port}$"):
            serving.check_address("127.0.0.1", port)
    serving.check_address("127.0.0.1", port)  # closed: free again
    assert str(serving.AddressInUse("::1", 80)) == "address already in use: [::1]:80"


def test_check_address_reports_other_bind_errors_as_they_are() -> None:
    with pytest.raises(OSError) as caught:
        serving.check_address("192.0.2.1", 8080)  # TEST-NET-1: not an address of this host
    assert caught.value.errno == errno.EADDRNOTAVAIL


def test_run_hands_granian_the_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import granian

    seen: dict[str, Any] = {}

    class FakeGranian:
        def __init__(self, target: str, **kwargs: Any) -> None:
            seen.update(kwargs, target=target)

        def serve(self) -> None:
            seen["served"] = True

    monkeypatch.setattr(granian, "Granian", FakeGranian)
    settings = load_settings(env={}, port=_free_port(), header_read_timeout=2.5, max_connections=300, listen_backlog=512)
    serving.run(settings, ssl_cert=tmp_path / "c.pem", ssl_key=tmp_path / "k.pem")
    from granian.constants import HTTPModes

    assert seen["served"] and seen["target"] == "graphdir.asgi:create_app"
    assert seen["http"] == HTTPModes.http1  # auto-detection waits for a first byte with no timeout
    assert seen["http1_settings"].header_read_timeout == 2500
    assert (seen["backpressure"], seen["backlog"]) == (300, 512)
    assert seen["ssl_cert"] == tmp_path / "c.pem"


def test_the_open_file_limit_is_raised_towards_the_connection_limit(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    limits = {"now": (1024, 4096)}
    monkeypatch.setattr(resource, "getrlimit", lambda _: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda _, value: limits.update(now=value))
    serving._raise_fd_limit(2000)
    assert limits["now"] == (2000, 4096)
    serving._raise_fd_limit(10_000)  # capped by the hard limit, with a warning
    assert limits["now"] == (4096, 4096)
    assert "open-file limit 4096" in caplog.text


@pytest.fixture
def serve_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` exports its settings to the environment for granian's workers: undo that after the test."""
    for name in ("HOST", "PORT", "DATABASE_URL", "WORKERS", "CONFIG"):
        monkeypatch.delenv(f"GRAPHDIR_{name}", raising=False)


@pytest.mark.usefixtures("serve_env")
def test_serve_on_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = CliRunner().invoke(cli.main, ["serve", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'g.db'}"])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: address already in use: 127.0.0.1:{port}"
    assert not (tmp_path / "g.db").exists()  # refused before anything was created


@pytest.mark.usefixtures("serve_env")
def test_serve_reports_a_port_taken_between_the_banner_and_the_bind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def taken(settings: Any, **_: Any) -> None:
        raise serving.AddressInUse(settings.host, settings.port)

    monkeypatch.setattr(serving, "run", taken)
    port = _free_port()
    result = CliRunner().invoke(cli.main, ["serve", "--port", str(port), "--db", f"sqlite:///{tmp_path / 'g.db'}"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == f"Error: address already in use: 127.0.0.1:{port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
