"""Incremental ingest with the real model into a real Chroma store, in both modes: the embedded
folder in tmp_path, and a real `chroma run` server on loopback (one collection per test)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from rag.chroma import StoreMismatchError
from rag.config import Settings
from rag.pipeline import Assistant
from rag.types import SearchFilter


@pytest.fixture(params=["embedded", "server"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, corpus_dir: Path) -> Settings:
    """The store tests' settings, once per store mode."""
    base = Settings(corpus_dir=corpus_dir, store_dir=tmp_path / "store")
    if request.param == "embedded":
        return base
    url = request.getfixturevalue("chroma_server")
    return base.model_copy(update={"chroma_url": url, "collection": f"t{uuid.uuid4().hex}"})


def snapshot(assistant: Assistant) -> dict[str, object]:
    """Everything stored: ids, texts and metadata, for before/after comparisons."""
    return dict(assistant.store.stored_records())


def test_second_ingest_embeds_nothing(assistant: Assistant) -> None:
    before = snapshot(assistant)
    report = assistant.ingest()
    assert report.embedded == 0 and report.chunks_embedded == 0
    assert len(report.unchanged) == 4
    assert snapshot(assistant) == before


def test_changed_document_is_replaced_and_deleted_one_removed(assistant: Assistant, corpus_dir: Path) -> None:
    target = corpus_dir / "2024-11-18-north-korean-troops-enter-kursk-where-ukrainians-are-fighting.md"
    target.write_text(target.read_text().replace("about 190 miles", "about 300 kilometres"))
    (corpus_dir / "north-korean-soldiers-russia.md").unlink()
    report = assistant.ingest()
    assert report.updated == [target.stem]
    assert report.removed == ["north-korean-soldiers-russia"]
    assert report.added == [] and len(report.unchanged) == 2
    texts = " ".join(t for t, _ in snapshot(assistant).values())
    assert "300 kilometres" in texts and "190 miles" not in texts
    assert "north-korean-soldiers-russia" not in {d.doc_id for d in assistant.documents()}


def test_chunk_ids_are_deterministic_across_stores(settings: Settings, tmp_path: Path) -> None:
    first = Assistant.from_settings(settings)
    first.ingest()
    second = Assistant.from_settings(settings.model_copy(update={"store_dir": tmp_path / "other"}))
    second.ingest()
    assert snapshot(first).keys() == snapshot(second).keys()


