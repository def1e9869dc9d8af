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
