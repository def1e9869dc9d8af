"""Pure: what the learned fusion knows about each candidate passage of a hybrid search.

The candidates are the union of the dense and the BM25 lists. Each gets its place and score on
either side (missing where that side did not find it), how well it covers the question's terms,
above all the rare ones, how new it is among the candidates, where it sits in its article, and
a few signals about the query itself (how specific it is, how sure each side is, how much they
agree), so that the ranker learns when to trust which side instead of weighing them the same
for every question. A change here invalidates the trained ranker (rag/fusion_model.py).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from rag.answer_types import expected_type, typed_spans
from rag.lexical import sentence_terms, terms
from rag.types import Chunk, Passage

RRF_CONSTANT = 60
RARE_TERMS = 2  # the question's rarest terms, whose presence is a feature of its own
AGREEMENT_DEPTH = 10
QUESTION_TYPES = (None, "number", "date", "name")  # rag.answer_types.expected_type, as a code
MISSING = math.nan  # LightGBM treats NaN as "not found by this side"

FUSION_FEATURES = (
    "dense_score",
    "dense_rank",
    "dense_gap",
    "lexical_score",
    "lexical_rank",
    "lexical_ratio",
    "found_by_both",
    "rrf",
    "coverage",
    "rare_coverage",
    "title_coverage",
    "bigram_share",
    "best_sentence_coverage",
    "question_type",
    "has_answer_type",
    "date_rank",
    "days_behind_newest",
    "chunk_index",
    "document_candidates",
    "document_best_dense",
    "document_best_lexical",
    "query_terms",
    "query_rarity",
    "dense_spread",
    "lexical_spread",
    "agreement",
)


@dataclass(frozen=True)
class Candidate:
    """One passage found by either side: its 1-based rank on each (None: that side did not
    find it) and its score on each (the other side's score read separately, when known)."""

    passage: Passage
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None


def candidates(
    dense: Sequence[Passage],
    lexical: Sequence[Passage],
    similarity_of: Mapping[str, float] | None = None,
    bm25_of: Mapping[str, float] | None = None,
) -> list[Candidate]:
    """The union of both lists, in order of first appearance (dense first). A passage only one
    side found gets the other side's score from `similarity_of` or `bm25_of` when given."""
    dense_rank = {p.chunk.id: rank for rank, p in reversed(list(enumerate(dense, start=1)))}
    lexical_rank = {p.chunk.id: rank for rank, p in reversed(list(enumerate(lexical, start=1)))}
    similarity = {**(similarity_of or {}), **{p.chunk.id: p.score for p in dense}}
    bm25 = {**(bm25_of or {}), **{p.chunk.id: p.score for p in lexical}}
    union = {p.chunk.id: p for p in (*reversed(lexical), *reversed(dense))}  # the first appearance wins
    order = dict.fromkeys(p.chunk.id for p in (*dense, *lexical))
    return [
        Candidate(union[key], dense_rank.get(key), similarity.get(key), lexical_rank.get(key), bm25.get(key))
        for key in order
    ]


def _day(published: str) -> int | None:
    try:
        return date.fromisoformat(published[:10]).toordinal()
    except ValueError:
        return None


def _weighted_share(present: set[str], weights: dict[str, float]) -> float:
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in present) / total if total else 0.0


def _spread(scores: Sequence[float], ratio: bool) -> float:
    """How far the side's 10th score falls from its first: a confident side has a large gap."""
    if not scores:
        return MISSING
    tenth = scores[min(AGREEMENT_DEPTH, len(scores)) - 1]
    if ratio:
        return tenth / scores[0] if scores[0] > 0 else MISSING
    return scores[0] - tenth


def _bigrams(words: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(words, words[1:]))


def _document_best(found: Sequence[Candidate], score: Callable[[Candidate], float | None]) -> dict[str, float]:
    best: dict[str, float] = {}
    for candidate in found:
        value = score(candidate)
        if value is not None:
            doc_id = candidate.passage.chunk.doc_id
            best[doc_id] = max(best.get(doc_id, -math.inf), value)
    return best


@dataclass(frozen=True)
class QueryTerms:
    """What the text columns need of a question: its terms' IDF weights, its bigrams, its
    rarest terms and the type of answer it asks for."""

    text: str
    weights: dict[str, float]
    bigrams: set[tuple[str, str]]
    rare: set[str]
    kind: str | None


def query_terms(query: str, idf: Callable[[str], float]) -> QueryTerms:
    found = terms(query)
    weights = {term: idf(term) for term in set(found)}
    rare = set(sorted(weights, key=lambda term: (-weights[term], term))[:RARE_TERMS])
    return QueryTerms(query, weights, _bigrams(found), rare, expected_type(query))


