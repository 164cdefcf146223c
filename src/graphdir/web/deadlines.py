"""The body-read deadline: a request must deliver its whole body within ``body_read_timeout`` seconds.

granian (hyper) bounds the wait for a request's head (``header_read_timeout``) but not for its
body, so a client that sends headers with ``Content-Length: 100`` and then one byte would hold a
request, and its connection, for ever. The deadline costs the hot path one dict insert and one
pop per body read: a single watcher task, started with the application, looks at the reads in
progress a few times per timeout and cancels the ones past their deadline; the cancelled read
becomes a Graph-shaped ``408`` (docs/behaviour.md#connection-limits). No timer, task or thread
per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, Callable


class BodyTimeout(Exception):
    """The body was not complete by its deadline."""


class BodyDeadlines:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        #: task reading a body → its deadline (``time.monotonic()``)
        self._reads: dict[asyncio.Task[object], float] = {}
        #: tasks the watcher cancelled, whose cancellation must become a 408
        self._expired: set[asyncio.Task[object]] = set()
        self._watcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the watcher on the running loop (the application's lifespan)."""
        if self._watcher is None and self.timeout > 0:
            self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="graphdir-body-deadlines")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def _watch(self) -> None:
        period = min(1.0, max(0.05, self.timeout / 4))  # a read is cut between timeout and timeout + period
        while True:
            await asyncio.sleep(period)
            if self._reads:
                self.expire(time.monotonic())

    def expire(self, now: float) -> int:
        """Cancel the reads past their deadline; how many."""
        late = [task for task, deadline in self._reads.items() if deadline <= now]
        for task in late:
            del self._reads[task]
            self._expired.add(task)
            task.cancel()
        return len(late)

    async def read(self, chunks: AsyncIterable[bytes], limit: int, too_large: Callable[[], Exception]) -> bytes:
        """Join the body's chunks, raising ``too_large()`` past ``limit`` bytes and :class:`BodyTimeout`
        when the watcher cut the read."""
        task = asyncio.current_task()
        if task is None or self._watcher is None:  # no loop task (tests' direct calls) or no watcher: no deadline
            return await _join(chunks, limit, too_large)
        self._reads[task] = time.monotonic() + self.timeout
        try:
            return await _join(chunks, limit, too_large)
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # someone else's cancellation (shutdown, disconnect): not ours to swallow
            task.uncancel()
            raise BodyTimeout() from None
        finally:
            self._reads.pop(task, None)
            self._expired.discard(task)


async def _join(chunks: AsyncIterable[bytes], limit: int, too_large: Callable[[], Exception]) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large()
        parts.append(chunk)
    return b"".join(parts)
