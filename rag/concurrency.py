"""The store's locks: between processes, one writer at a time (a file lock beside the embedded
store); within a process, a readers-writer lock: many questions read the store at once, and a
change waits for them and holds them off while it is made, so every question sees the store
before or after a change, never halfway through one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rag.config import Settings
from rag.errors import CitelineError

if TYPE_CHECKING:
    from filelock import BaseFileLock


class StoreBusyError(CitelineError, RuntimeError):
    """Another process held the embedded store's write lock for longer than we would wait."""


class ProcessWriteLock:
    """The embedded store's single-writer lock between processes.

    Chroma's embedded store has one writer per folder; a second process writing at the same
    time can hang on its lock or damage the index. So writers take a file lock beside it and a
    second writer waits at most Settings.write_lock_timeout_seconds, then fails with a message.
    A Chroma server orders writes itself, so server mode takes no lock. Re-entrant; each
    thread holds it on its own (filelock's thread-local locks), so two threads of one process
    exclude each other too.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock: BaseFileLock | None = None

    @contextmanager
    def held(self, timeout: float | None = None) -> Iterator[None]:
        """Hold it for the block; wait at most `timeout` (default: the setting) seconds."""
        if self.settings.chroma_url:
            yield
            return
        from filelock import FileLock, Timeout

        if self._lock is None:
            self.settings.store_dir.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(self.settings.store_dir / "write.lock")
        timeout = self.settings.write_lock_timeout_seconds if timeout is None else timeout
        try:
            self._lock.acquire(timeout=timeout)
        except Timeout:
            raise StoreBusyError(
                f"another process is writing to the store at {self.settings.store_dir} and has not finished "
                f"after {timeout:g} s (CITELINE_WRITE_LOCK_TIMEOUT_SECONDS). Try again when it is done, or, for "
                "several processes writing at once, run a Chroma server (`make chroma`) and set "
                "CITELINE_CHROMA_URL=http://127.0.0.1:8000"
            ) from None
        try:
            yield
        finally:
            self._lock.release()


class ReadWriteLock:
    """Shared reading, exclusive writing; a waiting writer goes before readers that come after
    it, so a steady stream of questions cannot hold an ingest off for ever. The writing side is
    re-entrant for its thread; a thread that writes may also read. Reading is not re-entrant
    while a writer waits (take it once per question)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer: int | None = None  # the writing thread's id
        self._depth = 0  # how many times the writer holds it
        self._writers_waiting = 0
        self._local = threading.local()  # how many read sections this thread is in

    def is_reading(self) -> bool:
        """Whether this thread is inside a read section."""
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._condition:
            if self._writer != me:
                while self._writer is not None or self._writers_waiting:
                    self._condition.wait()
            self._readers += 1
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            with self._condition:
                self._readers -= 1
                if not self._readers:
                    self._condition.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._condition:
            if self._writer != me:
                self._writers_waiting += 1
                try:
                    while self._writer is not None or self._readers:
                        self._condition.wait()
                finally:
                    self._writers_waiting -= 1
                self._writer = me
            self._depth += 1
        try:
            yield
        finally:
            with self._condition:
                self._depth -= 1
                if not self._depth:
                    self._writer = None
                    self._condition.notify_all()
