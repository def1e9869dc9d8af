"""The chunk records table beside an embedded store (rag/chunk_records.py): one row per chunk
version, so a replacement interrupted between the table and Chroma never shows the wrong text,
and stores written before the table still read their texts from Chroma."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rag.chunk_records import ChunkRecords
from rag.lexical import sentence_terms
from rag.pipeline import Assistant
from rag.types import SearchFilter

META = {"doc_id": "d", "index": 0, "start": 0, "end": 5}


def test_a_new_version_is_kept_beside_the_stored_one_until_the_write_ends(tmp_path: Path) -> None:
    records = ChunkRecords(tmp_path / "records.sqlite3")
    records.put([("d:0", "old", "Old text.", META), ("d:1", "old", "Old two.", {**META, "index": 1})])
    records.put([("d:0", "new", "New text.", META)])
    exact, other, _ = records.get({"d:0": "old", "d:1": "old"})
    assert exact == {"d:0": ("Old text.", META), "d:1": ("Old two.", {**META, "index": 1})} and other == {}
    exact, other, _ = records.get({"d:0": "new", "d:1": "new"})
    assert exact == {"d:0": ("New text.", META)} and other == {"d:1": ("Old two.", {**META, "index": 1})}
    records.keep_only(["d"], {"d": "new"}, ["d:0"])  # the write ended: d now has one chunk
    assert records.get({"d:0": "old", "d:1": "old"}) == ({}, {"d:0": ("New text.", META)}, {})
    records.keep_only(["d"], {}, ())  # removed
    assert records.get({"d:0": "new"}) == ({}, {}, {})


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


TEXT = "The NIS said 3,000 troops were sent. Officials in Seoul did not confirm it!"


def test_a_row_keeps_the_terms_of_each_sentence_of_its_text(tmp_path: Path) -> None:
    records = ChunkRecords(tmp_path / "records.sqlite3")
    records.put([("d:0", "v", TEXT, META)])
    _, _, kept = records.get({"d:0": "v"})
    assert kept == {"d:0": sentence_terms(TEXT)}
    assert kept["d:0"][0] == ("nis", "3000", "troop", "sent") and len(kept["d:0"]) == 2
    assert records.get({"d:0": "another version"})[2] == {}  # only the version asked for brings its terms
    assert records.without_sentence_terms() == 0


def test_a_table_made_before_the_terms_column_gains_it_and_its_rows_are_filled(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite3"
    with sqlite3.connect(path) as older:  # the table as Citeline made it before it kept terms
        older.executescript(
            "CREATE TABLE chunk (id TEXT NOT NULL, version TEXT NOT NULL, doc_id TEXT NOT NULL, "
            "text TEXT NOT NULL, meta TEXT NOT NULL, PRIMARY KEY (id, version));"
        )
        older.execute("INSERT INTO chunk VALUES ('d:0', 'v', 'd', ?, ?)", (TEXT, '{"doc_id": "d"}'))
    records = ChunkRecords(path)
    assert records.get({"d:0": "v"}) == ({"d:0": (TEXT, {"doc_id": "d"})}, {}, {})
    records.put([("d:1", "v", "Another chunk.", META)])  # written as before, terms and all
    assert records.without_sentence_terms() == 1
    progress: list[int] = []
    assert records.fill_sentence_terms(progress.append) == 1 and progress == [1]
    assert records.get({"d:0": "v"})[2] == {"d:0": sentence_terms(TEXT)}
    assert records.without_sentence_terms() == 0 and records.fill_sentence_terms() == 0


def test_terms_stored_by_another_recipe_are_not_read_but_filled_again(tmp_path: Path) -> None:
    records = ChunkRecords(tmp_path / "records.sqlite3")
    records.put([("d:0", "v", TEXT, META)])
    with sqlite3.connect(records.path) as db:
        db.execute("""UPDATE chunk SET terms = '["an older recipe",[["nis"]]]'""")
    assert records.get({"d:0": "v"})[2] == {} and records.without_sentence_terms() == 1
    assert records.fill_sentence_terms() == 1
    assert records.get({"d:0": "v"})[2] == {"d:0": sentence_terms(TEXT)}


def test_chunks_read_from_a_store_carry_their_stored_sentence_terms(assistant: Assistant) -> None:
    store = assistant.store
    chunk_ids = list(store.stored_records())[:3]
    store.forget_chunks()
    read = store.chunks(chunk_ids)
    assert len(read) == 3
    assert all(chunk.sentence_terms == sentence_terms(chunk.text) for chunk in read.values())


def test_doctor_notes_a_store_without_sentence_terms_and_repair_stores_them(
    assistant: Assistant, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.__main__ import main

    records = assistant.store.records
    assert records is not None
    with sqlite3.connect(records.path) as db:  # as a store made before the terms were kept
        db.execute("UPDATE chunk SET terms = NULL")
    chunks = assistant.chunk_count()
    monkeypatch.setenv("CITELINE_STORE_DIR", str(assistant.settings.store_dir))
    monkeypatch.setenv("CITELINE_CORPUS_DIR", str(assistant.settings.corpus_dir))
    assert main(["doctor"]) == 0  # a matter of speed: the store still holds every file as it is
    out = capsys.readouterr().out
    assert f"{chunks} chunks have no stored sentence terms" in out and "doctor --repair" in out
    assert "ok: the store" in out
    assert main(["doctor", "--repair"]) == 0
    assert f"stored the sentence terms of {chunks} chunks" in capsys.readouterr().out
    assert records.without_sentence_terms() == 0
    assert main(["doctor"]) == 0
    assert capsys.readouterr().out.startswith("ok: the store")
