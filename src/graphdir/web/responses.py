"""Graph's response framing: headers on every response and the one place errors are rendered.

graph-behaviour.md §0.3 (headers: ``request-id``, echoed ``client-request-id``,
``OData-Version``, ``Cache-Control``), §0.4 (the error body, with ``innerError``
``date``/``request-id``/``client-request-id``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

from graphdir.errors import GraphError

ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


_rng = random.Random(uuid.uuid4().int)


def _fast_guid() -> str:
    """A version-4-shaped GUID from a per-process PRNG seeded from ``os.urandom``: request ids need to be
    unique, not unguessable, and ``uuid4()`` costs one ``getrandom`` syscall per request."""
    n = (_rng.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def request_ids(headers: Mapping[str, str]) -> tuple[str, str]:
    """``request-id`` is ours; ``client-request-id`` echoes the caller's or equals ``request-id``."""
    rid = _fast_guid()
    cid = headers.get("client-request-id") or rid
    return rid, cid


def _base_headers(rid: str, cid: str) -> dict[str, str]:
    return {"request-id": rid, "client-request-id": cid, "OData-Version": "4.0", "Cache-Control": "no-cache"}


def json_response(data: Any, rid: str, cid: str, status: int = 200, extra: Mapping[str, str] | None = None) -> Response:
    headers = _base_headers(rid, cid)
    if extra:
        headers.update(extra)
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type=ODATA_JSON)


def text_response(text: str, rid: str, cid: str) -> Response:
    return Response(text, status_code=200, headers=_base_headers(rid, cid), media_type="text/plain")


def no_content(rid: str, cid: str) -> Response:
    return Response(b"", status_code=204, headers=_base_headers(rid, cid))


def error_response(err: GraphError, rid: str, cid: str) -> Response:
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
    headers = _base_headers(rid, cid)
    headers.update(err.headers)
    return Response(orjson.dumps(body), status_code=err.status, headers=headers, media_type="application/json")
