"""The learned answer scorer: its span candidates and choices (pure), the shipped model's
checks, and a scorer trained on a tiny fixture set with the real model and store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eval.datasets import GoldQuestion
from eval.metrics import contains_answer
from eval.train_answerer import (
    QuestionTable,
    _read_cache,
    _write_cache,
    choose_span_threshold,
    choose_threshold,
    fit,
    fit_spans,
    question_table,
)
from rag import answer_model
from rag.answer_features import FEATURES
from rag.answer_model import AnswerModel, AnswerModelError, check_meta
from rag.answer_spans import SPAN_FEATURES, candidate_spans
from rag.answering import ExtractiveAnswerer
from rag.config import DEFAULT_EMBEDDING_MODEL
from rag.pipeline import Assistant
from rag.tree_model import TreeEnsemble


def _spans(sentence: str, question: str) -> list[str]:
    return [sentence[s:e] for s, e in candidate_spans(sentence, question)]


@pytest.mark.parametrize(
    ("sentence", "question", "offered", "never"),
    [
        (
            "Denmark's Queen Margrethe II announced in her New Year's Eve speech that she would abdicate.",
            "Which European royal announced their surprise abdication in a New Year's Eve speech?",
            "Queen Margrethe II",
            "New Year's Eve",
        ),
        (
            "Littler lost the final to Luke Humphries at Alexandra Palace on Wednesday.",
            "Who beat Luke Littler to become world champion?",
            "Luke Humphries",
            "Littler",
        ),
        (
            "The storm, named Henk, brought winds of up to 94mph.",
            "What is the name of the storm that pummelled Britain?",
            "Henk",
            "storm",
        ),
        ("Officials said 1,500 soldiers had arrived.", "How many soldiers had arrived?", "1,500 soldiers", "arrived"),
    ],
)
def test_a_sentence_offers_the_answer_as_a_span_and_never_the_question_s_own_words(
    sentence: str, question: str, offered: str, never: str
) -> None:
    spans = _spans(sentence, question)
    assert offered in spans
    assert never not in spans


def test_the_threshold_declines_at_most_the_budget_of_answerable_questions() -> None:
    best = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6, 0.4, 0.05]
    threshold = choose_threshold(best, budget=0.2)
    assert sum(b < threshold for b in best) == 2
    assert choose_threshold(best, budget=0.0) == 0.0


def test_a_short_answer_is_given_only_above_the_probability_where_it_beats_the_sentence() -> None:
    # (span probability, span F1, whole sentence F1): confident spans are right, doubtful ones wrong.
    choices = [(0.9, 1.0, 0.2), (0.8, 1.0, 0.1), (0.3, 0.0, 0.3), (0.2, 0.0, 0.25)]
    threshold, mean_f1 = choose_span_threshold(choices)
    assert 0.3 < threshold <= 0.8
    assert mean_f1 == pytest.approx((1.0 + 1.0 + 0.3 + 0.25) / 4)


def test_feature_tables_survive_the_cache(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tables = [
        QuestionTable(
            f"q{i}",
            "2024-01-05",
            rng.random((n, len(FEATURES))),
            (rng.random(n) > 0.5).astype(float),
            rng.random((m, len(SPAN_FEATURES))),
            rng.random(m),
            np.zeros(m, dtype=np.int64),
            rng.random(1 if m else 0),
        )
        for i, (n, m) in enumerate([(5, 3), (0, 0), (7, 0)])
    ]
    _write_cache(tmp_path / "cache.npz", tables)
    again = _read_cache(tmp_path / "cache.npz")
    assert [t.id for t in again] == ["q0", "q1", "q2"]
    for before, after in zip(tables, again):
        for field in ("rows", "labels", "span_rows", "span_f1", "span_sentence", "sentence_f1"):
            assert np.array_equal(getattr(before, field), getattr(after, field))


def test_the_shipped_scorer_loads_offline_and_fits_the_feature_code() -> None:
    model = answer_model.load(DEFAULT_EMBEDDING_MODEL)
    assert 0.0 < model.threshold < 1.0
    assert model.meta["features"] == list(FEATURES)
    assert model.sentence_trees.features == len(FEATURES)
    assert model.meta["dataset"] == "realtimeqa-2024"


def test_a_scorer_trained_otherwise_is_refused_with_what_to_do() -> None:
    meta = dict(answer_model.load(DEFAULT_EMBEDDING_MODEL).meta)
    with pytest.raises(AnswerModelError, match="not 'other-model'.*python -m eval.train_answerer"):
        check_meta(meta, "other-model", Path("rag/models"))
    with pytest.raises(AnswerModelError, match="other features.*python -m eval.train_answerer"):
        check_meta({**meta, "feature_code": "0" * 16}, DEFAULT_EMBEDDING_MODEL, Path("rag/models"))
    with pytest.raises(AnswerModelError, match="cannot be read"):
        answer_model.load(DEFAULT_EMBEDDING_MODEL, Path("/nonexistent"))


# Written for this test from the shipped corpus: a tiny training set, not the seed gold set.
FIXTURE = [
    ("How many soldiers did the intelligence service say North Korea sent?", ["1,500"]),
    ("Who is the spokesman of the Kremlin?", ["Dmitry Peskov", "Peskov"]),
    ("What is the range of the missiles supplied to Ukraine?", ["190 miles"]),
    ("Which region of Russia are the North Korean troops in?", ["Kursk"]),
    ("Who is the deputy press secretary of the Pentagon?", ["Sabrina Singh"]),
    ("How many troops did the Pentagon say were in Kursk Oblast?", ["10,000"]),
    ("Who met the South Korean defense minister?", ["Lloyd Austin", "Austin"]),
    ("How large is the North Korean army?", ["1.2 million"]),
]
TINY = {"min_data_in_leaf": 3, "min_data_in_bin": 1, "bagging_fraction": 1.0, "feature_fraction": 1.0}


def test_a_scorer_trained_on_a_tiny_set_ranks_the_answering_sentence_first_and_declines_off_topic(
    assistant: Assistant,
) -> None:
    tables = []
    for number, (question, answers) in enumerate(FIXTURE):
        table = assistant.answerer.candidate_table(question, assistant.passages(question))
        labels = np.array([contains_answer(c.text, answers) for c in table.found], dtype=float)
        assert labels.any(), question
        gold = GoldQuestion(f"fixture-{number}", question, tuple(answers), date="2024/11/01")
        tables.append(question_table(gold, table.found, table.rows, labels))
    booster, span_booster = fit(tables, rounds=60, params=TINY), fit_spans(tables, rounds=60, params=TINY)
    best = [float(booster.predict(t.rows).max()) for t in tables]
    model = AnswerModel(
        TreeEnsemble.from_text(booster.model_to_string()),
        TreeEnsemble.from_text(span_booster.model_to_string()),
        choose_threshold(best, budget=0.25),
        0.0,
        {},
    )
    answerer = ExtractiveAnswerer(assistant.embedder, None, 2, assistant.idf, model=lambda: model)

    question = "How many soldiers did the intelligence service say North Korea sent?"
    ranked = answerer.score_sentences(question, assistant.passages(question))
    assert "1,500" in ranked[0].text
    off_topic = "Best pancake recipe with blueberries?"
    assert answerer.answer(off_topic, assistant.passages(off_topic)).refused
