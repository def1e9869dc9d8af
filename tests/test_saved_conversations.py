"""Saved conversations (real SQLite in tmp_path) and their exports; no model is loaded."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from rag.citations import byline, outlet_of
from rag.errors import InputError
from rag.export import conversation_json, conversation_markdown
from rag.saved_conversations import ConversationLog, ConversationLogError, title_of
from rag.types import Answer, Citation, SourceRef, TimelinePoint

PASSAGE = "The NIS first said 1,500 soldiers. It later said the number had grown to 3,000. Russia denies it."


def nis_answer() -> Answer:
    first, second = PASSAGE.index("The NIS"), PASSAGE.index("It later")
    citations = (
        Citation(1, "nis", "NIS report", "2024-10-18", "", "", PASSAGE, 0, first, second - 1, 0.9),
        Citation(
            2,
            "nis",
            "NIS report",
            "2024-10-18",
            "",
            "https://www.example.com/nis",
            PASSAGE,
            0,
            second,
            PASSAGE.index(" Russia"),
            0.8,
            (SourceRef("copy", "Copy", "2024-10-19", "AP", ""),),
        ),
    )
    return Answer(
        text="The NIS first said 1,500 soldiers. [1] It later said the number had grown to 3,000. [2]",
        refused=False,
        citations=citations,
        query="How many troops did NIS report?",
        short_answer="3,000",
        timeline=(TimelinePoint("2024-10-18", 1500.0, "1,500", "soldiers", "NIS", 1),),
    )


def test_a_turn_is_saved_and_reopens_as_it_was_in_a_new_log(tmp_path: Path) -> None:
    path = tmp_path / "store" / "conversations.sqlite3"
    log = ConversationLog(path)
    conversation = log.start("How many troops did NIS report?")
    log.add_turn(conversation, "How many troops did NIS report?", nis_answer())

    reopened = ConversationLog(path)  # as after a restart
    [turn] = reopened.turns(conversation)
    assert turn.question == "How many troops did NIS report?"
    assert turn.shown == nis_answer()  # text, citations, copies, short answer and timeline
    assert turn.shown.citations[1].sentence == "It later said the number had grown to 3,000."


def test_conversations_are_listed_newest_first_renamed_and_deleted(tmp_path: Path) -> None:
    log = ConversationLog(tmp_path / "c.sqlite3")
    older = log.start("First question")
    newer = log.start("Second question")
    assert [c.id for c in log.conversations()] == [newer, older]
    log.add_turn(older, "First question", nis_answer())  # added to: now the newest
    assert [(c.id, c.turns) for c in log.conversations()] == [(older, 1), (newer, 0)]

    log.rename(older, "  NIS   figures ")
    assert log.get(older).title == "NIS figures"
    with pytest.raises(InputError, match="title cannot be empty"):
        log.rename(older, "   ")

    log.delete(older)
    assert [c.id for c in log.conversations()] == [newer] and log.turns(older) == []
    with pytest.raises(InputError, match="no longer exists"):
        log.add_turn(older, "Again?", nis_answer())


def test_two_sessions_writing_at_once_lose_no_turn(tmp_path: Path) -> None:
    log = ConversationLog(tmp_path / "c.sqlite3")
    ids = [log.start(f"Session {i}") for i in range(2)]

    def ask_ten(conversation: str) -> None:
        for i in range(10):
            log.add_turn(conversation, f"Question {i}", nis_answer())

    threads = [threading.Thread(target=ask_ten, args=(c,)) for c in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for conversation in ids:
        assert [t.question for t in log.turns(conversation)] == [f"Question {i}" for i in range(10)]


def test_a_long_first_question_is_titled_at_a_word() -> None:
    title = title_of("How many " + "North Korean troops " * 10 + "?")
    assert title == "How many " + "North Korean troops " * 3 + "North…"  # 75 characters: no word cut
    assert title_of("  Who\nsaid it?  ") == "Who said it?"


def test_an_unknown_outlet_is_the_articles_site_or_nothing() -> None:
    assert outlet_of("AP", "https://www.example.com/a") == "AP"
    assert outlet_of("", "https://www.example.com/a") == "example.com"
    assert outlet_of("", "") == "" and outlet_of("", "javascript:alert(1)") == ""
    assert byline("2024-11-04", "", "https://www.example.com/a") == "2024-11-04 · example.com"
    assert byline("", "", "") == ""


def test_the_markdown_export_holds_questions_answers_and_every_cited_sentence(tmp_path: Path) -> None:
    log = ConversationLog(tmp_path / "c.sqlite3")
    conversation = log.start("How many troops did NIS report?")
    log.add_turn(conversation, "How many troops did NIS report?", nis_answer())
    log.add_turn(conversation, "And later?", nis_answer())
    summary, turns = log.get(conversation), log.turns(conversation)

    markdown = conversation_markdown(summary, turns)
    assert markdown.startswith("# How many troops did NIS report?\n")
    assert "## 1. How many troops did NIS report?" in markdown and "## 2. And later?" in markdown
    assert markdown.count(nis_answer().text) == 2
    assert "2. NIS report, example.com, 2024-10-18 <https://www.example.com/nis>" in markdown
    assert "   > It later said the number had grown to 3,000." in markdown
    assert "   > The NIS first said 1,500 soldiers." in markdown

    exported = json.loads(conversation_json(summary, turns))
    assert [t["question"] for t in exported["turns"]] == ["How many troops did NIS report?", "And later?"]
    assert exported["turns"][0]["answer"] == nis_answer().to_json()


def test_a_file_that_is_not_a_conversations_database_is_named_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    path.write_bytes(b"not a database, but someone's notes")
    with pytest.raises(ConversationLogError, match="conversations.sqlite3: the saved conversations cannot be used"):
        ConversationLog(path).conversations()
    assert path.read_bytes() == b"not a database, but someone's notes"
