"""The request as Graph handlers see it: method, decoded path, headers, query and body from the ASGI scope.

Lighter than a framework request: every ``/v1.0`` and ``/beta`` request builds exactly one, so it
reads the scope once and decodes the query string only when a handler asks for it. Header names
arrive lower-cased (ASGI); the first occurrence of a repeated header wins and the last of a
repeated query parameter, as with Starlette.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope


class GraphRequest:
    __slots__ = ("scope", "receive", "method", "path", "headers", "_query")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        #: the decoded path (``raw_path`` would keep %-escapes; nextLinks re-quote this one)
        self.path: str = scope["path"]
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1")
            if name not in headers:
                headers[name] = value.decode("latin-1")
        self.headers = headers
        self._query: list[tuple[str, str]] | None = None

    @property
    def query_items(self) -> list[tuple[str, str]]:
        """Query parameters in order, ``+`` and %-escapes decoded, blank values kept."""
        if self._query is None:
            raw: bytes = self.scope.get("query_string", b"")
            self._query = parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if raw else []
        return self._query

    def query(self, name: str) -> str | None:
        """The value of a query parameter (the last one when repeated, as Starlette's ``QueryParams``), or None."""
        found = None
        for key, value in self.query_items:
            if key == name:
                found = value
        return found

    async def stream(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive; :class:`ClientDisconnect` if the client goes away first
        (a truncated body must never be taken for the whole one)."""
        while True:
            message = await self.receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()


class ClientDisconnect(Exception):
    """The client disconnected before its request body was complete."""
