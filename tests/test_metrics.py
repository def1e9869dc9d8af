"""The metric functions against hand-computed cases."""

from __future__ import annotations

import pytest

from eval.metrics import (
    QuestionRecord,
    best_threshold,
    budget_curve,
    contains_answer,
    exact_match,
    f1,
    first_hit,
    hit_curve,
    hit_within_chars,
    markers_resolve,
    normalise,
    percentile,
    reciprocal_rank,
    summarise,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  U.S. “Army”!", "us army"),
        ("An apple, a day", "apple day"),
        ("1,500", "1500"),
        ("„Kursk“ «oblast» ‚region‘", "kursk oblast region"),
        ("Russia’s Far East", "russias far east"),
        ("Seoul—Pyongyang…", "seoulpyongyang"),
        ("  \t\n ", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "answers", "found"),
    [
        ("sent 1,500 soldiers", ["1,500"], True),
        ("sent 11,500 soldiers", ["1,500"], False),  # whole words only
        ("in Russia’s Far East.", ["Russia's Far East"], True),  # typographic vs straight apostrophe
        ("the “Buffalo Bills” player", ["Buffalo Bills"], True),
        ("anything", [], False),  # no accepted answers: never found
        ("anything", ["", "the"], False),  # answers that normalise to nothing match nothing
        ("Bills", ["Buffalo Bills", "Bills"], True),  # any accepted answer will do
    ],
)
def test_contains_answer(text: str, answers: list[str], found: bool) -> None:
    assert contains_answer(text, answers) is found


def test_first_hit_is_the_first_passage_with_the_answer_and_ties_keep_the_given_order() -> None:
    passages = ["no answer here", "1,500 troops", "again 1,500 troops"]
    assert first_hit(passages, ["1,500"]) == 2
    assert first_hit(["1,500 here", "1,500 there"], ["1,500"]) == 1
    assert first_hit(passages, []) is None
    assert first_hit([], ["1,500"]) is None


def test_an_answer_split_across_a_passage_boundary_is_not_found() -> None:
    passages = ["Seoul's spy agency said Pyongyang sent 1,", "500 troops to Russia, in the North"]
    assert first_hit(passages, ["1,500"]) is None
    assert not hit_within_chars(passages, ["1,500"], 4000)
    assert first_hit(["... in the North", "Korea's army ..."], ["North Korea"]) is None


def test_hit_within_chars_cuts_the_reading_at_the_budget() -> None:
    passages = ["a" * 90, "b" * 5 + " 1,500 troops"]  # "1,500" spans characters 96-101 of the reading
    assert hit_within_chars(passages, ["1,500"], 101)
    assert not hit_within_chars(passages, ["1,500"], 100)  # cut to "1,50"
    assert not hit_within_chars(passages, ["1,500"], 90)  # the second passage is never read
    assert not hit_within_chars(passages, [], 4000)


@pytest.mark.parametrize(
    ("text", "answer", "budget", "found"),
    [
        ("sent 15,000 troops", "15", 8, False),  # cut inside "15,000": "15," is not the number 15
        ("the Parisian press", "Paris", 9, False),  # cut inside "Parisian"
        ("the Parisian press", "the Parisian", 12, True),  # cut right after the word
        ("Paris\nis far", "Paris", 7, True),
    ],
)
def test_a_word_cut_by_the_budget_is_not_read(text: str, answer: str, budget: int, found: bool) -> None:
    assert hit_within_chars([text], [answer], budget) is found


def test_reciprocal_rank() -> None:
    assert reciprocal_rank(1) == 1.0
    assert reciprocal_rank(4) == 0.25
    assert reciprocal_rank(10) == 0.1
    assert reciprocal_rank(11) == 0.0  # beyond @10
    assert reciprocal_rank(None) == 0.0


