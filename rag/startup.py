"""The chat server's start: the Assistant and its ingest worker built once, in the background,
saying what is loading, so every page can show progress instead of a bare spinner."""

from __future__ import annotations

import threading

from rag.config import Settings
from rag.ingest_worker import IngestWorker
from rag.pipeline import Assistant


class Startup:
    """Builds (Assistant, IngestWorker, failures) in a thread as soon as it is made; one per
    process and settings (`shared`), so `python -m rag serve` can begin before any page asks.

    On an empty store the corpus folder is indexed first (failures: the files that could not
    be); on a later start the worker syncs the folder in the background, which also indexes an
    upload saved by a run that stopped before indexing it. `stage` says what is being done,
    `share` roughly how far it is; `error` is what stopped it."""

    _started: dict[str, Startup] = {}
    _lock = threading.Lock()

    @classmethod
    def shared(cls, settings: Settings) -> Startup:
        """This process's start for these settings, begun now if it has not been."""
        key = settings.model_dump_json()
        with cls._lock:
            if key not in cls._started:
                cls._started[key] = cls(settings)
            return cls._started[key]

    @classmethod
    def discard(cls, settings: Settings) -> None:
        """Forget a failed start, so that the next page load tries again."""
        with cls._lock:
            cls._started.pop(settings.model_dump_json(), None)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stage = "Starting"
        self.share = 0.0
        self.done = threading.Event()
        self.error: Exception | None = None
        self.result: tuple[Assistant, IngestWorker, list[str]] | None = None
        threading.Thread(target=self._run, name="citeline-startup", daemon=True).start()

    def _say(self, stage: str, share: float) -> None:
        self.stage, self.share = stage, share

    def _run(self) -> None:
        try:
            self._say("Opening the store", 0.05)
            assistant = Assistant.from_settings(self.settings)
            worker = IngestWorker(assistant)
            failures: list[str] = []
            if assistant.chunk_count() == 0:
                self._say("Loading the embedding model", 0.1)

                def indexed(done: int, total: int) -> None:
                    self._say(f"Indexing the corpus: {done} of {total} chunks", 0.3 + 0.5 * done / max(total, 1))

                failures = [str(error) for error in assistant.ingest(progress=indexed).failed]
            else:
                worker.submit([self.settings.corpus_dir])
            shares = iter((0.2, 0.85, 0.9))
            assistant.warm_up(lambda stage: self._say(stage, max(self.share, next(shares, 0.95))))
            self.result = (assistant, worker, failures)
            self._say("Ready", 1.0)
        except Exception as error:  # shown on the page; the next page load tries again
            self.error = error
        finally:
            self.done.set()

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)
