"""Graph's response framing: headers on every response and the one place errors are rendered.

docs/behaviour.md#response-headers (headers: ``request-id``, echoed ``client-request-id``,
``OData-Version``, ``Cache-Control``), docs/behaviour.md#error-body (the error body, with ``innerError``
``date``/``request-id``/``client-request-id``).
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from graphdir.errors import GraphError

ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def _id_prefix() -> str:
    """The first 24 characters of this process's request ids: random, version-4 and variant bits set."""
    h = f"{uuid.uuid4().int:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-"


_ID_PREFIX = _id_prefix()
_counter = itertools.count(random.getrandbits(40))


def request_ids(headers: Mapping[str, str]) -> tuple[str, str]:
    """``request-id`` is ours; ``client-request-id`` echoes the caller's or equals ``request-id``.

    A request id is GUID-shaped and unique, not unguessable: a per-process random prefix and a
    counter (``uuid4()`` would cost a ``getrandom`` syscall per request).
    """
    rid = f"{_ID_PREFIX}{next(_counter) & 0xFFFFFFFFFFFF:012x}"
    cid = headers.get("client-request-id") or rid
    return rid, cid


_FIXED = [(b"odata-version", b"4.0"), (b"cache-control", b"no-cache")]
_ODATA_JSON = ODATA_JSON.encode()


class GraphResponse:
    """A finished response: status, raw headers and body, sent in two ASGI messages.

    Lighter than a framework response object: every Graph request builds exactly one.
    """

    __slots__ = ("status_code", "raw_headers", "body")

    def __init__(self, status: int, body: bytes, rid: str, cid: str, content_type: bytes | None, extra: Mapping[str, str] | None = None) -> None:
        headers = [(b"request-id", rid.encode()), (b"client-request-id", cid.encode()), *_FIXED]
        if extra:
            headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        if content_type is not None:
            headers.append((b"content-type", content_type))
        if status != 204:
            headers.append((b"content-length", str(len(body)).encode()))
        self.status_code = status
        self.raw_headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


def json_response(data: Any, rid: str, cid: str, status: int = 200, extra: Mapping[str, str] | None = None) -> GraphResponse:
    return GraphResponse(status, orjson.dumps(data), rid, cid, _ODATA_JSON, extra)


def text_response(text: str, rid: str, cid: str) -> GraphResponse:
    return GraphResponse(200, text.encode(), rid, cid, b"text/plain; charset=utf-8")


def no_content(rid: str, cid: str) -> GraphResponse:
    return GraphResponse(204, b"", rid, cid, None)


def error_response(err: GraphError, rid: str, cid: str) -> GraphResponse:
    """The only place a :class:`GraphError` becomes Graph's error JSON."""
    body = {
        "error": {
            "code": err.code,
            "message": err.message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": rid,
                "client-request-id": cid,
            },
        }
    }
    return GraphResponse(err.status, orjson.dumps(body), rid, cid, b"application/json", err.headers)