def test_bad_files_are_reported_and_the_rest_lands(assistant: Assistant, corpus_dir: Path) -> None:
    before = snapshot(assistant)
    (corpus_dir / "empty.txt").write_bytes(b"")
    (corpus_dir / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (corpus_dir / "corrupt.pdf").write_bytes(b"%PDF-1.7\n%broken\n1 0 obj <<")
    (corpus_dir / "new-story.md").write_text("---\ntitle: New story\n---\nThe new story says 42 drones were seen.\n")
    report = assistant.ingest()
    failed = {Path(error.path).name: error.reason for error in report.failed}
    assert set(failed) == {"empty.txt", "binary.txt", "corrupt.pdf"}
    assert "empty" in failed["empty.txt"] and "binary" in failed["binary.txt"] and "PDF" in failed["corrupt.pdf"]
    assert report.added == ["new-story"]
    after = snapshot(assistant)
    assert all(after[key] == value for key, value in before.items()), "nothing already stored changed"


def test_remove_document(assistant: Assistant) -> None:
    chunks_before = assistant.chunk_count()
    removed = assistant.remove("north-korean-soldiers-russia")
    assert removed > 0 and assistant.chunk_count() == chunks_before - removed
    assert assistant.remove("no-such-doc") == 0


def test_store_built_with_another_model_is_refused(assistant: Assistant, settings: Settings) -> None:
    # Only one model exists offline here; any other name must be refused before it is loaded.
    other = Assistant.from_settings(settings.model_copy(update={"embedding_model": str(Path(__file__).parent)}))
    with pytest.raises(StoreMismatchError, match="embedding_model"):
        other.documents()


def test_store_built_with_other_chunking_is_refused_until_rebuilt(assistant: Assistant, settings: Settings) -> None:
    chunks_before = assistant.chunk_count()
    changed = Assistant.from_settings(settings.model_copy(update={"chunk_max_chars": 300}))
    with pytest.raises(StoreMismatchError, match="chunk_max_chars.*--rebuild"):
        changed.chunk_count()
    report = changed.ingest(rebuild=True)
    assert report.embedded == 4 and changed.chunk_count() > chunks_before


def test_a_file_and_an_imported_article_cannot_take_each_others_id(assistant: Assistant, tmp_path: Path) -> None:
    articles = tmp_path / "articles.jsonl"
    rows = [
        {"id": "wire-story", "title": "Wire story", "text": "An imported wire story about the Kursk region."},
        {"id": "north-korean-soldiers-russia", "title": "Taken", "text": "This id belongs to a corpus file."},
    ]
    articles.write_text("".join(json.dumps(row) + "\n" for row in rows))
    before = snapshot(assistant)
    report = assistant.import_articles(articles)
    assert report.added == ["wire-story"]
    [refused] = report.failed
    assert refused.path == "imported article (no file)" and "north-korean-soldiers-russia.md" in refused.reason
    assert all(snapshot(assistant)[key] == value for key, value in before.items())  # the file's chunks are intact
    upload = tmp_path / "upload.md"
    upload.write_text("---\nid: wire-story\ntitle: Not the wire story\n---\nAn upload that claims the id.\n")
    imported = snapshot(assistant)
    report = assistant.ingest([upload])
    [refused] = report.failed
    assert "the stored imported article (no file)" in refused.reason and "`id:`" in refused.reason
    assert snapshot(assistant) == imported


def test_same_id_from_another_existing_file_is_refused(assistant: Assistant, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clash = elsewhere / "north-korean-soldiers-russia.md"
    clash.write_text("---\ntitle: Another story\n---\nA different story with the same file name.\n")
    before = snapshot(assistant)
    report = assistant.ingest([clash])
    assert report.embedded == 0
    [error] = report.failed
    assert error.path == str(clash.resolve()) and "same document id" in error.reason and "`id:`" in error.reason
    assert snapshot(assistant) == before


def test_a_moved_file_replaces_its_stored_copy(assistant: Assistant, corpus_dir: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    moved.mkdir()
    source = corpus_dir / "north-korean-soldiers-russia.md"
    target = moved / source.name
    target.write_text(source.read_text().replace("1,500 soldiers", "1,600 soldiers"))
    source.unlink()
    report = assistant.ingest([target])
    assert report.updated == ["north-korean-soldiers-russia"] and not report.failed


def test_a_moved_unchanged_file_is_not_removed_later(assistant: Assistant, corpus_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    source = corpus_dir / "north-korean-soldiers-russia.md"
    source.rename(other / source.name)
    assert assistant.ingest([other]).unchanged == ["north-korean-soldiers-russia"]
    report = assistant.ingest()  # corpus/ no longer has the file, but it lives on in other/
    assert report.removed == []
    assert "north-korean-soldiers-russia" in {d.doc_id for d in assistant.documents()}


def test_rebuild_with_a_bad_path_leaves_the_store_alone(assistant: Assistant, tmp_path: Path) -> None:
    before = snapshot(assistant)
    report = assistant.ingest([tmp_path / "typo"], rebuild=True)
    assert report.embedded == 0
    assert any("--rebuild" in error.reason and "left as it was" in error.reason for error in report.failed)
    assert snapshot(assistant) == before


def test_a_rebuild_by_another_process_does_not_break_a_reader(settings: Settings) -> None:
    reader = Assistant.from_settings(settings)
    reader.ingest()
    question = "How many North Korean troops are in Kursk?"
    before = reader.ask(question)
    writer = Assistant.from_settings(settings)  # as another process would: its own store handle
    assert writer.ingest(rebuild=True).embedded == 4
    after = reader.ask(question)  # the reader's collection handle is to the deleted collection
    assert after.text == before.text and after.citations == before.citations


def test_a_date_written_in_words_lists_filters_and_ranks_as_an_iso_date(assistant: Assistant, tmp_path: Path) -> None:
    reopened = tmp_path / "reopened.md"
    reopened.write_text("---\ntitle: Harbour news\npublished: 24 Oct 2024\n---\nThe harbour reopened on Monday.\n")
    closed = tmp_path / "closed.md"
    closed.write_text("---\ntitle: Harbour closed\npublished: 2024-09-02\n---\nThe harbour closed again on Friday.\n")
    report = assistant.ingest([reopened, closed])
    assert report.added and not report.warnings
    listed = {d.title: d.published for d in assistant.documents()}
    assert listed["Harbour news"] == "2024-10-24"
    answer = assistant.ask("When did the harbour reopen?", where=SearchFilter(since="2024-10-01"))
    assert answer.citations and answer.citations[0].published == "2024-10-24"
    assert "Monday" in answer.text
    ranked = assistant.passages("harbour")  # the fusion's recency features read these dates
    assert {p.chunk.published for p in ranked if p.chunk.title.startswith("Harbour")} == {"2024-10-24", "2024-09-02"}


def test_an_unreadable_date_is_stored_undated_with_a_warning_naming_the_file(
    assistant: Assistant, tmp_path: Path
) -> None:
    vague = tmp_path / "vague.md"
    vague.write_text("---\ntitle: Vague\npublished: sometime in autumn\n---\nThe harbour reopened.\n")
    report = assistant.ingest([vague])
    assert report.added == ["vague"] and not report.failed
    [warning] = report.warnings
    assert "vague.md" in warning and "YYYY-MM-DD" in warning and "1 warnings" in report.summary()
    assert {d.doc_id: d.published for d in assistant.documents()}["vague"] == ""


def test_an_import_of_several_groups_compacts_bm25_while_the_last_group_embeds(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.ingest.EMBEDDING_GROUP_CHUNKS", 1)  # one document per group: four groups
    built = Assistant.from_settings(settings)  # a new store, opened beside the chunking and model load
    report = built.ingest()
    assert not report.failed and len(report.added) == 4
    chunks = {document.doc_id: document.chunks for document in built.documents()}
    lexical = built.store.lexical
    # Folded into the saved base before the last group's write; only that group's rows wait.
    assert lexical.base_size == built.store.count() - chunks[report.added[-1]]
    assert lexical.pending == chunks[report.added[-1]]
    for doc_id in (report.added[0], report.added[-1]):
        title = next(document.title for document in built.documents() if document.doc_id == doc_id)
        assert doc_id in [p.chunk.doc_id for p in built.store.lexical_search(title, 3)]
