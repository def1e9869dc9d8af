"""The deterministic follow-up rewrite, case by case."""

from __future__ import annotations

import pytest

from rag.conversation import MAX_ADDED, MAX_QUERY_CHARS, figures_already_given, is_follow_up, standalone_query
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
        (
            "What about the later South Korean intelligence briefing?",
            "How many troops did NIS report? the later South Korean intelligence briefing",
        ),
        (
            "And the number after the later briefing?",
            "How many troops did NIS report? the number after the later briefing",
        ),
    ],
)
def test_a_follow_up_naming_no_speaker_place_or_time_takes_the_previous_question_as_its_frame(
    question: str, expected: str
) -> None:
    assert standalone_query(question, [NIS]) == expected


# Before issue 13 item 4 the first three kept NIS and added the new speaker after the question
# ("How many troops did NIS report? according to the Pentagon"): the old speaker's name
# outweighed the new one and the NIS sentence was quoted again.
@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("And according to the Pentagon?", "How many troops did the Pentagon report?"),
        ("What about Zelensky?", "How many troops did Zelensky report?"),
        ("and   what about   the Pentagon's figure?", "How many troops did the Pentagon report? figure"),
        ("What about Kursk, according to Singh?", "How many troops did Singh report? Kursk"),
    ],
)
def test_an_elliptical_follow_up_that_names_a_new_speaker_takes_the_old_ones_place(
    question: str, expected: str
) -> None:
    assert standalone_query(question, [NIS]) == expected


@pytest.mark.parametrize(
    ("previous", "question", "expected"),
    [
        # a new place, with its preposition, takes the old one's place; the rest of the frame stays
        (
            "How many troops did NIS say were in Russia?",
            "What about in Kursk?",
            "How many troops did NIS say were in Kursk?",
        ),
        ("In Kursk, how many troops did NIS count?", "And in Belgorod?", "In Belgorod, how many troops did NIS count?"),
        # a new time likewise
        (
            "How many troops did NIS report in October?",
            "And in November?",
            "How many troops did NIS report in November?",
        ),
        ("How many troops did NIS report in October?", "And later?", "How many troops did NIS report later?"),
        # with no such part in the frame, the follow-up is added after it, as before
        ("How many troops did NIS report?", "What about in Kursk?", "How many troops did NIS report? in Kursk"),
        ("How many troops did NIS report?", "And later?", "How many troops did NIS report? later"),
        # where and when the old speaker said it goes with the speaker
        ("How many troops did Zelensky say at the NATO summit were being prepared?", "And according to the Pentagon?",
         "How many troops did the Pentagon say were being prepared?"),
        ("How many troops did the Pentagon say on Nov. 4, 2024 were in Kursk?", "What about Singh?",
         "How many troops did Singh say were in Kursk?"),
    ],
)
def test_an_elliptical_follow_up_replaces_the_place_or_time_it_names(
    previous: str, question: str, expected: str
) -> None:
    assert standalone_query(question, [Turn(previous, "1,500 soldiers [1]")]) == expected


