"""The deterministic follow-up rewrite, case by case."""

from __future__ import annotations

import pytest

from rag.conversation import figures_already_given, is_follow_up, standalone_query
from rag.types import Turn

NIS = Turn(
    "How many troops did NIS report?",
    "South Korea’s National Intelligence Service (NIS) announced that North Korea had sent 1,500 soldiers [1]",
)


@pytest.mark.parametrize(
    "question",
    ["How many soldiers were in Kursk?", "Who is Lloyd Austin?", "What did the Pentagon say that week about Kursk?"],
)
def test_a_question_that_stands_on_its_own_is_unchanged(question: str) -> None:
    assert not is_follow_up(question)
    assert standalone_query(question, [NIS]) == question


def test_without_history_nothing_is_rewritten() -> None:
    assert standalone_query("And according to the Pentagon?", []) == "And according to the Pentagon?"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("And according to the Pentagon?", "How many troops did NIS report? according to the Pentagon"),
        ("What about Zelensky?", "How many troops did NIS report? Zelensky"),
        ("and   what about   the Pentagon's figure?", "How many troops did NIS report? the Pentagon's figure"),
    ],
)
def test_an_elliptical_follow_up_takes_the_previous_question_as_its_frame(question: str, expected: str) -> None:
    assert standalone_query(question, [NIS]) == expected


def test_a_follow_up_with_a_pronoun_carries_the_previous_names_numbers_and_words() -> None:
    query = standalone_query("When did they arrive?", [NIS])
    assert query.startswith("When did they arrive? (")
    for carried in ("NIS", "troops", "North Korea", "1,500"):
        assert carried in query
    carried_items = query[query.index("(") + 1 : -1].split(", ")
    assert "1" not in carried_items  # the answer's citation marker [1] is not carried


def test_and_how_many_keeps_its_own_frame_and_gains_the_subject() -> None:
    query = standalone_query("And how many did Zelensky say?", [NIS])
    assert query.startswith("how many did Zelensky say? (")
    assert "troops" in query and "NIS" in query


def test_a_follow_up_of_a_follow_up_reaches_back_to_the_first_question() -> None:
    history = [NIS, Turn("And according to the Pentagon?", "About 10,000 soldiers [1]")]
    query = standalone_query("What about Zelensky?", history)
    assert query == "How many troops did NIS report? according to the Pentagon Zelensky"


def test_that_and_this_count_as_pronouns_only_at_the_end() -> None:
    assert is_follow_up("When was that?")
    assert not is_follow_up("Did the Pentagon say that troops moved?")


def test_an_elliptical_follow_up_asks_for_a_figure_other_than_the_one_given() -> None:
    assert figures_already_given("And according to the Pentagon?", [NIS]) == ["1,500"]
    assert figures_already_given("What about Zelensky?", [NIS]) == ["1,500"]
    assert figures_already_given("When did they arrive?", [NIS]) == []  # a question of its own
    assert figures_already_given("And its maximum range?", [NIS]) == []  # an attribute, not another source
    assert figures_already_given("And according to the Pentagon?", []) == []


def test_only_the_figure_an_answer_led_with_counts_as_given() -> None:
    listed = Turn(
        "How many troops did NIS report?",
        "The sources give different figures:\n- 1,500 soldiers, NIS, 2024-10-18: ... [1]\n- 3,000 soldiers, ... [2]",
    )
    assert figures_already_given("What about the later briefing?", [listed]) == ["1,500"]


def test_and_its_asks_for_an_attribute_of_what_the_last_answer_named() -> None:
    history = [
        Turn("Which missile system has the U.S. supplied to Ukraine?", "Army Tactical Missile Systems, or ATACMS. [1]")
    ]
    assert standalone_query("And its maximum range?", history) == (
        "What is its maximum range? (Army Tactical Missile Systems, ATACMS)"
    )


def test_and_its_takes_what_the_answer_named_that_the_question_did_not() -> None:
    answer = (
        "Over the course of presidential drawdown authorities, the United States has been supplying Ukraine "
        "with weapons, including Army Tactical Missile Systems, or ATACMS. [1]"
    )
    history = [Turn("Which missile system has the U.S. supplied to Ukraine?", answer)]
    assert standalone_query("And its maximum range?", history) == (
        "What is its maximum range? (Army Tactical Missile Systems, ATACMS)"
    )
