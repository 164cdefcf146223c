"""One writer with group commit, pipelined with the event loop.

Requests queue a write; the writes queued during one turn of the event loop (up to ``batch_max``)
run together in one transaction. A write is one of two kinds:

* a **write function** ``fn(txn)``, which may do anything and runs under a SAVEPOINT of its own:
  when it raises, everything it changed is rolled back (its change records too);
* a **checked write** ``check(view) -> mutation``: the check reads through a view that has no
  write methods and may raise; the writer then applies the one mutation it returned, a single
  statement, after which no caller code runs. There is nothing to undo, so it needs no savepoint:
  two statements fewer on the hot membership paths, and no promise left unchecked.

The write functions run **on the event loop's own thread** — they are a few microseconds of Python
and SQL each, and running them there costs no thread hand-off per request — while the batch's
``COMMIT`` (the fsync, ``synchronous=FULL``) runs on a committer thread, which holds no GIL while
SQLite syncs. Meanwhile the loop keeps serving requests and queueing the next batch. Callers' futures
settle only after their batch's COMMIT returned: a ``2xx`` is never sent before its commit. A write
that raises is undone alone; the others in the batch still commit; a batch the database itself rolls
back (disk full, I/O error) fails whole.

**The event loop never waits for the writer.** The connection is used by one party at a time (the
``_busy`` flag); the loop only ever *tries* to take it. When it is in use — the committer runs a
synchronous write or another loop's batch — or when another process holds SQLite's write lock, the
loop hands its whole batch to the committer thread, which runs it once the connection is free, and
the loop serves on. Synchronous writes (:meth:`Writer.submit_sync`: the CLI, start-up, a worker
thread) are run by the committer too, while their thread waits; on a thread that runs an event loop
they are refused (a programming error: use ``await store.write(...)``). The one lock the loop takes,
``_mutex``, guards a few flags and is never held across SQL or a sync.

(Group commit and checkpoints off the write path: bench/README.md#design-measurements.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from graphdir import stalls
from graphdir.store.base import EdgeWrite, StoreError, Unavailable

log = logging.getLogger("graphdir.writer")

C = TypeVar("C")  # the backend's transaction context
V = TypeVar("V")  # the backend's read-only view (for checked writes)
V_co = TypeVar("V_co", covariant=True)


class Backend(Protocol[C, V_co]):
    """What a database gives the writer: a connection lifecycle and transaction verbs.

    ``on_loop``: may a batch's statements run on the event loop's thread? True for an embedded
    database (SQLite: microseconds per statement, no thread hand-off); False for a network database,
    whose round trips must never block the loop: every batch then runs on the committer thread.
    """

    on_loop: bool

    def connect(self) -> None: ...
    def begin(self, wait: bool = True) -> bool:
        """BEGIN a write transaction; with ``wait=False`` give up at once (False) when another
        connection holds the database's write lock."""
        ...
    def lock_tenants(self, tenants: list[str]) -> None:
        """Right after BEGIN: hold the write lock of each tenant the batch writes (given sorted) until
        COMMIT, so that the checks a write makes in Python see every earlier write of its tenant and no
        later one, whichever process wrote it (SQLite's one database-wide lock already does that)."""
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
    def make_view(self, tenant_id: str) -> V_co:
        """A read-only view of the transaction: the argument of a checked write's check."""
        ...
    def apply(self, tenant_id: str, mutation: EdgeWrite) -> bool | None:
        """Apply a checked write's mutation as one statement and record its change when it changed
        something (True); everything that can fail in Python happens before the statement. None: the
        statement was queued (a network database pipelines them); :meth:`settle` says later."""
        ...
    def prefetch(self, checks: list[tuple[str, Callable[[Any], EdgeWrite]]]) -> None:
        """Before a batch's writes run: read at once, in as few round trips as the database allows,
        what the checks of its checked writes will read (a dry run of each check finds out)."""
        ...
    def settle(self) -> list[bool]:
        """Whether each statement :meth:`apply` queued changed its edge, in order (their changes recorded)."""
        ...
    def replayable(self) -> bool:
        """Did the transaction fail while statements were queued? Then no error can be pinned on one
        write: the writer runs the batch again, one statement at a time (:meth:`restart_unpipelined`)."""
        ...
    def restart_unpipelined(self) -> None:
        """Roll back and BEGIN again, this time without queueing statements."""
        ...
    def translate(self, exc: BaseException) -> BaseException:
        """The database's exception as a :class:`StoreError` that says whose fault it is; others unchanged."""
        ...
    def close(self) -> None: ...