# Conversations of eval/gold/seed.jsonl (seed-focus-*, and seed-conv-06/08): each follow-up moves
# to another speaker, place, time, quantity or attribute of the same story, and its own words lead.
FOCUS_CASES = [
    (
        "How many soldiers did South Korea's National Intelligence Service say North Korea had sent to Russia "
        "for training?",
        "The NIS said North Korea had sent 1,500 soldiers, including special forces fighters.",
        "And according to the Pentagon?",
        "How many soldiers did the Pentagon say North Korea had sent to Russia for training?",
    ),
    (
        "How did Kremlin spokesman Dmitry Peskov describe the claims that North Korean personnel were sent to Russia?",
        "Peskov dismissed them as “another deception.”",
        "What did North Korea call them at the UN General Assembly?",
        "What did North Korea call them at the UN General Assembly? (claims, North Korean, personnel)",
    ),
    (
        "How many North Korean troops did the Pentagon estimate were in Russia in early November?",
        "Ryder said officials estimated there were 11,000 to 12,000 North Korean troops in Russia.",
        "What about in Kursk Oblast?",
        "How many North Korean troops did the Pentagon estimate were in Kursk Oblast in early November?",
    ),
    (
        "On Nov. 4, 2024, how many North Korean troops did the Pentagon say were in Russia's Kursk Oblast?",
        "There were 10,000 North Korean troops in Kursk Oblast.",
        "And in Russia as a whole?",
        "On Nov. 4, 2024, how many North Korean troops did the Pentagon say were in Russia as a whole?",
    ),
    (
        "According to Sabrina Singh, how many North Korean troops have likely moved into Russia's Kursk region?",
        "Singh said about 11,000 North Korean troops had likely moved into the Kursk region.",
        "And how does the U.S. view North Korea, according to her?",
        "how does the U.S. view North Korea, according to her? (Sabrina Singh)",
    ),
    (
        "What are Russian troops training the North Korean forces in?",
        "Infantry tactics, operating with unmanned aerial vehicles, artillery tactics and trench-clearing.",
        "And what would they become if they engaged in combat support operations against Ukraine?",
        "what would they become if they engaged in combat support operations against Ukraine? "
        "(Russian, troops, training)",
    ),
    (
        "What is the maximum range of ATACMS?",
        "About 190 miles.",
        "And where have the Russians moved their airfields?",
        "where have the Russians moved their airfields? (maximum, range, ATACMS)",
    ),
    (
        "What do Ukraine and South Korea claim about North Korean soldiers?",
        "They claim North Korean soldiers are being sent to Russia for training with the aim of being deployed "
        "in Ukraine.",
        "What did Russia and North Korea say?",
        "What did Russia and North Korea say? (North Korean, soldiers)",
    ),
    (
        "According to Austin, where has Putin gone tin-cupping to get weapons?",
        "Austin said Putin has gone tin-cupping to get weapons from North Korea and Iran.",
        "And what did he say Putin will not do in Ukraine?",
        "what did he say Putin will not do in Ukraine? (Austin)",
    ),
    (
        "Has the Pentagon confirmed that the North Korean troops in Kursk have engaged in combat with "
        "Ukrainian troops?",
        "No. Singh said the Pentagon has not confirmed it, though it expects them to be engaged in combat operations.",
        "Is there evidence that more of them are entering Russia?",
        "Is there evidence that more of them are entering Russia? (North Korean, troops, Kursk)",
    ),
    (
        "How many North Korean troops did the Pentagon say on Nov. 4, 2024 were in Russia's Kursk Oblast?",
        "The Pentagon said there were 10,000 North Korean troops in Kursk Oblast.",
        "When did they enter Russia?",
        "When did they enter Russia? (North Korean, troops, Russia's Kursk Oblast)",
    ),
    (
        "How many North Korean troops and technical personnel did Zelensky say at the NATO summit were being prepared?",
        "Zelensky said 10,000 troops and technical personnel were being prepared.",
        "And according to the Pentagon's early-November estimate?",
        "How many North Korean troops and technical personnel did the Pentagon say were being prepared? "
        "early-November estimate",
    ),
    (
        "On Nov. 4, 2024, how many North Korean troops did the Pentagon say were in Russia's Kursk Oblast?",
        "The Pentagon said there were 10,000 North Korean troops in Kursk Oblast.",
        "What about two weeks later, according to Sabrina Singh?",
        "Two weeks later, how many North Korean troops did Sabrina Singh say were in Russia's Kursk Oblast?",
    ),
    # Questions that stand on their own are left as they are.
    (
        "How many North Korean units did Zelensky say Russia was training?",
        "Zelensky said Russia was training two North Korean units.",
        "How many personnel did each brigade have?",
        "How many personnel did each brigade have?",
    ),
]


@pytest.mark.parametrize(("previous", "answer", "question", "expected"), FOCUS_CASES)
def test_a_follow_up_that_changes_focus_is_led_by_its_own_words(
    previous: str, answer: str, question: str, expected: str
) -> None:
    assert standalone_query(question, [Turn(previous, answer)]) == expected


def test_a_follow_up_with_a_pronoun_carries_the_previous_names_numbers_and_words() -> None:
    query = standalone_query("When did they arrive?", [NIS])
    assert query.startswith("When did they arrive? (")
    for carried in ("NIS", "troops", "North Korea", "1,500"):
        assert carried in query
    carried_items = query[query.index("(") + 1 : -1].split(", ")
    assert "1" not in carried_items  # the answer's citation marker [1] is not carried


def test_and_how_many_keeps_its_own_frame_and_gains_the_subject_not_the_old_speaker() -> None:
    # Before issue 13 item 4 NIS was carried too, and outweighed Zelensky.
    assert standalone_query("And how many did Zelensky say?", [NIS]) == "how many did Zelensky say? (troops)"


def test_a_speech_question_with_nothing_said_about_takes_the_earlier_subject() -> None:
    assert is_follow_up("What did the Kremlin say?")
    assert standalone_query("What did the Kremlin say?", [NIS]) == "What did the Kremlin say? (troops)"
    assert standalone_query("What did the Kremlin say?", []) == "What did the Kremlin say?"


