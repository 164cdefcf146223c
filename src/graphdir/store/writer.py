"""One writer with group commit, pipelined with the event loop.

Requests queue a write function; the writes queued during one turn of the event
loop (up to ``batch_max``) run together in one transaction, each under its own
SAVEPOINT unless it is *atomic* (at most one change, raising only before it).
The write functions run **on the event loop's own thread** — they are a few
microseconds of Python and SQL each, and running them there costs no thread
hand-off or GIL contention per request — while the batch's ``COMMIT`` (the
fsync, ``synchronous=FULL``) runs on a committer thread, which holds no GIL
while SQLite syncs. Meanwhile the loop keeps serving requests and queueing the
next batch. Callers' futures settle only after their batch's COMMIT returned:
a ``2xx`` is never sent before its commit. A function that raises is rolled
back to its savepoint alone; the others in the batch still commit; a batch the
database itself rolls back (disk full, I/O error) fails whole. The loop never
waits for SQLite's write lock: when another process holds it, the batch runs on
the committer thread instead, once the lock is free.

(bench/README.md#design-measurements: group commit, checkpoints off the write path; the thread
hand-offs of a writer *thread* were this design's largest cost, bench/README.md.)
"""

from __future__ import annotations

import asyncio
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
    def begin(self, wait: bool = True) -> bool:
        """BEGIN a write transaction; with ``wait=False`` give up at once (False) when another
        connection holds the database's write lock."""
        ...
    def savepoint(self) -> None: ...
    def release(self) -> None: ...
    def rollback_to(self) -> None: ...
    def end_batch(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def in_transaction(self) -> bool: ...
    def checkpoint(self) -> None: ...
    def make_txn(self, tenant_id: str) -> C: ...
    def finish_txn(self, txn: C) -> None: ...
    def close(self) -> None: ...


#: (tenant id, write function, the caller's future or None for a synchronous caller, atomic)
_Item = tuple[str, Callable[[Any], Any], "asyncio.Future[Any] | None", bool]
_Result = tuple[bool, Any]
_STOP = object()


class _LoopQueue:
    """One event loop's pending writes and whether one of its batches is being committed."""

    __slots__ = ("loop", "items", "scheduled", "inflight")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: list[_Item] = []
        self.scheduled = False
        self.inflight = False


class Writer(Generic[C]):
    def __init__(self, backend: Backend[C], batch_max: int = 512) -> None:
        self._backend = backend
        self._limit = max(1, batch_max)
        #: held from a batch's BEGIN until its COMMIT returned (released by the committer thread)
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._committer = threading.Thread(target=self._commit_loop, name="graphdir-committer", daemon=True)
        self._queues: dict[asyncio.AbstractEventLoop, _LoopQueue] = {}
        self._closed = False
        self._checkpoint = threading.Event()

    def start(self) -> None:
        self._backend.connect()
        self._committer.start()

    def stop(self) -> None:
        """Commit what is still queued (on this thread), wait for the committer, close the connection.

        Batches are taken from a queue only under the lock, so a batch the loop took before is
        committed by the committer first (its job precedes ``_STOP``), and one it would take after
        finds the queue empty."""
        if self._closed:
            return
        self._closed = True
        for q in list(self._queues.values()):
            while True:
                with self._lock:
                    batch = _take(q, self._limit)
                    if not batch:
                        break
                    results = self._run(batch)
                self._settle_anywhere(q, batch, results)
        self._jobs.put(_STOP)
        self._committer.join(timeout=30)
        with self._lock:
            self._backend.close()

    # -- submitting ------------------------------------------------------
    def submit(self, tenant_id: str, fn: Callable[[C], Any], atomic: bool = False) -> asyncio.Future[Any]:
        """Queue ``fn`` for this loop's next batch; the returned future settles after the commit.

        ``atomic=True`` promises that ``fn`` makes at most one change and raises only before it,
        so it needs no savepoint of its own (two statements fewer on the hot membership paths).
        """
        if self._closed:
            raise Unavailable("the store is closed")
        loop = asyncio.get_running_loop()
        q = self._queues.get(loop)
        if q is None:
            q = self._queues[loop] = _LoopQueue(loop)
        fut: asyncio.Future[Any] = loop.create_future()
        q.items.append((tenant_id, fn, fut, atomic))
        if not q.scheduled and not q.inflight:
            # after the callbacks already ready: every write of this loop turn joins the batch
            q.scheduled = True
            loop.call_soon(self._flush, q)
        return fut

    def request_checkpoint(self) -> None:
        """Ask for :meth:`Backend.checkpoint` right after the next COMMIT, under the write lock (any thread)."""
        self._checkpoint.set()

    def submit_sync(self, tenant_id: str, fn: Callable[[C], Any]) -> Any:
        """Run ``fn`` in a transaction of its own on the calling thread (CLI, start-up, token endpoint)."""
        if self._closed:
            raise Unavailable("the store is closed")
        with self._lock:
            ((ok, value),) = self._run([(tenant_id, fn, None, False)])
        if not ok:
            raise value
        return value

    # -- running batches -------------------------------------------------
    def _execute(self, batch: list[_Item], wait: bool = True) -> list[_Result] | None:
        """BEGIN and every write function of the batch; the caller holds the lock and commits.
        None: ``wait`` was false and another connection holds the write lock (nothing ran)."""
        b = self._backend
        results: list[_Result] = []
        if not b.begin(wait):
            return None
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
        b.end_batch()  # here, not on the committer: its Python would contend for the GIL
        return results

    def _failed(self, batch: list[_Item], exc: BaseException) -> list[_Result]:
        """The whole transaction failed: roll back; nothing of the batch is committed."""
        log.error("write batch failed: %s", exc, exc_info=exc)
        try:
            self._backend.rollback()
        except BaseException:  # pragma: no cover
            pass
        return _unavailable(batch, exc)

    def _run(self, batch: list[_Item]) -> list[_Result]:
        """Execute and commit on this thread (the caller holds the lock)."""
        try:
            results = self._execute(batch)
            assert results is not None  # waited for the write lock
            self._backend.commit()
        except BaseException as exc:  # noqa: BLE001
            results = self._failed(batch, exc)
        return results

    def _flush(self, q: _LoopQueue) -> None:
        """On the loop: run the next batch's write functions, then hand its COMMIT to the committer.

        The loop never waits for SQLite's write lock: when another process holds it (``graphdir user
        create`` next to a running server, a seed), the whole batch goes to the committer thread,
        which waits for the lock and runs it there, while the loop serves on."""
        q.scheduled = False
        if q.inflight or not q.items:
            return
        self._lock.acquire()
        handed_over = False  # True: the committer releases the lock, after COMMIT
        try:
            batch = _take(q, self._limit)  # under the lock: stop() may be draining from another thread
            if not batch:
                return
            if self._closed:  # stop() ran or runs on another thread: no committer to hand over to
                self._settle(q, batch, self._run(batch))
                return
            try:
                results = self._execute(batch, wait=False)
            except BaseException as exc:  # noqa: BLE001
                self._settle(q, batch, self._failed(batch, exc))
                return
            q.inflight = True
            if results is None:
                self._jobs.put(("run", q, batch, None))
                return
            self._jobs.put(("commit", q, batch, results))
            handed_over = True
        finally:
            if not handed_over:
                self._lock.release()

    def _commit_loop(self) -> None:
        """The committer thread: COMMIT (SQLite syncs without holding the GIL), release, settle on the loop."""
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            kind, q, batch, results = job
            try:
                if kind == "run":
                    with self._lock:
                        results = self._run(batch)
                else:
                    try:
                        batch, results = self._commit(q, batch, results)
                    finally:
                        self._lock.release()
            except BaseException as exc:  # noqa: BLE001 - the committer must outlive any failure
                log.error("writer: committer failure: %s", exc, exc_info=exc)
                results = _unavailable(batch, exc)
            _call_soon(q, self._committed, q, batch, results)

    def _commit(self, q: _LoopQueue, batch: list[_Item], results: list[_Result]) -> tuple[list[_Item], list[_Result]]:
        """COMMIT the batch (lock held); copy the WAL's tail first if the checkpointer asked for it.
        Returns what is left to settle."""
        try:
            self._backend.commit()
        except BaseException as exc:  # noqa: BLE001
            results = self._failed(batch, exc)
        if not self._checkpoint.is_set():
            return batch, results
        # answer the batch now; the loop starts no new batch until the tail is copied
        self._checkpoint.clear()
        _call_soon(q, self._settle, q, batch, results)
        try:
            self._backend.checkpoint()
        except Exception as exc:  # noqa: BLE001 - a checkpoint can be retried; the writer goes on
            log.warning("writer: checkpoint failed: %s", exc)
        return [], []

    def _settle_anywhere(self, q: _LoopQueue, batch: list[_Item], results: list[_Result]) -> None:
        """:meth:`_settle` now when on the queue's loop, else on that loop (``stop()`` runs anywhere)."""
        try:
            here = asyncio.get_running_loop() is q.loop
        except RuntimeError:
            here = False
        if here:
            self._settle(q, batch, results)
        else:
            _call_soon(q, self._settle, q, batch, results)

    def _committed(self, q: _LoopQueue, batch: list[_Item], results: list[_Result]) -> None:
        q.inflight = False
        self._settle(q, batch, results)

    def _settle(self, q: _LoopQueue, batch: list[_Item], results: list[_Result]) -> None:
        for (_, _, fut, _), (ok, value) in zip(batch, results, strict=True):
            if fut is None or fut.cancelled():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
        if q.items and not q.scheduled:
            # after the callers just woken: their responses go out before the next batch runs
            q.scheduled = True
            q.loop.call_soon(self._flush, q)


def _unavailable(batch: list[_Item], exc: BaseException) -> list[_Result]:
    """Every write of the batch fails with 503: nothing of it was committed."""
    err = Unavailable(f"the write could not be committed: {exc}")
    return [(False, err)] * len(batch)


def _take(q: _LoopQueue, limit: int) -> list[_Item]:
    """The next batch off the queue, in place (``submit`` may be appending on the loop's thread)."""
    batch = q.items[:limit]
    del q.items[: len(batch)]
    return batch


def _call_soon(q: _LoopQueue, fn: Callable[..., None], *args: Any) -> None:
    """Run ``fn`` on the queue's loop (from the committer thread)."""
    try:
        q.loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # pragma: no cover - the loop is closed: nobody is waiting
        pass
