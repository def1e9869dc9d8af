"""SIGKILL in the middle of an ingest, then ingest again: the store ends identical to one made
by an uninterrupted ingest (same ids, same counts, same texts and metadata)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.config import Settings
from rag.pipeline import Assistant, IngestReport
from rag.stories import encode, signature
from tests.conftest import ROOT

TOPICS = ["troops", "missiles", "talks", "sanctions", "drones", "elections"]


def write_corpus(folder: Path, documents: int = 120, paragraphs: int = 9) -> Path:
    """Articles enough (about 5 chunks each, 600 in all) for an ingest to store them over several
    seconds and several writes: it writes about EMBEDDING_GROUP_CHUNKS chunks at a time."""
    folder.mkdir()
    for d in range(documents):
        topic = TOPICS[d % len(TOPICS)]
        body = "\n\n".join(
            f"Report {d}.{p} on {topic}: officials in city {d * 7 + p} said {p * 100 + d} people took part. "
            f"The {topic} briefing number {p} followed talks with delegation {d}. "
            f"Analysts expect further {topic} news from region {d % 5} within {p + 2} weeks, they added. "
            f"Observers counted {d + p * 3} vehicles and {p * 11} aircraft near the border that day. "
            f"Separate statements from ministry {p} described the {topic} situation as changing quickly."
            for p in range(paragraphs)
        )
        (folder / f"article-{d:02d}.md").write_text(f"---\ntitle: Article {d} about {topic}\n---\n{body}\n")
    return folder


def stored(settings: Settings) -> dict[str, object]:
    return dict(Assistant.from_settings(settings).store.stored_records())


def chunks_written(sqlite: Path) -> int:
    """Chunks committed to an embedded store's database so far, read without writing to it
    (0 while the database or its tables do not exist yet)."""
    import sqlite3
    from contextlib import closing

    if not sqlite.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{sqlite}?mode=ro", uri=True, timeout=1)) as connection:
            return int(connection.execute("SELECT count(*) FROM embeddings").fetchone()[0])
    except sqlite3.Error:
        return 0


def write_articles(corpus: Path, path: Path) -> Path:
    """The same articles as one .jsonl file, the format `python -m rag import` reads."""
    rows = [
        {"id": f.stem, "title": f"Article {f.stem}", "text": f.read_text().split("---\n", 2)[2]}
        for f in sorted(corpus.glob("*.md"))
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("command", ["ingest", "import"])
def test_an_ingest_killed_midway_then_run_again_equals_an_uninterrupted_one(tmp_path: Path, command: str) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    articles = write_articles(corpus, tmp_path / "articles.jsonl")

    def run_to_the_end(settings: Settings) -> IngestReport:
        assistant = Assistant.from_settings(settings)
        return assistant.ingest() if command == "ingest" else assistant.import_articles(articles)

    whole = Settings(corpus_dir=corpus, store_dir=tmp_path / "whole")
    assert not run_to_the_end(whole).failed
    expected = stored(whole)

    killed = Settings(corpus_dir=corpus, store_dir=tmp_path / "killed")
    env = {**os.environ, "CITELINE_STORE_DIR": str(killed.store_dir), "CITELINE_CORPUS_DIR": str(corpus)}
    arguments = ["ingest"] if command == "ingest" else ["import", str(articles)]
    process = subprocess.Popen([sys.executable, "-m", "rag", *arguments], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    # Kill it once it has stored some chunks. (Waiting for the folder to grow instead raced with
    # Chroma creating its tables, which alone can grow it, and killed it before any chunk.)
    sqlite = killed.store_dir / "chroma.sqlite3"
    deadline = time.monotonic() + 300
    while chunks_written(sqlite) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, f"the {command} finished before it could be killed; give it more to do"
    process.send_signal(signal.SIGKILL)
    process.wait()

    partial = stored(killed)
    assert 0 < len(partial) < len(expected), "killed midway: some chunks stored, not all"
    report = run_to_the_end(killed)
    assert not report.failed and report.embedded > 0
    assert stored(killed) == expected


def test_a_document_left_half_written_is_written_again(tmp_path: Path) -> None:
    """The state a kill between storing a changed document's new chunks and dropping its old ones
    leaves: new chunks beside stale ones. The next ingest must not take it for up to date."""
    from rag.chunking import chunk_document
    from rag.loaders import load_file
    from rag.store_records import chunk_metadata

    corpus = write_corpus(tmp_path / "corpus", documents=2)
    settings = Settings(corpus_dir=corpus, store_dir=tmp_path / "store")
    assistant = Assistant.from_settings(settings)
    assistant.ingest()
    article = corpus / "article-00.md"
    article.write_text(article.read_text().split("\n\n")[0] + "\n")  # much shorter: fewer chunks
    changed = load_file(article)
    chunks = chunk_document(changed, settings.chunk_max_chars, settings.chunk_overlap_sentences)
    vectors = assistant.ingestor.chunk_vectors([(changed, chunks)])[0]
    half = len(chunks)  # every new chunk stored, none of the old ones dropped yet
    assistant.store.collection.upsert(
        ids=[c.id for c in chunks[:half]],
        embeddings=[list(v) for v in vectors[:half]],
        documents=[c.text for c in chunks[:half]],
        metadatas=[
            chunk_metadata(changed, c, len(chunks), changed.id, encode(signature(changed.text))) for c in chunks[:half]
        ],
    )
    assert assistant.store.stored_origin(changed.id) == ("", str(article.resolve()))
    report = assistant.ingest()
    assert report.updated == ["article-00"]
    fresh = Settings(corpus_dir=corpus, store_dir=tmp_path / "fresh")
    Assistant.from_settings(fresh).ingest()
    assert stored(settings) == stored(fresh)


def test_doctor_reports_what_is_off_and_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.__main__ import main

    corpus = write_corpus(tmp_path / "corpus", documents=3, paragraphs=2)
    settings = Settings(corpus_dir=corpus, store_dir=tmp_path / "store")
    Assistant.from_settings(settings).ingest()
    (corpus / "article-00.md").write_text("---\ntitle: Rewritten\n---\nA different text now.\n")
    (corpus / "article-01.md").unlink()
    (corpus / "article-03.md").write_text("---\ntitle: New\n---\nA file never ingested.\n")
    monkeypatch.setenv("CITELINE_STORE_DIR", str(settings.store_dir))
    monkeypatch.setenv("CITELINE_CORPUS_DIR", str(corpus))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "the stored copy differs from its file: article-00" in out
    assert "not in the store: article-03" in out
    assert "stored, but its file is gone: article-01" in out
    assert "article-02" not in out
    assert main(["doctor", "--repair"]) == 0
    assert "repaired by re-ingesting: 2 documents embedded (1 new, 1 changed" in capsys.readouterr().out
    assert main(["doctor"]) == 0
    assert capsys.readouterr().out.startswith("ok: the store")
