"""Ingest in the background: one worker thread per Assistant that embeds saved files in the
order they were handed in, with its own progress, so the chat keeps answering while a batch is
embedded and a page rerun (or a closed tab) cannot lose a saved upload half-way."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rag.errors import CitelineError
from rag.ingest import IngestReport
from rag.pipeline import Assistant

JobState = Literal["waiting", "embedding", "done", "failed"]


@dataclass
class IngestJob:
    """One batch of files handed to the worker, and how far it got."""

    id: int
    paths: tuple[Path, ...]
    state: JobState = "waiting"
    done: int = 0  # chunks embedded so far
    total: int = 0  # chunks to embed (known once the files are read)
    report: IngestReport | None = None
    error: str = ""  # why the whole batch failed (the files stay saved; the next ingest adds them)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def names(self) -> str:
        return ", ".join(path.name for path in self.paths)

    @property
    def active(self) -> bool:
        return self.state in ("waiting", "embedding")


class IngestWorker:
    """Runs `Assistant.ingest` for submitted paths on one daemon thread, one job at a time."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self._queue: queue.Queue[IngestJob] = queue.Queue()
        self._jobs: dict[int, IngestJob] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, paths: Sequence[Path]) -> IngestJob:
        """Queue the files or folders for ingest; returns the job to follow."""
        job = IngestJob(next(self._ids), tuple(paths))
        with self._lock:
            self._jobs[job.id] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="citeline-ingest", daemon=True)
                self._thread.start()
        self._queue.put(job)
        return job

    def job(self, job_id: int) -> IngestJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            job.state = "embedding"

            def progress(done: int, total: int, job: IngestJob = job) -> None:
                job.done, job.total = done, total

            try:
                job.report = self.assistant.ingest(list(job.paths), progress=progress)
                job.state = "done"
            except CitelineError as error:  # e.g. another process kept the store busy
                job.error, job.state = str(error), "failed"
            except Exception as error:  # noqa: BLE001 - the worker must outlive any one batch
                job.error, job.state = f"{type(error).__name__}: {error}", "failed"
            finally:
                job.finished.set()
                self._queue.task_done()
