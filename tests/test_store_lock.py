"""Two processes writing to one embedded store: the second waits a bounded time, then fails
with a message naming server mode; nothing stored is damaged, and writing works afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rag.config import Settings
from rag.pipeline import Assistant
from tests.conftest import ROOT

HOLD_THE_LOCK = """
import sys, time
from rag.config import Settings
from rag.embeddings import Embedder
from rag.store import ChunkStore
store = ChunkStore(Settings(store_dir=sys.argv[1]), Embedder())
with store.writing():
    print("locked", flush=True)
    time.sleep(60)
"""

ARTICLE = "---\ntitle: Late news\npublished: 2024-11-20\n---\nNorth Korean troops were seen near Kursk again.\n"


def stored(assistant: Assistant) -> dict[str, object]:
    records = assistant.store.stored_records()
    got = assistant.store.collection.get(include=["embeddings"])
    return {i: (*records[i], list(e)) for i, e in zip(got["ids"], got["embeddings"])}


def test_a_second_writer_waits_then_fails_clearly_and_nothing_is_damaged(
    assistant: Assistant, settings: Settings, tmp_path: Path
) -> None:
    before = stored(assistant)
    article = tmp_path / "late-news.md"
    article.write_text(ARTICLE, encoding="utf-8")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(settings.store_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        env = {
            **os.environ,
            "CITELINE_STORE_DIR": str(settings.store_dir),
            "CITELINE_CORPUS_DIR": str(settings.corpus_dir),
            "CITELINE_WRITE_LOCK_TIMEOUT_SECONDS": "2",
        }
        began = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "rag", "ingest", str(article)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        waited = time.monotonic() - began
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 2
    assert "another process is writing to the store" in second.stderr and "after 2 s" in second.stderr
    assert "CITELINE_CHROMA_URL" in second.stderr  # names server mode as the way to write from several processes
    assert 2 <= waited < 60  # it gave up after its bound (plus start-up), never hanging
    assert stored(assistant) == before
    report = assistant.ingest([article])  # the lock is free again once its holder is gone
    assert report.added == ["late-news"] and not report.failed
