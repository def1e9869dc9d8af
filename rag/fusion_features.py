"""Pure: what the learned fusion knows about each candidate passage of a hybrid search.

The candidates are the union of the dense and the BM25 lists. Each gets its place and score on
either side (missing where that side did not find it), how well it covers the question's terms,
above all the rare ones, how new it is among the candidates, where it sits in its article, and
a few signals about the query itself (how specific it is, how sure each side is, how much they
agree), so that the ranker learns when to trust which side instead of weighing them the same
for every question. A change here invalidates the trained ranker (rag/fusion_model.py).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from rag.answer_types import expected_type, typed_spans
from rag.lexical import terms
from rag.types import Passage

RRF_CONSTANT = 60
RARE_TERMS = 2  # the question's rarest terms, whose presence is a feature of its own
AGREEMENT_DEPTH = 10
QUESTION_TYPES = (None, "number", "date", "name")  # rag.answer_types.expected_type, as a code
# A rough sentence split, enough for "the best sentence's coverage" (cheaper than rag.chunking's).
_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+[\"'”’)]*|$)")
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


def features(query: str, found: Sequence[Candidate], idf: Callable[[str], float]) -> np.ndarray:
    """One row of FUSION_FEATURES per candidate (float32; NaN where a score is not known)."""
    if not found:
        return np.zeros((0, len(FUSION_FEATURES)), dtype=np.float32)
    query_terms = terms(query)
    weights = {term: idf(term) for term in set(query_terms)}
    query_bigrams = _bigrams(query_terms)
    rare = set(sorted(weights, key=lambda term: (-weights[term], term))[:RARE_TERMS])
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
    kind = expected_type(query)
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
    titles: dict[str, set[str]] = {}
    rows = []
    for candidate, day in zip(found, days):
        chunk = candidate.passage.chunk
        sentences = [terms(sentence) for sentence in _SENTENCE.findall(chunk.text)]
        words = [term for sentence in sentences for term in sentence]
        present = set(words)
        if chunk.title not in titles:
            titles[chunk.title] = set(terms(chunk.title))
        title = titles[chunk.title]
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
                _weighted_share(present, weights),
                len(rare & (present | title)) / len(rare) if rare else 0.0,
                _weighted_share(title, weights),
                len(query_bigrams & _bigrams(words)) / len(query_bigrams) if query_bigrams else 0.0,
                max((_weighted_share(set(sentence), weights) for sentence in sentences), default=0.0),
                QUESTION_TYPES.index(kind),
                MISSING if kind is None else float(bool(typed_spans(kind, chunk.text, query))),
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
