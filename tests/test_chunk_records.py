"""The chunk records table beside an embedded store (rag/chunk_records.py): one row per chunk
version, so a replacement interrupted between the table and Chroma never shows the wrong text,
and stores written before the table still read their texts from Chroma."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.chunk_records import ChunkRecords
from rag.pipeline import Assistant
from rag.types import SearchFilter

META = {"doc_id": "d", "index": 0, "start": 0, "end": 5}


def test_a_new_version_is_kept_beside_the_stored_one_until_the_write_ends(tmp_path: Path) -> None:
    records = ChunkRecords(tmp_path / "records.sqlite3")
    records.put([("d:0", "old", "Old text.", META), ("d:1", "old", "Old two.", {**META, "index": 1})])
    records.put([("d:0", "new", "New text.", META)])
    exact, other = records.get({"d:0": "old", "d:1": "old"})
    assert exact == {"d:0": ("Old text.", META), "d:1": ("Old two.", {**META, "index": 1})} and other == {}
    exact, other = records.get({"d:0": "new", "d:1": "new"})
    assert exact == {"d:0": ("New text.", META)} and other == {"d:1": ("Old two.", {**META, "index": 1})}
    records.keep_only(["d"], {"d": "new"}, ["d:0"])  # the write ended: d now has one chunk
    assert records.get({"d:0": "old", "d:1": "old"}) == ({}, {"d:0": ("New text.", META)})
    records.keep_only(["d"], {}, ())  # removed
    assert records.get({"d:0": "new"}) == ({}, {})


def test_a_row_of_an_interrupted_replacement_is_not_read_for_the_stored_chunk(assistant: Assistant) -> None:
    store = assistant.store
    chunk_id, (text, meta) = next(iter(store.stored_records().items()))
    assert store.records is not None
    store.records.put([(chunk_id, "a version chroma never got", "Not the stored text.", meta)])
    store.forget_chunks()
    assert store.chunks([chunk_id])[chunk_id].text == text
    assert store.stored_records()[chunk_id][0] == text


def test_the_texts_are_kept_out_of_chroma_and_read_from_the_table(assistant: Assistant) -> None:
    got = assistant.store.collection.get(include=["documents"])
    assert got["ids"] and not any(got["documents"] or [])
    answer = assistant.ask("How many troops did NIS report?")
    assert answer.citations and "3,000" in answer.text


def test_a_store_written_before_the_table_reads_its_texts_from_chroma(
    assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written as an older Citeline did (texts in Chroma, no table), read by this one."""
    settings = assistant.settings.model_copy(update={"store_dir": assistant.settings.store_dir.parent / "older"})
    older = Assistant.from_settings(settings)
    monkeypatch.setattr(older.store, "records", None)
    older.ingest()
    assert not (settings.store_dir / f"records-{settings.collection}.sqlite3").exists()
    monkeypatch.undo()
    reopened = Assistant.from_settings(settings)
    assert reopened.store.records is not None
    assert reopened.store.stored_records() == older.store.stored_records()
    answer = reopened.ask("How many troops did NIS report?")
    assert answer.citations and "3,000" in answer.text
    source = next(iter(reopened.store.stored_records().values()))[1]["source"]
    vector = reopened.embedder.embed_query("troops")
    filtered = reopened.store.search(vector, 2, SearchFilter(sources=(source,), since="1900-01-01"))
    assert filtered and all(passage.chunk.text for passage in filtered)
