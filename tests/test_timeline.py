"""Timelines: a question about how a figure changed gets its figures in date order, cited."""

from __future__ import annotations

import json

import pytest

from rag.__main__ import main
from rag.config import Settings
from rag.pipeline import Assistant
from rag.questions import asks_for_latest
from rag.timeline import count_question, figure_value, is_timeline_question, unit_of


@pytest.mark.parametrize(
    ("question", "about_change"),
    [
        ("How has the estimate of North Korean troops in Russia changed?", True),
        ("What did officials say over time about the troops?", True),
        ("How did the number of strikes evolve?", True),
        ("How many troops did NIS report?", False),
        ("Who is the Kremlin spokesman?", False),
    ],
)
def test_questions_about_change_are_told_apart(question: str, about_change: bool) -> None:
    assert is_timeline_question(question) is about_change


def test_the_figure_followed_is_asked_as_a_count() -> None:
    assert count_question("How has the estimate of North Korean troops in Russia changed?") == (
        "How many North Korean troops in Russia?"
    )
    assert count_question("How have the figures for casualties changed over time?") == "How many casualties?"


@pytest.mark.parametrize(
    ("figure", "value"),
    [("about 11,000", 11_000.0), ("1.2 million", 1_200_000.0), ("11,000 to 12,000", 11_000.0), ("many", None)],
)
def test_figure_values(figure: str, value: float | None) -> None:
    assert figure_value(figure) == value


def test_the_unit_is_the_figures_own_word_or_the_one_after_it() -> None:
    assert unit_of("10,000 troops", "“10,000 troops and technical personnel”") == "troops"
    assert unit_of("10,000", "There are 10,000 North Korean troops in Kursk.") == "troops"
    assert unit_of("1.2 million", "an army of 1.2 million soldiers") == "soldiers"


def test_ask_json_gives_a_dated_cited_timeline(settings: Settings, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("CITELINE_STORE_DIR", str(settings.store_dir))
    monkeypatch.setenv("CITELINE_CORPUS_DIR", str(settings.corpus_dir))
    assert main(["ingest"]) == 0
    capsys.readouterr()
    assert main(["ask", "--json", "How has the estimate of North Korean troops in Russia changed?"]) == 0
    answer = json.loads(capsys.readouterr().out)
    timeline = answer["timeline"]
    assert len(timeline) >= 3 and len({point["source"] for point in timeline}) >= 2
    assert [point["date"] for point in timeline] == sorted(point["date"] for point in timeline)
    cited = {c["n"]: c for c in answer["citations"]}
    for point in timeline:
        assert cited[point["n"]]["published"] == point["date"] and point["figure"] in cited[point["n"]]["sentence"]
        assert f"[{point['n']}]" in answer["answer"]
    assert answer["short_answer"] == timeline[-1]["figure"] and "(latest)" in answer["answer"]
    # Zelensky's figure, in an article of 2024-10-24, was given "at the NATO summit last week"
    assert any(point["refers_to"] == "2024-10-17" for point in timeline) and "(said of 2024-10-17)" in answer["answer"]


@pytest.mark.parametrize("word", ["now", "currently", "latest"])
def test_a_question_for_the_latest_figure_puts_the_newest_first_and_says_as_of_when(
    assistant: Assistant, word: str
) -> None:
    question = {
        "now": "How many North Korean troops are in Kursk now?",
        "currently": "How many North Korean troops are currently in Kursk?",
        "latest": "What is the latest estimate of how many North Korean troops are in Kursk?",
    }[word]
    answer = assistant.ask(question)
    assert answer.text.startswith("The latest figure, as of 2024-11-18, is about 11,000.")
    assert answer.short_answer == "about 11,000" and answer.citations[0].published == "2024-11-18"
    plain = assistant.ask("How many North Korean troops are in Kursk?")
    assert not plain.text.startswith("The latest figure")


def test_asks_for_latest() -> None:
    assert asks_for_latest("Who is currently leading?") and asks_for_latest("the most recent figure")
    assert not asks_for_latest("How many troops did NIS report?")
