"""The learned fusion's pure parts: candidates and their features, the trainer's figures and
fixed fusions, a deterministic fit, and the shipped model's checks (no embedding model loaded)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from eval import train_fusion
from eval.train_fusion import QuestionCandidates, figures, fit, rrf_scorer, side_scorer
from rag import fusion_model
from rag.fusion_features import FUSION_FEATURES, candidates, features, query_terms, text_features
from rag.lexical import sentence_terms, terms
from rag.lexical_index import LexicalIndex, LexicalRow
from rag.retrieval import newest_first, ranked, reciprocal_rank_fusion
from rag.types import Chunk, Passage


def _passage(chunk_id: str, text: str, score: float, published: str = "2024-11-01", title: str = "") -> Passage:
    doc_id = chunk_id.split(":")[0]
    return Passage(Chunk(chunk_id, doc_id, int(chunk_id.split(":")[1]), text, 0, len(text), title, published), score)


TROOPS = _passage("wire:0", "The NIS said North Korea sent 1,500 troops to Russia.", 0.71, "2024-10-18", "NIS briefing")
KURSK = _passage("paper:2", "Troops reached Kursk, officials in Kyiv said.", 0.55, "2024-11-04", "Kursk")
MARKETS = _passage("wire:5", "Seoul's stock market rose on Friday.", 0.20, "", "Markets")


def _column(rows: np.ndarray, name: str) -> list[float]:
    return rows[:, FUSION_FEATURES.index(name)].tolist()


def test_candidates_are_the_union_in_order_of_first_appearance_with_both_sides_scores() -> None:
    dense = [TROOPS, KURSK]
    lexical = [replace(KURSK, score=7.5), replace(MARKETS, score=2.0)]
    found = candidates(dense, lexical, similarity_of={"wire:5": 0.2}, bm25_of={"wire:0": 3.0})
    assert [c.passage.chunk.id for c in found] == ["wire:0", "paper:2", "wire:5"]
    assert [(c.dense_rank, c.lexical_rank) for c in found] == [(1, None), (2, 1), (None, 2)]
    assert [(c.dense_score, c.lexical_score) for c in found] == [(0.71, 3.0), (0.55, 7.5), (0.2, 2.0)]


def test_features_mark_what_a_side_did_not_find_and_measure_the_question_s_terms() -> None:
    found = candidates([TROOPS, KURSK], [replace(KURSK, score=7.5), MARKETS])
    idf = {"nis": 3.0, "troop": 2.0, "report": 1.0}
    rows = features("How many troops did the NIS report?", found, idf.__getitem__)
    assert rows.shape == (3, len(FUSION_FEATURES)) and rows.dtype == np.float32
    assert math.isnan(_column(rows, "lexical_rank")[0]) and math.isnan(_column(rows, "dense_rank")[2])
    assert _column(rows, "found_by_both") == [0.0, 1.0, 0.0]
    # 'nis' and 'troops', the two rarest terms, are both in the first passage; only 'troops' in the second.
    assert _column(rows, "coverage")[:2] == pytest.approx([5 / 6, 2 / 6])
    assert _column(rows, "rare_coverage")[:2] == [1.0, 0.5]
    assert _column(rows, "date_rank")[:2] == [2.0, 1.0] and math.isnan(_column(rows, "date_rank")[2])
    assert _column(rows, "days_behind_newest")[:2] == [17.0, 0.0]
    assert _column(rows, "question_type")[0] == 1.0 and _column(rows, "has_answer_type")[:2] == [1.0, 0.0]
    assert features("anything", [], lambda term: 1.0).shape == (0, len(FUSION_FEATURES))


def test_text_columns_computed_ahead_are_the_ones_used_and_equal_those_computed_in_place() -> None:
    found = candidates([TROOPS, KURSK], [replace(KURSK, score=7.5), MARKETS])
    idf = {"nis": 3.0, "troop": 2.0, "report": 1.0}.__getitem__
    query = "How many troops did the NIS report?"
    question = query_terms(query, idf)
    ahead = {c.passage.chunk.id: text_features(question, c.passage.chunk) for c in found[:2]}
    assert np.array_equal(features(query, found, idf, ahead), features(query, found, idf), equal_nan=True)
    # A row given for a candidate is taken as it is, not computed again.
    marked = features(query, found, idf, {TROOPS.chunk.id: (0.25, 0.5, 0.0, 0.0, 0.125, 0.0)})
    assert _column(marked, "coverage")[0] == 0.25 and _column(marked, "has_answer_type")[0] == 0.0
    assert _column(marked, "coverage")[1] == pytest.approx(2 / 6)


def test_text_columns_read_a_chunk_s_stored_sentence_terms_which_equal_those_of_its_text() -> None:
    idf = {"nis": 3.0, "troop": 2.0, "report": 1.0}.__getitem__
    question = query_terms("How many troops did the NIS report?", idf)
    for passage in (TROOPS, KURSK, MARKETS):
        kept = replace(passage.chunk, sentence_terms=sentence_terms(passage.chunk.text))
        assert text_features(question, kept) == text_features(question, passage.chunk)
    # The stored terms are what is read: terms naming neither 'nis' nor 'troop' cover nothing.
    elsewhere = replace(TROOPS.chunk, sentence_terms=(("seoul", "market"),))
    assert text_features(question, elsewhere)[0] == 0.0 < text_features(question, TROOPS.chunk)[0]


def test_the_trainer_s_rrf_orders_candidates_as_the_retriever_s_fusion_does() -> None:
    dense = [TROOPS, KURSK, MARKETS]
    lexical = [replace(MARKETS, score=9.0), replace(KURSK, score=7.5)]
    found = candidates(dense, lexical)
    rows = features("troops in Kursk", found, lambda term: 1.0)
    weights = (1.0, 2.0, 1.5)
    fused = reciprocal_rank_fusion([ranked(dense), ranked(lexical), newest_first([*dense, *lexical])], weights, 60)
    order = np.argsort(-rrf_scorer(*weights)(rows), kind="stable")
    assert [found[i].passage.chunk.id for i in order] == [p.chunk.id for p in fused]


def _question(labels: list[int], lengths: list[int], rows: np.ndarray | None = None) -> QuestionCandidates:
    n = len(labels)
    if rows is None:
        rows = np.full((n, len(FUSION_FEATURES)), np.nan, dtype=np.float32)
        rows[:, FUSION_FEATURES.index("dense_rank")] = np.arange(1, n + 1)
    return QuestionCandidates("q", "2024-01-05", rows, np.array(labels, float), np.array(lengths), np.ones(n), True)


def test_figures_count_a_hit_only_when_the_answer_starts_within_the_reading_budget() -> None:
    dense_order = side_scorer("dense_rank")
    assert figures([_question([0, 0, 1], [1000, 1000, 500])], dense_order)["answer_hit@4000c"] == 1.0
    late = figures([_question([0, 0, 1], [2500, 1600, 500])], dense_order)
    assert late["answer_hit@4000c"] == 0.0 and late["mrr@10"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures([_question([0, 0, 0], [10, 10, 10])], dense_order)["mrr@10"] == 0.0


def test_a_fit_is_deterministic_and_learns_which_feature_marks_the_answer() -> None:
    generator = np.random.default_rng(0)
    questions = []
    for number in range(60):
        rows = generator.normal(size=(12, len(FUSION_FEATURES))).astype(np.float32)
        labels = np.zeros(12)
        labels[number % 12] = 1
        rows[:, FUSION_FEATURES.index("coverage")] = labels + generator.normal(scale=0.2, size=12)
        questions.append(
            QuestionCandidates(f"q{number}", "2024-01-05", rows, labels, np.full(12, 800), np.ones(12), True)
        )
    first, second = fit(questions[:50], rounds=30), fit(questions[:50], rounds=30)
    assert first.model_to_string() == second.model_to_string()
    assert figures(questions[50:], train_fusion.model_scorer(first))["mrr@10"] > 0.9


def test_bm25_scores_of_other_ids_come_from_the_same_pass(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical")
    texts = {"a": "North Korea sent troops to Russia.", "b": "Seoul markets rose.", "c": "Troops reached Kursk."}
    index.add(LexicalRow(key, tuple(terms(text)), "Wire", 20241101) for key, text in texts.items())
    index.settle(force=True)
    index.add([LexicalRow("d", tuple(terms("More troops went to Kursk.")), "Wire", 20241102)])  # a recent row
    query = terms("troops in Kursk")
    found, scored = index.search_scoring(query, 1, also=["a", "b", "d"])
    everything = dict(index.search(query, 10))
    assert found == index.search(query, 1)
    assert scored == pytest.approx({"a": everything["a"], "b": 0.0, "d": everything["d"]})
    # Asked after the search (the dense side runs beside it), and for an id never indexed.
    _, score_of = index.scored_search(query, 1)
    assert score_of(["d", "a", "nowhere"]) == pytest.approx(
        {"d": everything["d"], "a": everything["a"], "nowhere": 0.0}
    )


def test_the_shipped_ranker_loads_offline_and_fits_the_feature_code() -> None:
    model = fusion_model.load("all-MiniLM-L6-v2")
    assert model.meta["features"] == list(FUSION_FEATURES)
    assert model.scores(np.zeros((2, len(FUSION_FEATURES)), dtype=np.float32)).shape == (2,)
    assert (fusion_model.MODELS_DIR / fusion_model.MODEL_FILE).stat().st_size < 1_000_000


def test_a_ranker_trained_otherwise_is_refused_with_what_to_do(tmp_path: Path) -> None:
    meta = json.loads((fusion_model.MODELS_DIR / fusion_model.META_FILE).read_text())
    with pytest.raises(fusion_model.FusionModelError, match="embedding model .*python -m eval.train_fusion"):
        fusion_model.check_meta(meta, "another-model", tmp_path)
    with pytest.raises(fusion_model.FusionModelError, match="other features.*CITELINE_FUSION=rrf"):
        fusion_model.check_meta({**meta, "feature_code": "0" * 16}, meta["embedding_model"], tmp_path)
    with pytest.raises(fusion_model.FusionModelError, match="cannot be read"):
        fusion_model.load("all-MiniLM-L6-v2", tmp_path)