def test_how_many_of_them_does_not_carry_the_figure_already_given() -> None:
    query = standalone_query("How many of them were wounded?", [NIS])
    assert query.startswith("How many of them were wounded? (") and "troops" in query and "NIS" in query
    assert "1,500" not in query
    assert "1,500" in standalone_query("When did they arrive?", [NIS])  # not asking for a figure


def test_a_person_pronoun_with_its_own_subject_carries_the_previous_speaker_only() -> None:
    history = [Turn("According to Austin, how many troops has North Korea sent?", "About 10,000 [1]")]
    assert standalone_query("What did he say about Putin?", history) == "What did he say about Putin? (Austin)"
    ryder = "Air Force Maj. Gen. Pat Ryder, the Pentagon press secretary. [1]"
    who = [Turn("Who is the Pentagon press secretary?", ryder)]
    assert standalone_query("What did he say about Kursk?", who) == "What did he say about Kursk? (Gen, Pat Ryder)"


def test_a_follow_up_of_a_follow_up_reaches_back_to_the_first_question() -> None:
    history = [NIS, Turn("And according to the Pentagon?", "About 10,000 soldiers [1]")]
    # Before issue 13 item 4: "How many troops did NIS report? according to the Pentagon Zelensky".
    assert standalone_query("What about Zelensky?", history) == "How many troops did Zelensky report?"
    history = [NIS, Turn("What about the later briefing?", "3,000 soldiers [1]")]
    assert standalone_query("And in Kursk?", history) == "How many troops did NIS report? the later briefing in Kursk"


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


NAMES = [
    "Volodymyr Zelensky", "Sabrina Singh", "Lloyd Austin", "Dmitry Peskov", "Pat Ryder", "Antony Blinken",
    "Jens Stoltenberg", "Kim Jong Un", "Vladimir Putin", "Sergei Shoigu", "Sergei Lavrov", "Yoon Suk Yeol",
    "Joe Biden", "Kamala Harris", "Emmanuel Macron", "Olaf Scholz", "Rishi Sunak", "Recep Erdogan",
    "Narendra Modi", "Xi Jinping",
]  # fmt: skip


@pytest.mark.parametrize("first", ["What is the situation in the region?", "How many troops did NIS report?"])
@pytest.mark.parametrize("history_holds", ["questions as asked", "rewritten queries"])
def test_twenty_what_about_follow_ups_keep_the_query_bounded(first: str, history_holds: str) -> None:
    """Issue 15: each "What about <name>?" used to add the name after all the earlier ones."""
    history = [Turn(first, "1,500 soldiers [1]")]
    for name in NAMES:
        query = standalone_query(f"What about {name}?", history)
        assert len(query) <= MAX_QUERY_CHARS and name in query and query.startswith(first[:15])
        asked = f"What about {name}?" if history_holds == "questions as asked" else query
        history.append(Turn(asked, f"{name} said 1,000 [1]"))
    if history_holds == "questions as asked":  # the new name takes the place of the one before
        assert query in ("What is the situation in the region? Xi Jinping", "How many troops did Xi Jinping report?")


def test_an_earlier_follow_ups_words_give_way_to_a_new_one_of_the_same_kind() -> None:
    history = [Turn("What is the situation in the region?", "Tense [1]"), Turn("What about Zelensky?", "Calm [1]")]
    assert standalone_query("What about Singh?", history) == "What is the situation in the region? Singh"
    history = [NIS, Turn("What about the later briefing?", "3,000 [1]"), Turn("And in Kursk?", "2,000 [1]")]
    assert standalone_query("And in Belgorod?", history) == (
        "How many troops did NIS report? the later briefing in Belgorod"
    )
    assert standalone_query("And the later briefing?", history) == (  # not carried twice
        "How many troops did NIS report? in Kursk the later briefing"
    )


def test_at_most_max_added_earlier_follow_ups_are_kept() -> None:
    history = [Turn("What is the situation in the region?", "Tense [1]")]
    for topic in ("the drones", "the missiles", "the tanks", "the artillery", "the ships"):
        query = standalone_query(f"And {topic}?", history)
        history.append(Turn(f"And {topic}?", "Some [1]"))
    assert query == "What is the situation in the region? the tanks the artillery the ships"
    assert MAX_ADDED == 3  # the newest and the two before it


def test_a_pronoun_follow_up_carries_no_more_than_the_bound() -> None:
    ordinals = ["First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth"]
    names = ", ".join(f"General Someone Of The {word} Mechanised Infantry Brigade" for word in ordinals)
    previous = Turn(f"Where did {names} train?", "In the east [1]")
    query = standalone_query("When did they arrive?", [previous])
    assert len(query) <= MAX_QUERY_CHARS
    assert query.startswith("When did they arrive? (General Someone Of The First Mechanised Infantry Brigade, ")
