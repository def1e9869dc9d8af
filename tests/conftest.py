"""Shared fixtures: real model (loaded once per process by rag.embeddings), real Chroma in tmp_path."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from rag.pipeline import Assistant

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CORPUS = ROOT / "corpus"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's CITELINE_* variables or writes the default store."""
    import os

    for name in list(os.environ):
        if name.startswith("CITELINE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(SHIPPED_CORPUS, target)
    return target


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return Settings(corpus_dir=corpus_dir, store_dir=tmp_path / "store")


@pytest.fixture
def assistant(settings: Settings) -> Iterator[Assistant]:
    """An Assistant over the shipped corpus, ingested into a fresh store."""
    built = Assistant.from_settings(settings)
    report = built.ingest()
    assert not report.failed, report.failed
    yield built


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` on a free 127.0.0.1 port for the whole session; yields its URL."""
    import subprocess
    import sys
    import time
    import urllib.request

    from eval.llm_server import free_port

    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    chroma = Path(sys.executable).parent / "chroma"
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [str(chroma), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"chroma run exited: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"chroma run did not start: {(folder / 'server.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
