"""One writer thread with group commit.

Requests queue a write function; the writer takes everything queued (up to
``batch_max``), runs each function under its own SAVEPOINT inside one
transaction, commits once (one fsync for the whole batch) and only then
settles the callers' futures: a ``2xx`` is never sent before its commit.
A function that raises is rolled back to its savepoint alone; the others in
the batch still commit. (perf-notes.md §4: group commit, checkpoints off the
write path.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from graphdir.store.base import Unavailable

log = logging.getLogger("graphdir.writer")

C = TypeVar("C")  # the backend's transaction context


class Backend(Protocol[C]):
    """What a database gives the writer: a connection lifecycle and transaction verbs."""

    def connect(self) -> None: ...
    def begin(self) -> None: ...
    def savepoint(self) -> None: ...
    def release(self) -> None: ...
    def rollback_to(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def in_transaction(self) -> bool: ...
    def make_txn(self, tenant_id: str) -> C: ...
    def finish_txn(self, txn: C) -> None: ...
    def close(self) -> None: ...


_Item = tuple[str, Callable[[Any], Any], Callable[[bool, Any], None], bool]
_STOP = object()


class Writer(Generic[C]):
    def __init__(self, backend: Backend[C], batch_max: int = 512) -> None:
        self._backend = backend
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="graphdir-writer", daemon=True)
        self._started = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._pending: dict[asyncio.AbstractEventLoop, list[_Item]] = {}

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        for loop in list(self._pending):
            self._hand_over(loop)
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    # -- submitting ------------------------------------------------------
    def submit(self, tenant_id: str, fn: Callable[[C], Any], atomic: bool = False) -> asyncio.Future[Any]:
        """Queue ``fn``; the returned future settles after the commit.

        ``atomic=True`` promises that ``fn`` makes at most one change and raises only before it,
        so it needs no savepoint of its own (two statements fewer on the hot membership paths).
        """
        if self._closed:
            raise Unavailable("the store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if fut.cancelled():
                return
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

        item = (tenant_id, fn, _LoopSettler(loop, settle), atomic)
        pending = self._pending.get(loop)
        if pending is None:
            # hand this loop iteration's writes over together: one wake-up of the writer, bigger batches
            pending = self._pending[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append(item)
        return fut

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        items = self._pending.pop(loop, None)
        if items:
            self._queue.put(items)

    def submit_sync(self, tenant_id: str, fn: Callable[[C], Any]) -> Any:
        if self._closed:
            raise Unavailable("the store is closed")
        cf: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def settle(ok: bool, value: Any) -> None:
            if ok:
                cf.set_result(value)
            else:
                cf.set_exception(value)

        self._queue.put([(tenant_id, fn, settle, False)])
        return cf.result()

    # -- the writer thread -----------------------------------------------
    def _run(self) -> None:
        b = self._backend
        try:
            b.connect()
        except BaseException as exc:  # pragma: no cover - start-up failure
            self._error = exc
            self._started.set()
            return
        self._started.set()
        stop = False
        carry: list[_Item] = []
        limit = max(1, self._batch_max)
        while not stop or carry:
            if carry:
                batch, carry = carry, []
            else:
                first = self._queue.get()
                if first is _STOP:
                    break
                batch = list(first)
            while len(batch) < limit and not stop:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.extend(nxt)
            if len(batch) > limit:
                batch, carry = batch[:limit], batch[limit:]
            self._run_batch(batch)
        b.close()

    def _run_batch(self, batch: list[_Item]) -> None:
        b = self._backend
        results: list[tuple[bool, Any]] = []
        try:
            b.begin()
            for tenant_id, fn, _, atomic in batch:
                if not atomic:
                    b.savepoint()
                txn = b.make_txn(tenant_id)
                try:
                    value = fn(txn)
                    b.finish_txn(txn)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    if not atomic:
                        b.rollback_to()
                    elif not b.in_transaction():
                        raise  # the database rolled the whole transaction back (disk full, I/O error…)
                    results.append((False, exc))
                else:
                    if not atomic:
                        b.release()
                    results.append((True, value))
            b.commit()
        except BaseException as exc:  # the whole transaction failed: nothing committed
            log.exception("write batch failed")
            try:
                b.rollback()
            except BaseException:  # pragma: no cover
                pass
            err = Unavailable(f"the write could not be committed: {exc}")
            results = [(False, err)] * len(batch)
        _settle_all([(item[2], ok, value) for item, (ok, value) in zip(batch, results, strict=True)])


class _LoopSettler:
    __slots__ = ("loop", "settle")

    def __init__(self, loop: asyncio.AbstractEventLoop, settle: Callable[[bool, Any], None]) -> None:
        self.loop = loop
        self.settle = settle

    def __call__(self, ok: bool, value: Any) -> None:
        """Settle directly (on the loop's own thread); ``_settle_all`` batches them per loop instead."""
        self.settle(ok, value)


def _settle_all(items: list[tuple[Callable[[bool, Any], None], bool, Any]]) -> None:
    """Settle futures: one ``call_soon_threadsafe`` per event loop per batch."""
    per_loop: dict[asyncio.AbstractEventLoop, list[tuple[Callable[[bool, Any], None], bool, Any]]] = {}
    for settle, ok, value in items:
        if isinstance(settle, _LoopSettler):
            per_loop.setdefault(settle.loop, []).append((settle.settle, ok, value))
        else:
            settle(ok, value)
    for loop, group in per_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_group, group)
        except RuntimeError:  # pragma: no cover - loop closed
            pass


def _settle_group(group: list[tuple[Callable[[bool, Any], None], bool, Any]]) -> None:
    for settle, ok, value in group:
        settle(ok, value)
