"""Run the ASGI app under granian with the connection limits of the settings (docs/configuration.md#connections).

* One listening address per service: :func:`check_address` refuses a ``HOST:PORT`` another process
  listens on. granian binds with ``SO_REUSEPORT``, so without this check a second ``graphdir serve``
  on a busy port would start and the kernel would share the connections between the two.
* HTTP/1.1 only: granian's automatic HTTP/1-or-2 detection waits for a connection's first bytes
  with no timeout at all, so a client that connects and sends nothing held a connection for ever
  (and, ``max_connections`` of them, the whole server). In HTTP/1 mode hyper's header-read timer
  runs from the moment the connection opens.
* ``header_read_timeout`` (idle and header read), ``max_connections`` (granian's ``backpressure``)
  and ``listen_backlog`` go to granian; the body-read deadline is the app's
  (:mod:`graphdir.web.deadlines`).
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
from pathlib import Path

from graphdir.settings import Settings

log = logging.getLogger("graphdir")

#: file descriptors kept for the database, its WAL, the log and the like, beyond one per connection
_SPARE_FDS = 256


class AddressInUse(Exception):
    """Another process listens on the address ``graphdir serve`` was asked to use."""

    def __init__(self, host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        super().__init__(f"address already in use: {shown}:{port}")


def check_address(host: str, port: int) -> None:
    """Raise :class:`AddressInUse` when a socket listens on ``host:port``.

    The probe binds with ``SO_REUSEADDR`` and without ``SO_REUSEPORT``: it succeeds past connections
    in ``TIME_WAIT`` (a restart right after a stop works) and fails against any listener, a
    granian one included. Two servers started at the same instant can both pass it; the window is
    the time granian takes to bind after the check.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AddressInUse(host, port) from None
            raise


def _raise_fd_limit(wanted: int) -> None:
    """Raise the soft limit on open files towards ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("open-file limit %d is below max_connections + %d: connections beyond it will be refused", soft, _SPARE_FDS)


def run(settings: Settings, ssl_cert: Path | None = None, ssl_key: Path | None = None) -> None:
    """Serve ``graphdir.asgi:create_app`` until interrupted; :class:`AddressInUse` if the port is taken."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, SSLProtocols
    from granian.http import HTTP1Settings

    check_address(settings.host, settings.port)
    _raise_fd_limit(settings.max_connections * settings.workers + _SPARE_FDS)
    ssl = {"ssl_cert": ssl_cert, "ssl_key": ssl_key, "ssl_protocol_min": SSLProtocols.tls12} if ssl_cert and ssl_key else {}
    Granian(
        "graphdir.asgi:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        factory=True,
        log_level="warning",  # type: ignore[arg-type]
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=max(1, round(settings.header_read_timeout * 1000))),
        backlog=settings.listen_backlog,
        backpressure=settings.max_connections,
        # stop within seconds even when clients keep connections open (granian would wait for them)
        workers_kill_timeout=5,
        **ssl,  # type: ignore[arg-type]
    ).serve()
