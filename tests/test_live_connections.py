"""Connections against a live ``graphdir serve`` (issue 9, Service): idle floods, busy ports, HTTP-layer errors.

One server for the module, started with small timeouts (``header_read_timeout`` and
``body_read_timeout`` of 4 s) so the server's own closing of idle sockets can be waited for.
No test measures time: the waits are generous bounds for an event (a response, a close).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from live_helpers import LiveServer, free_port, server_env, start

#: more sockets than granian's default connection limit (backlog 1024 / 1 worker) admits at once
FLOOD_IDLE, FLOOD_HALF_HEAD, FLOOD_HALF_BODY = 700, 250, 250
WAIT = 60.0  # generous bound for the server to close what it should close


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="graphdir-live-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def live(workdir: Path) -> Iterator[LiveServer]:
    env = server_env(workdir, header_read_timeout="4", body_read_timeout="4", max_uri_bytes="8192", max_header_bytes="32768")
    server = start(workdir, free_port(), env)
    try:
        yield server
    finally:
        server.stop()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def _head(method: str, path: str, token: str, extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n{extra}\r\n".encode()


def _read_until_closed(socks: dict[socket.socket, bytearray], timeout: float) -> set[socket.socket]:
    """Read every socket until the server closes it (EOF or reset); the ones still open at ``timeout``."""
    sel = selectors.DefaultSelector()
    try:
        for sock in socks:
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ)
        open_ = set(socks)
        deadline = time.monotonic() + timeout
        while open_ and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionError:
                    data = b""
                if data:
                    socks[sock] += data
                else:
                    sel.unregister(sock)
                    open_.discard(sock)
        return open_
    finally:
        sel.close()


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))


def _graph_json(raw: bytes, status: int) -> dict[str, object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), lines[0]
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["innerError"]["request-id"] == headers["request-id"]
    assert isinstance(error, dict)
    return error


def test_a_flood_of_idle_and_half_sent_connections_does_not_lock_out_clients(live: LiveServer) -> None:
    """Idle sockets, half-sent heads and half-sent bodies, more than granian's default limit: a real
    request still gets 200, and the server closes every one of them (the half-sent bodies after a 408)."""
    _raise_fd_limit(FLOOD_IDLE + FLOOD_HALF_HEAD + FLOOD_HALF_BODY + 256)
    idle: dict[socket.socket, bytearray] = {}
    half_head: dict[socket.socket, bytearray] = {}
    half_body: dict[socket.socket, bytearray] = {}
    try:
        for _ in range(FLOOD_IDLE):
            idle[_connect(live.port)] = bytearray()
        for _ in range(FLOOD_HALF_HEAD):
            sock = _connect(live.port)
            sock.sendall(b"GET /v1.0/users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ")
            half_head[sock] = bytearray()
        body_head = _head("POST", "/v1.0/groups", live.token, "Content-Type: application/json\r\nContent-Length: 200\r\n")
        for _ in range(FLOOD_HALF_BODY):
            sock = _connect(live.port)
            sock.sendall(body_head + b'{"displayName": ')
            half_body[sock] = bytearray()

        with httpx.Client(base_url=f"http://127.0.0.1:{live.port}", timeout=30) as client:  # while the flood is held
            r = client.get("/v1.0/users", headers={"Authorization": f"Bearer {live.token}"})
        assert r.status_code == 200, r.text
        assert "value" in r.json()

        everything = {**idle, **half_head, **half_body}
        still_open = _read_until_closed(everything, WAIT)
        assert not still_open, f"{len(still_open)} of {len(everything)} flood connections were never closed by the server"
        assert all(not everything[s] for s in idle), "an idle connection got bytes"
        assert all(not everything[s] for s in half_head), "a half-sent head got an answer"
        for sock in half_body:
            error = _graph_json(bytes(everything[sock]), 408)
            assert error["code"] == "RequestTimeout"
    finally:
        for sock in [*idle, *half_head, *half_body]:
            sock.close()


def test_an_idle_keep_alive_connection_is_closed(live: LiveServer) -> None:
    with _connect(live.port) as sock:
        sock.sendall(_head("GET", "/v1.0/users", live.token))
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        assert not _read_until_closed({sock: bytearray()}, WAIT)


def test_a_body_that_never_completes_gets_a_graph_408_and_the_connection_closes(live: LiveServer) -> None:
    with _connect(live.port) as sock:
        sock.sendall(_head("PATCH", "/v1.0/groups/00000000-0000-0000-0000-000000000000", live.token,
                           "Content-Type: application/json\r\nContent-Length: 50\r\nclient-request-id: slow-body\r\n") + b"{")  # fmt: skip
        received = {sock: bytearray()}
        assert not _read_until_closed(received, WAIT)
    error = _graph_json(bytes(received[sock]), 408)
    assert error == {"code": "RequestTimeout", "message": "The request body was not received in time.", "innerError": error["innerError"]}
    assert error["innerError"]["client-request-id"] == "slow-body"  # type: ignore[index]


def test_a_complete_body_after_a_pause_shorter_than_the_timeout_is_served(live: LiveServer) -> None:
    body = b'{"displayName": "slow but fine", "mailNickname": "slowfine", "mailEnabled": false, "securityEnabled": true}'
    with _connect(live.port) as sock:
        sock.sendall(_head("POST", "/v1.0/groups", live.token, f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"))
        sock.sendall(body[:10])
        time.sleep(0.5)
        sock.sendall(body[10:])
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]


def test_a_second_serve_on_a_busy_port_refuses_to_start(live: LiveServer, tmp_path: Path) -> None:
    env = server_env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "graphdir", "serve", "--host", "127.0.0.1", "--port", str(live.port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("a second graphdir serve started on a port already in use")
    assert proc.returncode != 0
    assert err.strip().splitlines() == [f"Error: address already in use: 127.0.0.1:{live.port}"]
    assert "Traceback" not in out + err
    assert "token:" not in out  # refused before the banner: nothing suggests it serves
    with httpx.Client(base_url=f"http://127.0.0.1:{live.port}", timeout=30) as client:  # the first one still serves, alone
        assert client.get("/v1.0/users", headers={"Authorization": f"Bearer {live.token}"}).status_code == 200


def test_a_uri_longer_than_the_limit_gets_a_graph_414(live: LiveServer) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{live.port}", timeout=30) as client:
        r = client.get("/v1.0/users", params={"$filter": "displayName eq '" + "x" * 9000 + "'"},
                       headers={"Authorization": f"Bearer {live.token}", "client-request-id": "long-uri"})  # fmt: skip
    assert r.status_code == 414
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["message"] == "The request URI is longer than the maximum of 8192 bytes."
    assert error["innerError"]["client-request-id"] == "long-uri"
    assert error["innerError"]["request-id"] == r.headers["request-id"]


def test_headers_larger_than_the_limit_get_a_graph_431(live: LiveServer) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{live.port}", timeout=30) as client:
        r = client.get("/v1.0/users", headers={"Authorization": f"Bearer {live.token}", "X-Padding": "p" * 40000})
    assert r.status_code == 431
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["message"] == "The request headers are larger than the maximum of 32768 bytes."
    assert error["innerError"]["request-id"] == r.headers["request-id"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),  # malformed request line
        (b"GET /v1.0/users HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),  # malformed header
        (b"GET /v1.0/users HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),  # > 100 headers
    ],
)
def test_what_granian_answers_itself_stays_empty_bodied(live: LiveServer, raw: bytes, status: int) -> None:
    """Requests hyper cannot parse never reach the app: an empty-bodied answer and a close
    (docs/behaviour.md#http-layer-errors). This pins the documented behaviour."""
    with _connect(live.port) as sock:
        sock.sendall(raw)
        received = {sock: bytearray()}
        assert not _read_until_closed(received, WAIT)
    head, _, body = bytes(received[sock]).partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"content-length: 0" in head.lower()
    assert body == b""


def test_over_tls_idle_connections_are_closed_too(tmp_path: Path) -> None:
    """With TLS, after the handshake as before it: granian's HTTP/1-or-2 detection used to wait for
    the first request bytes for ever. ALPN offers HTTP/1.1 only."""
    server = start(tmp_path, free_port(), server_env(tmp_path, header_read_timeout="4"), "--tls")
    try:
        ca = next(line.split()[2] for line in server.lines if line.startswith("CA file:"))
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2", "http/1.1"])
        with _connect(server.port) as raw, context.wrap_socket(_connect(server.port), server_hostname="127.0.0.1") as tls:
            # raw never starts a handshake
            assert tls.selected_alpn_protocol() == "http/1.1"
            try:
                tls.settimeout(WAIT)
                assert tls.recv(65536) == b""  # closed by the server, nothing sent
            except (ConnectionError, ssl.SSLEOFError):
                pass
            assert not _read_until_closed({raw: bytearray()}, WAIT)
    finally:
        server.stop()