@functools.lru_cache(maxsize=4096)
def _title_terms(title: str) -> frozenset[str]:
    return frozenset(terms(title))


TextRow = tuple[float, float, float, float, float, float]


def text_features(question: QueryTerms, chunk: Chunk) -> TextRow:
    """A candidate's columns that depend only on its text and the question's (coverage,
    rare_coverage, title_coverage, bigram_share, best_sentence_coverage, has_answer_type): most
    of the features' cost, so a search computes them for each passage as soon as it is read."""
    weights, rare = question.weights, question.rare
    sentences = chunk.sentence_terms if chunk.sentence_terms is not None else sentence_terms(chunk.text)
    words = [term for sentence in sentences for term in sentence]
    present = set(words)
    title = _title_terms(chunk.title)
    return (
        _weighted_share(present, weights),
        len(rare & (present | title)) / len(rare) if rare else 0.0,
        _weighted_share(title, weights),
        len(question.bigrams & _bigrams(words)) / len(question.bigrams) if question.bigrams else 0.0,
        max((_weighted_share(set(sentence), weights) for sentence in sentences), default=0.0),
        MISSING if question.kind is None else float(bool(typed_spans(question.kind, chunk.text, question.text))),
    )


def features(
    query: str,
    found: Sequence[Candidate],
    idf: Callable[[str], float],
    text_rows: Mapping[str, TextRow] | None = None,
) -> np.ndarray:
    """One row of FUSION_FEATURES per candidate (float32; NaN where a score is not known).
    `text_rows`: text_features already computed, by chunk id (the others are computed here)."""
    if not found:
        return np.zeros((0, len(FUSION_FEATURES)), dtype=np.float32)
    question = query_terms(query, idf)
    weights = question.weights
    dense_scores = sorted(
        (c.dense_score for c in found if c.dense_rank is not None and c.dense_score is not None), reverse=True
    )
    lexical_scores = sorted(
        (c.lexical_score for c in found if c.lexical_rank is not None and c.lexical_score is not None), reverse=True
    )
    top_dense = {c.passage.chunk.id for c in found if c.dense_rank is not None and c.dense_rank <= AGREEMENT_DEPTH}
    top_lexical = {
        c.passage.chunk.id for c in found if c.lexical_rank is not None and c.lexical_rank <= AGREEMENT_DEPTH
    }
    query_row = (
        len(weights),
        sum(weights.values()) / len(weights) if weights else 0.0,
        _spread(dense_scores, ratio=False),
        _spread(lexical_scores, ratio=True),
        len(top_dense & top_lexical) / AGREEMENT_DEPTH,
    )
    days = [_day(c.passage.chunk.published) for c in found]
    known_days = sorted({d for d in days if d is not None}, reverse=True)
    date_rank = {day: rank for rank, day in enumerate(known_days, start=1)}
    per_document = Counter(c.passage.chunk.doc_id for c in found)
    best_dense = _document_best(found, lambda c: c.dense_score)
    best_lexical = _document_best(found, lambda c: c.lexical_score)
    top_dense_score = dense_scores[0] if dense_scores else MISSING
    top_lexical_score = lexical_scores[0] if lexical_scores and lexical_scores[0] > 0 else MISSING
    known_rows = text_rows or {}
    rows = []
    for candidate, day in zip(found, days):
        chunk = candidate.passage.chunk
        text_row = known_rows.get(chunk.id) or text_features(question, chunk)
        dense_score = MISSING if candidate.dense_score is None else candidate.dense_score
        lexical_score = MISSING if candidate.lexical_score is None else candidate.lexical_score
        rrf = sum(1.0 / (RRF_CONSTANT + r) for r in (candidate.dense_rank, candidate.lexical_rank) if r is not None)
        rows.append(
            (
                dense_score,
                MISSING if candidate.dense_rank is None else candidate.dense_rank,
                top_dense_score - dense_score,
                lexical_score,
                MISSING if candidate.lexical_rank is None else candidate.lexical_rank,
                lexical_score / top_lexical_score,
                float(candidate.dense_rank is not None and candidate.lexical_rank is not None),
                rrf,
                *text_row[:5],
                QUESTION_TYPES.index(question.kind),
                text_row[5],
                MISSING if day is None else date_rank[day],
                MISSING if day is None else known_days[0] - day,
                chunk.index,
                per_document[chunk.doc_id],
                best_dense.get(chunk.doc_id, MISSING),
                best_lexical.get(chunk.doc_id, MISSING),
                *query_row,
            )
        )
    return np.asarray(rows, dtype=np.float32)
