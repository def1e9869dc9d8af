"""Many people at once: one shared Assistant under threads, another process changing the store,
and several chat sessions with an upload in between."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from rag.config import Settings
from rag.pipeline import Assistant
from rag.types import Answer, Document

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")

QUESTIONS = [
    "How many troops did NIS report?",
    "Who did Lloyd Austin meet with at the Pentagon?",
    "Who is the Kremlin spokesman who dismissed the claims about North Korean troops?",
    "How many North Korean troops are likely to have moved into the Kursk region, according to Sabrina Singh?",
    "What is the maximum range of ATACMS?",
    "When did Russia and North Korea sign their defense pact?",
    "How large is North Korea's army?",
    "When did the harbour reopen?",  # answered only while the extra document is stored
]
HARBOUR = Document(
    id="harbour-reopens",
    title="Harbour reopens after the storm",
    text="The harbour at Port Ellis reopened on Friday after a week of storm damage repairs. "
    "Harbour master Ines Duarte said 14 ships were waiting to dock.",
    source="Coast Wire",
    published="2024-11-20",
    content_hash="harbour-v1",
)


def key(answer: Answer) -> tuple[object, ...]:
    """What a user sees of an answer (its timings aside)."""
    return (
        answer.text,
        answer.short_answer,
        answer.refused,
        tuple((c.doc_id, c.start, c.end) for c in answer.citations),
    )


def test_eight_sessions_ask_while_a_ninth_ingests_and_removes(assistant: Assistant) -> None:
    assistant.ingest_documents([HARBOUR])
    with_harbour = {q: key(assistant.ask(q)) for q in QUESTIONS}
    assistant.remove(HARBOUR.id)
    without = {q: key(assistant.ask(q)) for q in QUESTIONS}
    assert with_harbour[QUESTIONS[-1]] != without[QUESTIONS[-1]]  # the writer's changes are visible to readers

    stop = time.monotonic() + 30
    errors: list[BaseException] = []
    seen: dict[str, set[tuple[object, ...]]] = {q: set() for q in QUESTIONS}
    changes = 0

    def ask(question: str) -> None:
        try:
            while time.monotonic() < stop:
                answer = key(assistant.ask(question))
                assert answer in (with_harbour[question], without[question]), question
                seen[question].add(answer)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    def change() -> None:
        nonlocal changes
        try:
            while time.monotonic() < stop:
                assistant.ingest_documents([HARBOUR])
                assistant.remove(HARBOUR.id)
                changes += 2
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(q,)) for q in QUESTIONS] + [threading.Thread(target=change)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert changes >= 4 and all(seen.values())
    stored = {i: str(m["doc_hash"]) for i, m in zip(*_ids_and_metadatas(assistant))}
    assert assistant.store.lexical.versions() == stored  # the BM25 index holds exactly Chroma's chunks


def _ids_and_metadatas(assistant: Assistant) -> tuple[list[str], list[dict[str, object]]]:
    page = assistant.store.collection.get(include=["metadatas"])
    return page["ids"], [dict(m or {}) for m in page["metadatas"] or []]


def test_a_document_replaced_by_another_process_with_as_many_chunks_is_cited_anew(
    assistant: Assistant, settings: Settings, tmp_path: Path
) -> None:
    article = tmp_path / "drones.md"
    article.write_text(
        "---\ntitle: Drone report\n---\nThe drone report says 77 drones crossed the border on Tuesday.\n"
    )
    assistant.ingest([article])
    question = "How many drones crossed the border on Tuesday?"
    assert "77 drones" in assistant.ask(question).citations[0].sentence
    chunks = assistant.chunk_count()

    article.write_text(article.read_text().replace("77", "88"))
    environment = {
        **os.environ,
        "CITELINE_STORE_DIR": str(settings.store_dir),
        "CITELINE_CORPUS_DIR": str(settings.corpus_dir),
    }
    done = subprocess.run(
        [sys.executable, "-m", "rag", "ingest", str(article)], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert assistant.chunk_count() == chunks  # the same number of chunks, under the same ids

    answer = assistant.ask(question)
    assert "88 drones" in answer.citations[0].sentence
    lexical = assistant.store.lexical_search("88 drones", 1)
    assert lexical and "88 drones" in lexical[0].chunk.text


def _in_thread(work: AppTest) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work.run()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _compiling_one_at_a_time(monkeypatch) -> None:  # noqa: ANN001
    """AppTest compiles the script afresh on every run (a server compiles it once, for all its
    sessions), and CPython 3.11's AST conversion is not safe in two threads at once: sessions
    started together failed now and then with "SystemError: AST constructor recursion depth
    mismatch" (python/cpython#106905). The script is still compiled and run in each thread."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache

    compiling = threading.Lock()
    compile_script = ScriptCache.get_bytecode

    def one_at_a_time(cache: ScriptCache, script_path: str) -> object:
        with compiling:
            return compile_script(cache, script_path)

    monkeypatch.setattr(ScriptCache, "get_bytecode", one_at_a_time)


def test_two_sessions_ask_while_a_third_uploads(settings: Settings, monkeypatch) -> None:  # noqa: ANN001
    _compiling_one_at_a_time(monkeypatch)
    monkeypatch.setenv("CITELINE_STORE_DIR", str(settings.store_dir))
    monkeypatch.setenv("CITELINE_CORPUS_DIR", str(settings.corpus_dir))
    sessions = [AppTest.from_file(APP, default_timeout=180) for _ in range(3)]
    sessions[0].run()  # the first start indexes the corpus; the others share its Assistant
    for session in sessions[1:]:
        session.run()
    first, second, uploader = sessions
    upload = b"---\ntitle: Harbour report\n---\nThe harbour at Port Ellis reopened on Friday with 14 ships waiting.\n"
    uploader.sidebar.file_uploader[0].set_value([("harbour.md", upload, "text/markdown")])
    uploader.sidebar.button(key="add_uploads").click()
    first.chat_input[0].set_value("How many troops did NIS report?")
    second.chat_input[0].set_value("What is the maximum range of ATACMS?")
    running = [_in_thread(session) for session in (uploader, first, second)]
    for thread, errors in running:
        thread.join()
        assert not errors, errors
    assert not any(session.exception for session in sessions)
    assert "1,500" in " ".join(md.value for md in first.chat_message[-1].markdown)
    assert "190 miles" in " ".join(md.value for md in second.chat_message[-1].markdown)

    deadline = time.monotonic() + 120
    while not uploader.sidebar.success:  # the worker embeds it in the background
        assert time.monotonic() < deadline, "the upload was not indexed in time"
        time.sleep(0.2)
        uploader.run()
    assert "1 documents embedded" in uploader.sidebar.success[0].value
    first.chat_input[0].set_value("How many ships were waiting when the harbour at Port Ellis reopened?").run()
    assert "14 ships" in " ".join(md.value for md in first.chat_message[-1].markdown)
