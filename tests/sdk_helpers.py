"""Helpers shared by the suites that drive graphdir with the official SDKs."""

from __future__ import annotations

from typing import Any


async def close_sdk_client(client: Any) -> None:
    """Close the httpx client inside an SDK's request adapter, and the transport it wraps.

    msgraph_core's ``AsyncGraphTransport`` has no ``aclose`` of its own, so closing the httpx
    client leaves the pooled connections of the transport it wraps open (and a ResourceWarning
    in whichever later test the garbage collector happens to run).
    """
    http = client.request_adapter._http_client
    await http.aclose()
    inner = getattr(http._transport, "transport", None)
    if inner is not None:
        await inner.aclose()