@pytest.mark.parametrize(
    ("prediction", "answers", "em", "expected_f1"),
    [
        ("1,500", ["1,500"], 1.0, 1.0),
        ("The 1,500", ["1,500"], 1.0, 1.0),  # articles and punctuation do not count
        ("“Kim Yong-hyun”", ["Kim Yong-hyun"], 1.0, 1.0),
        # pred {1500, north, korean, soldiers} vs gold {1500, soldiers}: P 2/4, R 2/2 -> F1 2/3
        ("1,500 North Korean soldiers", ["1,500 soldiers"], 0.0, 2 / 3),
        # repeated tokens count once each: P 1/2, R 1/1 -> 2/3
        ("troops troops", ["troops"], 0.0, 2 / 3),
        # the best accepted answer wins (ties: same value either way)
        ("Buffalo Bills", ["Bills", "Buffalo Bills"], 1.0, 1.0),
        ("Buffalo", ["Buffalo Bills", "Buffalo Sabres"], 0.0, 2 / 3),
        ("", ["1,500"], 0.0, 0.0),  # declined an answerable question
        ("", [], 1.0, 1.0),  # declined an unanswerable question (SQuAD 2.0)
        ("Paris", [], 0.0, 0.0),  # answered an unanswerable question
        # accepted answers that normalise to nothing are dropped, as in the SQuAD 2.0 script
        ("", ["the", "Paris"], 0.0, 0.0),
        ("Paris", ["the", "Paris"], 1.0, 1.0),
        ("", ["the"], 1.0, 1.0),
    ],
)
def test_exact_match_and_f1(prediction: str, answers: list[str], em: float, expected_f1: float) -> None:
    assert exact_match(prediction, answers) == em
    assert f1(prediction, answers) == pytest.approx(expected_f1)


def test_markers_resolve_only_to_retrieved_passages() -> None:
    retrieved = {("doc-a", "passage one"), ("doc-b", "passage two")}
    cited = {1: ("doc-a", "passage one"), 2: ("doc-b", "passage two"), 3: ("doc-c", "not retrieved")}
    assert markers_resolve([1, 2], cited, retrieved)
    assert not markers_resolve([], cited, retrieved)  # an answer must cite something
    assert not markers_resolve([1, 4], cited, retrieved)  # [4] names no citation
    assert not markers_resolve([3], cited, retrieved)  # the cited passage was never retrieved


def test_percentile_nearest_rank_with_ties() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([5.0, 5.0, 5.0, 9.0], 50) == 5.0
    assert percentile([5.0, 5.0, 5.0, 9.0], 95) == 9.0
    assert percentile(list(map(float, range(1, 101))), 95) == 95.0


def record(
    answerable: bool = True,
    in_corpus: bool = True,
    first: int | None = 1,
    refused: bool = False,
    contains: bool = True,
    valid: bool = True,
    cited: int = 1,
    cited_correct: int = 1,
    doc_hit: bool | None = None,
    budget_hits: tuple[int, ...] = (4000,),
    total_ms: float = 10.0,
    em: float | None = None,
) -> QuestionRecord:
    return QuestionRecord(
        id="q",
        answerable=answerable,
        in_corpus=in_corpus,
        first_hit=first,
        budget_hits=budget_hits,
        doc_hit=doc_hit,
        refused=refused,
        answer_contains=contains,
        exact_match=float(contains) if em is None else em,
        f1=float(contains) if em is None else em,
        citations_valid=valid,
        cited=cited,
        cited_correct=cited_correct,
        confidence=0.5,
        timings_ms={"retrieve": 1.0, "answer": 2.0, "total": total_ms},
    )