#: (tenant id, write function or check, the caller's future or None, checked)
_Item = tuple[str, Callable[[Any], Any], "asyncio.Future[Any] | None", bool]
_Result = tuple[bool, Any]
_STOP = object()


class _LoopQueue:
    """One event loop's pending writes and whether one of its batches is with the committer."""

    __slots__ = ("loop", "items", "scheduled", "inflight", "taken_at", "exec_ms")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: list[_Item] = []
        self.scheduled = False
        self.inflight = False
        #: when the batch in flight was taken and its SQL's duration on the loop (stall log only)
        self.taken_at = 0.0
        self.exec_ms = 0.0


def on_event_loop() -> bool:
    """Does the calling thread run an event loop (where blocking would stall every request)?"""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Writer(Generic[C, V]):
    def __init__(self, backend: Backend[C, V], batch_max: int = 512) -> None:
        self._backend = backend
        self._limit = max(1, batch_max)
        self._on_loop = bool(getattr(backend, "on_loop", True))
        #: guards the flags below and the queues' hand-over; held for a few bytecodes, never across SQL
        self._mutex = threading.Lock()
        #: the connection is in use (a transaction is open, or the committer runs one); whoever set it
        #: clears it: a loop that took it always hands it back through the committer's queue
        self._busy = False
        #: jobs queued for the committer that still need the connection; loops queue behind them
        self._waiting = 0
        self._started = False
        self._closed = False
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: the committer's jobs that wait for the connection (committer thread only)
        self._deferred: deque[tuple[Any, ...]] = deque()
        self._committer = threading.Thread(target=self._commit_loop, name="graphdir-committer", daemon=True)
        self._queues: dict[asyncio.AbstractEventLoop, _LoopQueue] = {}
        self._checkpoint = threading.Event()

    def start(self) -> None:
        self._backend.connect()
        self._committer.start()
        self._started = True

    def stop(self) -> None:
        """Commit what is still queued, wait for the committer, close the connection (any thread).

        Every queue is emptied under the mutex and its writes handed to the committer; a loop that
        flushes afterwards finds the writer closed and refuses what was queued since (503)."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            drained = [(q, _take(q, len(q.items))) for q in list(self._queues.values())]
            drained = [(q, batch) for q, batch in drained if batch]
            self._waiting += len(drained)
        for q, batch in drained:
            self._jobs.put(("drain", q, batch, None))
        if self._started:
            self._jobs.put(_STOP)
            self._committer.join(timeout=30)
        self._backend.close()

    # -- submitting ------------------------------------------------------
    def submit(self, tenant_id: str, fn: Callable[[C], Any]) -> asyncio.Future[Any]:
        """Queue the write function ``fn`` (run under a savepoint) for this loop's next batch."""
        return self._submit((tenant_id, fn, None, False))

    def submit_checked(self, tenant_id: str, check: Callable[[V], EdgeWrite]) -> asyncio.Future[Any]:
        """Queue a checked write: ``check(view)`` may read and raise; the mutation it returns is applied."""
        return self._submit((tenant_id, check, None, True))

    def _submit(self, item: _Item) -> asyncio.Future[Any]:
        if self._closed:
            raise Unavailable("the store is closed")
        loop = asyncio.get_running_loop()
        q = self._queues.get(loop)
        if q is None:
            q = self._queues[loop] = _LoopQueue(loop)
        fut: asyncio.Future[Any] = loop.create_future()
        q.items.append((item[0], item[1], fut, item[3]))
        if not q.scheduled and not q.inflight:
            # after the callbacks already ready: every write of this loop turn joins the batch
            q.scheduled = True
            loop.call_soon(self._flush, q)
        return fut

    def request_checkpoint(self) -> None:
        """Ask for :meth:`Backend.checkpoint` right after the next COMMIT, under the write lock (any thread)."""
        self._checkpoint.set()

    def submit_sync(self, tenant_id: str, fn: Callable[[C], Any]) -> Any:
        """Run ``fn`` in a transaction of its own and wait for its commit (CLI, start-up, worker threads).

        The committer thread runs it; the calling thread waits. Refused on a thread that runs an
        event loop (it would stall every request there) and inside a write function."""
        if on_event_loop():
            raise RuntimeError("a synchronous write on an event loop's thread would block every request: use `await store.write(...)`")
        if threading.current_thread() is self._committer:
            raise RuntimeError("a synchronous write inside a write function")
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._mutex:
            if self._closed or not self._started:
                raise Unavailable("the store is closed")
            self._waiting += 1
        self._jobs.put(("sync", done, [(tenant_id, fn, None, False)], None))
        return done.result()

    # -- running batches -------------------------------------------------
    def _execute(self, batch: list[_Item], wait: bool = True) -> list[_Result] | None:
        """BEGIN and every write of the batch; the caller owns the connection and commits.
        None: ``wait`` was false and another connection holds the write lock (nothing ran)."""
        b = self._backend
        if not b.begin(wait):
            return None
        tenants = sorted({item[0] for item in batch})
        b.lock_tenants(tenants)
        try:
            results = self._writes(batch)
        except BaseException:
            if not b.replayable():
                raise
            # a statement queued by an earlier write failed where a later one waited for a result: run
            # the batch again statement by statement, so that the failure is that write's alone
            log.info("writer: a pipelined batch failed; running it again statement by statement")
            b.restart_unpipelined()
            b.lock_tenants(tenants)
            results = self._writes(batch)
        b.end_batch()  # here, not on the committer: its Python would contend for the GIL
        return results

    def _writes(self, batch: list[_Item]) -> list[_Result]:
        """Every write of the batch in the open transaction; a checked write's statement may be queued
        (:meth:`Backend.apply` answers None) and its outcome settled after the last write."""
        b = self._backend
        results: list[_Result] = []
        checks = [(item[0], item[1]) for item in batch if item[3]]
        if checks:
            b.prefetch(checks)
        queued: list[tuple[int, EdgeWrite]] = []
        for tenant_id, fn, _, checked in batch:
            try:
                if checked:
                    mutation = fn(b.make_view(tenant_id))  # reads only: nothing to undo when it raises
                    changed = b.apply(tenant_id, mutation)
                    if changed is None:
                        queued.append((len(results), mutation))
                    elif not changed and mutation.unchanged is not None:
                        raise mutation.unchanged()  # the one statement changed nothing
                    value = None
                else:
                    value = self._savepointed(tenant_id, fn)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                if not b.in_transaction():
                    raise  # the database rolled the whole transaction back (disk full, I/O error…)
                results.append((False, b.translate(exc)))
            else:
                results.append((True, value))
        if queued:
            for (i, mutation), changed in zip(queued, b.settle(), strict=True):
                if not changed and mutation.unchanged is not None:
                    results[i] = (False, mutation.unchanged())
        return results

    def _savepointed(self, tenant_id: str, fn: Callable[[C], Any]) -> Any:
        """A write function under its own savepoint: when it raises, whatever it changed is undone."""
        b = self._backend
        b.savepoint()
        txn = b.make_txn(tenant_id)
        try:
            value = fn(txn)
            b.finish_txn(txn)
        except BaseException:
            if b.in_transaction():
                b.rollback_to()
            raise
        b.release()
        return value

    def _failed(self, batch: list[_Item], exc: BaseException) -> list[_Result]:
        """The whole transaction failed: roll back; nothing of the batch is committed."""
        log.error("write batch failed: %s", exc, exc_info=exc)
        try:
            self._backend.rollback()
        except BaseException:  # pragma: no cover
            pass
        return self._whole(batch, exc)

    def _whole(self, batch: list[_Item], exc: BaseException) -> list[_Result]:
        """Every write of the batch fails: 503 when the database is unavailable, else a bug (500)."""
        cause = self._backend.translate(exc)
        err: StoreError
        if isinstance(cause, Unavailable):
            err = Unavailable(f"the write could not be committed: {exc}")
        else:
            err = StoreError(f"the write could not be committed: {exc}")
        return [(False, err)] * len(batch)

    def _run(self, batch: list[_Item], wait: bool = True) -> list[_Result]:
        """Execute and commit on this thread (the caller owns the connection)."""
        try:
            results = self._execute(batch, wait)
            assert results is not None  # waited for the write lock
            self._backend.commit()
        except BaseException as exc:  # noqa: BLE001
            results = self._failed(batch, exc)
        return results

    def _flush(self, q: _LoopQueue) -> None:
        """On the loop: take the connection if it is free and run the next batch's writes, then hand
        its COMMIT to the committer; if it is not free, hand the whole batch to the committer.

        Never waits: when another process holds SQLite's write lock (``graphdir user create`` next to
        a running server), the batch too goes to the committer, which waits for the lock."""
        q.scheduled = False
        if q.inflight or not q.items:
            return
        with self._mutex:
            batch = _take(q, self._limit)  # under the mutex: stop() may be draining from another thread
            if not batch:
                return
            closed = self._closed
            own = self._on_loop and not (closed or self._busy or self._waiting)
            if own:
                self._busy = True
            elif not closed:
                self._waiting += 1
        if closed:  # stop() took everything queued before it; this came after
            self._settle(q, batch, [(False, Unavailable("the store is closed"))] * len(batch))
            return
        q.inflight = True
        rec = stalls.RECORDER
        if rec is not None:
            q.taken_at = time.perf_counter()
        if not own:
            self._jobs.put(("run", q, batch, None))
            return
        try:
            results = self._execute(batch, wait=False)
            if rec is not None:
                q.exec_ms = (time.perf_counter() - q.taken_at) * 1000
        except BaseException as exc:  # noqa: BLE001
            self._jobs.put(("failed", q, batch, self._failed(batch, exc)))  # rolled back: nothing to commit
            return
        if results is None:  # another process holds the write lock: the committer waits for it
            self._jobs.put(("own", q, batch, None))
        else:
            self._jobs.put(("commit", q, batch, results))

    def _free(self) -> None:
        with self._mutex:
            self._busy = False

    def _commit_loop(self) -> None:
        """The committer thread: COMMIT (SQLite syncs without holding the GIL), free the connection,
        settle on the loop; run the batches and synchronous writes handed to it once it is free."""
        stopping = False
        while True:
            job = self._jobs.get()
            if job is _STOP:
                stopping = True
            elif job[0] in ("commit", "own", "failed"):  # the connection was handed over with the job
                self._owned_job(job)
            else:  # "run", "drain", "sync": wait for the connection
                self._deferred.append(job)
            self._run_deferred()
            if stopping and not self._deferred:
                with self._mutex:
                    if not self._busy:
                        return
                # a loop took the connection just before stop(): its job is on the way

    def _owned_job(self, job: tuple[Any, ...]) -> None:
        kind, q, batch, results = job
        try:
            try:
                if kind == "commit":
                    batch, results = self._commit(q, batch, results)
                elif kind == "own":
                    results = self._run(batch)
            finally:
                self._free()
        except BaseException as exc:  # noqa: BLE001 - the committer must outlive any failure
            log.error("writer: committer failure: %s", exc, exc_info=exc)
            results = self._whole(batch, exc)
        _call_soon(q, self._committed, q, batch, results)

    def _run_deferred(self) -> None:
        """Run the jobs waiting for the connection, in order, while nobody else holds it."""
        while self._deferred:
            with self._mutex:
                if self._busy:
                    return  # a loop holds it; its "commit" job comes next and frees it
                self._busy = True
                self._waiting -= 1
            kind, target, batch, _ = self._deferred.popleft()
            try:
                results = self._run(batch)
            except BaseException as exc:  # noqa: BLE001 - the committer must outlive any failure
                log.error("writer: committer failure: %s", exc, exc_info=exc)
                results = self._whole(batch, exc)
            finally:
                self._free()
            if kind == "sync":
                ((ok, value),) = results
                if ok:
                    target.set_result(value)
                else:
                    target.set_exception(value)
            elif kind == "run":
                _call_soon(target, self._committed, target, batch, results)
            else:  # "drain": stop()'s, the loop's own batch may still be in flight
                _call_soon(target, self._settle, target, batch, results)

    def _commit(self, q: _LoopQueue, batch: list[_Item], results: list[_Result]) -> tuple[list[_Item], list[_Result]]:
        """COMMIT the batch (connection owned); copy the WAL's tail first if the checkpointer asked
        for it. Returns what is left to settle."""
        rec = stalls.RECORDER
        start = time.perf_counter()
        try:
            self._backend.commit()
        except BaseException as exc:  # noqa: BLE001
            results = self._failed(batch, exc)
        if rec is not None:
            rec.event("commit", start, n=len(batch))
        if not self._checkpoint.is_set():
            return batch, results
        # answer the batch now; the loop starts no new batch until the tail is copied
        self._checkpoint.clear()
        _call_soon(q, self._settle, q, batch, results)
        start = time.perf_counter()
        try:
            self._backend.checkpoint()
        except Exception as exc:  # noqa: BLE001 - a checkpoint can be retried; the writer goes on
            log.warning("writer: checkpoint failed: %s", exc)
        if rec is not None:
            rec.event("tail_checkpoint", start)
        return [], []

    def _committed(self, q: _LoopQueue, batch: list[_Item], results: list[_Result]) -> None:
        q.inflight = False
        rec = stalls.RECORDER
        if rec is not None and q.taken_at:
            rec.event("batch", q.taken_at, n=len(batch), exec=round(q.exec_ms, 3))
            q.taken_at = q.exec_ms = 0.0
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
