"""An opt-in record of what can hold up writes: commits, checkpoints, WAL restarts, garbage
collections, writer-cache evictions and event-loop lag (the ``stall_log`` setting, off by default).

Each event is one JSON line, ``{"t": <unix time at its start>, "kind": ..., "ms": <duration>, ...}``,
appended to the file by a background thread twice a second. ``bench/tail.py`` reads it to attribute
a round's slow requests to their cause (bench/README.md#tail-latency). When the setting is empty,
:data:`RECORDER` is ``None`` and every hook costs one ``is None`` test.

Kinds: ``batch`` (a write batch from the moment the loop took it to its callers' wake-up; ``exec``
= its SQL on the loop, ``n`` = writes), ``commit`` (COMMIT + fsync on the committer), ``checkpoint``
(the background PASSIVE checkpoint: ``log``/``done`` frames, ``wal`` bytes), ``wal_restart`` (the
log started over since the last checkpoint), ``tail_checkpoint`` (the writer copying the WAL's tail
under its lock), ``gc`` (one collection: ``gen``, ``collected``), ``evict`` / ``cache_clear`` (the
writer's group cache), ``loop_lag`` (the event loop was late by ``ms`` for a 5 ms timer).
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from pathlib import Path
from typing import Any


class Recorder:
    """Collects events from any thread (``list.append`` is atomic) and appends them to ``path``."""

    def __init__(self, path: str | Path, flush_interval: float = 0.5) -> None:
        self.path = Path(path)
        self._events: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._gc_start = 0.0
        self._interval = flush_interval
        self._thread = threading.Thread(target=self._flush_loop, name="graphdir-stall-log", daemon=True)
        self._thread.start()

    def event(self, kind: str, start: float, **fields: Any) -> None:
        """Record an event that began at ``start`` (``time.perf_counter()``) and ends now."""
        end = time.perf_counter()
        self._events.append({"t": round(time.time() - (end - start), 6), "kind": kind, "ms": round((end - start) * 1000, 3), **fields})

    def count(self, kind: str, **fields: Any) -> None:
        """An instantaneous event (no duration)."""
        self._events.append({"t": round(time.time(), 6), "kind": kind, "ms": 0.0, **fields})

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.event("gc", self._gc_start, gen=info.get("generation"), collected=info.get("collected"))

    def flush(self) -> None:
        events, self._events = self._events, []
        if events:
            with open(self.path, "a") as fh:
                fh.writelines(json.dumps(e) + "\n" for e in events)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)


#: The process's recorder, or None (the default: nothing is recorded).
RECORDER: Recorder | None = None


def enable(path: str | Path) -> Recorder:
    """Start recording to ``path`` (idempotent), garbage collections included."""
    global RECORDER
    if RECORDER is None:
        RECORDER = Recorder(path)
        gc.callbacks.append(RECORDER._gc)
    return RECORDER


def disable() -> None:
    global RECORDER
    if RECORDER is not None:
        RECORDER.close()
        RECORDER = None


async def watch_loop(period: float = 0.005, threshold_ms: float = 2.0) -> None:
    """Record every time this event loop wakes a ``period`` timer more than ``threshold_ms`` late."""
    loop = asyncio.get_running_loop()
    while RECORDER is not None:
        start = time.perf_counter()
        await asyncio.sleep(period)
        late = (time.perf_counter() - start - period) * 1000
        rec = RECORDER
        if rec is not None and late > threshold_ms:
            rec.event("loop_lag", start + period, late_ms=round(late, 3))
        if loop.is_closed():  # pragma: no cover
            return