def test_summarise_counts_each_rate_over_its_own_questions() -> None:
    records = [
        record(first=1, doc_hit=True),
        record(first=3, contains=False, cited=2, cited_correct=0, doc_hit=False, budget_hits=()),
        record(first=None, refused=True, contains=False, valid=False, cited=0, cited_correct=0, budget_hits=()),
        record(in_corpus=False, first=None, contains=False, cited_correct=0, budget_hits=()),  # left out of retrieval
        record(answerable=False, first=None, refused=True, contains=False, cited=0, cited_correct=0, em=1.0),
        record(answerable=False, first=None, contains=False, valid=False, cited=1, cited_correct=0),  # answered it
    ]
    metrics = summarise(records)
    assert (metrics["questions"], metrics["answerable"], metrics["unanswerable"]) == (6, 4, 2)
    assert metrics["retrieval_questions"] == 3
    assert metrics["answer_hit@1"] == round(1 / 3, 4)
    assert metrics["answer_hit@5"] == round(2 / 3, 4)
    assert metrics["mrr@10"] == round((1 + 1 / 3 + 0) / 3, 4)
    assert metrics["answer_hit@4000c"] == round(1 / 3, 4)
    assert metrics["doc_hit@5"] == 0.5  # only questions that name their documents
    assert metrics["answer_contains"] == 0.25
    assert metrics["false_refusal_rate"] == 0.25
    assert metrics["refusal_accuracy"] == 0.5
    # citations of answered questions whose answer is in the corpus: 1 + 2 given, 1 correct
    assert metrics["citation_precision"] == round(1 / 3, 4)
    # over every answer given (refusals excluded): 3 valid of 4
    assert metrics["citation_validity"] == 0.75
    # SQuAD 2.0 scores over every question: the declined unanswerable one counts as right
    assert metrics["exact_match"] == round(2 / 6, 4) and metrics["f1"] == round(2 / 6, 4)
    assert metrics["total_ms_p50"] == 10.0


def test_summarise_with_nothing_to_measure_gives_none_not_zero() -> None:
    metrics = summarise([record(answerable=False, first=None, refused=True, cited=0, cited_correct=0)])
    assert metrics["answer_hit@5"] is None
    assert metrics["answer_contains"] is None
    assert metrics["citation_precision"] is None
    assert metrics["citation_validity"] is None
    assert metrics["refusal_accuracy"] == 1.0
    assert summarise([])["total_ms_p50"] is None


def test_curves_for_plots() -> None:
    records = [record(first=1), record(first=3, budget_hits=()), record(in_corpus=False, first=None)]
    assert hit_curve(records, [1, 2, 3]) == [0.5, 0.5, 1.0]
    assert budget_curve(records, [4000]) == [0.5]
    assert hit_curve([], [1]) == [0.0]


def test_best_threshold_separates_answerable_from_unanswerable() -> None:
    scored = [(0.9, True, True), (0.7, True, True), (0.4, False, False), (0.2, False, False), (0.5, True, False)]
    threshold, accuracy = best_threshold(scored)
    assert 0.4 < threshold <= 0.7 and accuracy == 0.8


def test_best_threshold_takes_the_middle_of_equally_good_thresholds() -> None:
    # Wrong answers are wrong at any threshold; every threshold in (0.2, 0.9] gets 2 of 4 right.
    # Candidates 0.35, 0.55 and 0.75 tie; the middle one is taken.
    scored = [(0.9, True, True), (0.6, True, False), (0.5, True, False), (0.2, False, False)]
    threshold, accuracy = best_threshold(scored)
    assert accuracy == 0.5 and threshold == pytest.approx(0.55)


def test_report_cells_format_rates_times_and_counts() -> None:
    from eval.report import _cell

    assert _cell("answer_hit@5", 0.96875) == "0.969"
    assert _cell("retrieve_ms_p50", 1.0) == "1.0"
    assert _cell("ingest_chunks_per_s", 8901.04) == "8,901.0"
    assert _cell("index_chunks", 22090) == "22,090"
    assert _cell("refusal_accuracy", None) == "–"


def test_follow_up_accuracy_counts_only_questions_asked_after_earlier_turns() -> None:
    from dataclasses import replace

    records = [
        replace(record(), follow_up=True),
        replace(record(contains=False), follow_up=True),
        record(contains=False),
    ]
    metrics = summarise(records)
    assert metrics["follow_up_accuracy"] == 0.5
    assert metrics["answer_contains"] == round(1 / 3, 4)
    assert summarise([record()])["follow_up_accuracy"] is None
