"""A cross-process "the signing keys changed" signal that costs one memory read to check.

The signing keys live in the database's ``meta`` table, and ``graphdir keys rotate`` (or
``keys remove``) changes them from *another* process. Every process that writes the keys then
rewrites the 8 bytes of a small file beside the database (``<database>-keys``) with random
bytes; every process that validates tokens maps that file into memory (``mmap``, shared) and
compares its 8 bytes with the last ones it saw. A change means "read the keys again"; no change
means the keys it holds are the keys in the database, so an unknown ``kid`` (a forged token) is
refused without a database read, and a token whose key was just added is accepted at once.

Why a mapped file (figures from a micro-benchmark on the project's 2-core VM, per check):
``mmap`` read 0.17 µs, ``os.stat`` of a signal file 2.1 µs, ``PRAGMA data_version`` 4.2 µs
(and it moves on every commit of any other connection, the service's own writer included, so
each write would cost a key reload), a ``SELECT`` of a version row in ``meta`` 6.2 µs. The
check runs on every authenticated request (a cached token must not outlive its key), so the
cheapest one was chosen. Writes to a file are visible at once through every shared mapping of
it (one page cache), whichever process made them.

The bytes are random, not a counter: two processes rotating at the same moment cannot write the
same value back. The writer commits the keys *before* it rewrites the bytes and a reader takes
the bytes *before* it reads the keys, so a reader can read keys newer than the bytes it saw
(harmless: it reloads once more) but never miss a change. The file holds no secret; it is created
owner-only like everything beside the database. Deleting it while a service runs hides later
changes from that service until it restarts (it keeps its mapping of the deleted file).

A database in memory (tests) has no file and no other process; a file that cannot be created
(a read-only directory) falls back to reading the keys at most every ``fallback_interval`` s.

A database server (PostgreSQL) has no file beside it, and its workers may run on other machines:
:class:`PushSignal` has the database push the change instead (PostgreSQL's ``LISTEN``/``NOTIFY``).
Each serving process listens on a thread of its own and re-reads the keys there as soon as a
rotation is announced (and every ``fallback_interval`` s, in case a notification was lost while its
connection was down), so the event loop never waits for that read and an unknown ``kid`` is still
refused from memory. A token signed by a key rotated in by another process is accepted once the
notification arrived: milliseconds after the rotation's commit.
"""

from __future__ import annotations

import logging
import mmap
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

log = logging.getLogger("graphdir.auth")

SIZE = 8


class KeySignal:
    """The shared "keys changed" bytes of one database (``path`` None: no file, see the module docstring)."""

    def __init__(self, path: Path | None, fallback_interval: float = 2.0) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._seen = b""
        self._fallback = fallback_interval
        self._checked = time.monotonic()
        if path is not None:
            try:
                self._map = self._open(path)
            except OSError as exc:
                log.warning("cannot use %s to learn of key rotations (%s): keys are re-read every %s s", path, exc, fallback_interval)
            else:
                self._seen = self._map[:SIZE]

    @staticmethod
    def _open(path: Path) -> mmap.mmap:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < SIZE:
                os.ftruncate(fd, SIZE)  # extends with zeros; never overwrites bytes another process wrote
            return mmap.mmap(fd, SIZE, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)

    def changed(self) -> bool:
        """True once after each change announced by any process, this one included."""
        m = self._map
        if m is None:
            now = time.monotonic()
            if now - self._checked < self._fallback:
                return False
            self._checked = now
            return True
        current = m[:SIZE]
        if current == self._seen:
            return False
        self._seen = current
        return True

    def announce(self) -> None:
        """Tell every process mapping the file that the keys changed (call after the keys are committed)."""
        if self.path is None:
            return
        stamp = os.urandom(SIZE)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("cannot write %s: running services see the new keys within %s s", self.path, self._fallback)
            log.debug("%s", exc)
            return
        try:
            os.pwrite(fd, stamp, 0)
        finally:
            os.close(fd)
        # this process sees its own stamp too and reads the keys once more: another process may have
        # committed keys between this one's commit and its stamp, and only a read shows which are newest

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


#: The notification channel of key changes on a database server.
CHANNEL = "graphdir_keys"


class Notifier(Protocol):
    """What a database server offers :class:`PushSignal` (``graphdir.store.postgres.PostgresStore``)."""

    def listen(self, channel: str, callback: Callable[[], None], interval: float) -> None: ...
    def notify(self, channel: str) -> None: ...


class PushSignal:
    """Key changes pushed by the database server to every process (see the module docstring)."""

    def __init__(self, store: Notifier, fallback_interval: float = 2.0) -> None:
        self._store = store
        self._fallback = fallback_interval

    def watch(self, reload: Callable[[], None]) -> None:
        """Call ``reload`` on a thread of the store's after each announced change (and every fallback interval)."""
        self._store.listen(CHANNEL, reload, self._fallback)

    def changed(self) -> bool:
        """Never: the listener thread re-reads the keys itself, off the event loop."""
        return False

    def announce(self) -> None:
        """Tell every listening process that the keys changed (call after the keys are committed)."""
        self._store.notify(CHANNEL)

    def close(self) -> None:
        """Nothing to release: the store stops its listeners when it closes."""
