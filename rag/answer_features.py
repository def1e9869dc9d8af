"""Pure: the candidate sentences of the retrieved passages and the features the learned answer
scorer reads for each (rag.answer_model). Training (eval.train_answerer) and answering compute
them with these same functions, so what the model was fitted on is what it sees.

The trained model records a hash of this file: changing a feature here invalidates the shipped
model with a message that says to retrain it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from rag.answer_types import (
    expected_type,
    lexical_coverage,
    named_terms,
    new_typed_spans,
    question_weights,
)
from rag.chunking import sentence_spans
from rag.lexical import TOKEN, acronym_expansions, present_terms, stem, terms
from rag.safety import looks_like_instructions
from rag.types import Passage

QUESTION_TYPES = {None: 0, "number": 1, "date": 2, "name": 3}
# The hand-set score the learned one replaced; kept as one feature among the others.
SEMANTIC_WEIGHT = 0.4
CONTEXT_WEIGHT = 0.35
MISSING_TYPE_PENALTY = 0.6
COMPLETED_BY_NEXT_PENALTY = 0.9

FEATURES = (
    "question_type",  # 0 other, 1 number, 2 date, 3 name
    "question_terms",  # content terms in the question
    "similarity",  # MiniLM cosine of question and sentence
    "similarity_gap",  # similarity minus the best candidate's
    "similarity_rank",  # 0 for the most similar candidate
    "neighbour_similarity",  # the better of the sentences before and after
    "coverage",  # IDF-weighted share of the question's terms in the sentence
    "context_coverage",  # ... in the sentence, its neighbours and its document's title
    "coverage_gap",  # context_coverage minus the best candidate's
    "coverage_rank",
    "title_coverage",
    "missing_idf",  # the rarest question term found neither in the sentence nor around it
    "missing_idf_own",  # the rarest question term not in the sentence itself
    "missing_share",  # share of the question's terms found neither in the sentence nor around it
    "bigrams",  # pairs of consecutive question terms that are consecutive in the sentence too
    "has_type",  # the sentence holds a span of the kind asked for (1 when nothing is asked)
    "typed_spans",  # how many
    "completed_by_next",  # the next sentence holds one
    "named_share",  # share of the question's names found in the sentence or around it
    "hand_score",  # the hand-set score of earlier versions
    "passage_rank",
    "passage_score_ratio",  # the passage's retrieval score over the first passage's
    "document_offset",  # log(1 + where the sentence starts in its document)
    "sentence_words",
    "new_capitalised",  # capitalised words the question does not have
    "new_numbers",  # numbers the question does not have
    "quotation",  # the sentence quotes someone
    "document_best_similarity",  # the best similarity among the candidates of its document
    "document_best_coverage",
    "date_rank",  # 0 for the newest document among the candidates' (NaN when undated)
    "candidates",  # how many candidates the question has
)

_QUOTE = re.compile(r"[\"“”]")


@dataclass(frozen=True)
class Candidate:
    """One sentence of a retrieved passage, located in its document, with what surrounds it."""

    passage_rank: int
    doc_id: str
    start: int  # in the document
    end: int
    text: str
    title: str
    before: str  # the sentence before it in the document ("" at the start)
    after: str  # and after it
    published: str

    @property
    def context(self) -> str:
        return f"{self.title}\n{self.before}\n{self.after}"


def candidates(passages: Sequence[Passage]) -> list[Candidate]:
    """Every distinct sentence of the passages (overlapping chunks repeat some), best passage
    first. Text addressed to an AI assistant is never a candidate."""
    found: dict[tuple[str, int], Candidate] = {}
    for rank, passage in enumerate(passages):
        chunk = passage.chunk
        spans = sentence_spans(chunk.text)
        for i, (s, e) in enumerate(spans):
            if looks_like_instructions(chunk.text[s:e]):
                continue
            # At the passage's edges the neighbour comes from the adjacent chunk, when known.
            before = chunk.text[spans[i - 1][0] : spans[i - 1][1]] if i > 0 else passage.before
            after = chunk.text[spans[i + 1][0] : spans[i + 1][1]] if i + 1 < len(spans) else passage.after
            found.setdefault(
                (chunk.doc_id, chunk.start + s),
                Candidate(
                    rank,
                    chunk.doc_id,
                    chunk.start + s,
                    chunk.start + e,
                    chunk.text[s:e],
                    chunk.title,
                    before,
                    after,
                    chunk.published,
                ),
            )
    return list(found.values())


def texts_to_embed(found: Sequence[Candidate]) -> list[str]:
    """The sentences whose vectors the features need: each candidate and its neighbours."""
    return list(dict.fromkeys(t for c in found for t in (c.text, c.before, c.after) if t))


@dataclass(frozen=True)
class QuestionView:
    """What the features need to know about the question, computed once per question."""

    question: str
    kind: str | None
    weights: dict[str, float]
    names: frozenset[str]
    avoided: frozenset[str]
    expansions: Mapping[str, frozenset[str]]


def view(
    question: str,
    passages: Sequence[Passage],
    idf: Callable[[str], float],
    avoided: frozenset[str] = frozenset(),
) -> QuestionView:
    return QuestionView(
        question,
        expected_type(question),
        question_weights(question, idf),
        frozenset(named_terms(question)),
        avoided,
        acronym_expansions(p.chunk.text for p in passages),
    )


def _ranks(values: np.ndarray) -> np.ndarray:
    """0 for the largest value, ties share the lower rank."""
    order = -values
    return np.searchsorted(np.sort(order), order, side="left").astype(np.float64)


def _bigrams(question_terms: Sequence[str], sentence_terms: Sequence[str]) -> int:
    return len(set(pairwise(question_terms)) & set(pairwise(sentence_terms)))


def _coverage(weights: Mapping[str, float], present: set[str]) -> float:
    """IDF-weighted share of the question's terms in `present` (as answer_types.lexical_coverage)."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in present) / total if total else 0.0


def _missing(weights: Mapping[str, float], present: set[str]) -> tuple[float, float]:
    """The largest IDF among the question's terms absent from `present`, and their share."""
    absent = [w for t, w in weights.items() if t not in present]
    return (max(absent, default=0.0), len(absent) / len(weights) if weights else 0.0)


@dataclass(frozen=True)
class CandidateFacts:
    """The features of one candidate that the answerer also uses outside the model."""

    has_type: bool
    named: frozenset[str]
    semantic: float
    lexical: float
    hand_score: float


def features(
    q: QuestionView,
    found: Sequence[Candidate],
    passages: Sequence[Passage],
    question_vector: np.ndarray,
    vectors: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, list[CandidateFacts]]:
    """The feature matrix (one row per candidate, columns as FEATURES) and each candidate's facts."""
    n = len(found)
    rows = np.full((n, len(FEATURES)), np.nan, dtype=np.float64)
    if n == 0:
        return rows, []
    sim = np.array([float(vectors[c.text] @ question_vector) for c in found])

    def similarity_of(text: str) -> float:
        return float(vectors[text] @ question_vector) if text in vectors else math.nan

    question_terms = terms(q.question)
    asked = {stem(t) for t in TOKEN.findall(q.question)}
    first_score = passages[0].score if passages and passages[0].score else 1.0
    dates = sorted({c.published for c in found if c.published}, reverse=True)
    facts: list[CandidateFacts] = []
    cov_context = np.zeros(n)
    expansions = dict(q.expansions)
    for i, c in enumerate(found):
        own_terms = present_terms(c.text, expansions)
        around_terms = present_terms(f"{c.text}\n{c.context}", expansions)
        own = _coverage(q.weights, own_terms)
        around = _coverage(q.weights, around_terms)
        cov_context[i] = around
        lexical = (1 - CONTEXT_WEIGHT) * own + CONTEXT_WEIGHT * around
        typed = new_typed_spans(q.kind, c.text, q.question, q.avoided) if q.kind else []
        has_type = q.kind is None or bool(typed)
        completed = bool(q.kind) and bool(new_typed_spans(q.kind, c.after, q.question, q.avoided)) if c.after else False
        hand = SEMANTIC_WEIGHT * sim[i] + (1 - SEMANTIC_WEIGHT) * lexical
        if not has_type:
            hand *= COMPLETED_BY_NEXT_PENALTY if completed else MISSING_TYPE_PENALTY
        missing_idf, missing_share = _missing(q.weights, around_terms)
        missing_own, _ = _missing(q.weights, own_terms)
        words = TOKEN.findall(c.text)
        named = frozenset(q.names & around_terms)
        rows[i] = [
            QUESTION_TYPES[q.kind],
            len(q.weights),
            sim[i],
            math.nan,  # similarity_gap, below
            math.nan,  # similarity_rank
            np.nanmax([similarity_of(c.before), similarity_of(c.after), -1.0]),
            own,
            around,
            math.nan,  # coverage_gap
            math.nan,  # coverage_rank
            lexical_coverage(q.weights, c.title, expansions),
            missing_idf,
            missing_own,
            missing_share,
            _bigrams(question_terms, terms(c.text)),
            float(has_type),
            len(typed),
            float(completed),
            len(named) / len(q.names) if q.names else math.nan,
            hand,
            c.passage_rank,
            passages[c.passage_rank].score / first_score if first_score else math.nan,
            math.log1p(c.start),
            len(words),
            sum(1 for w in words if w[:1].isupper() and stem(w) not in asked),
            sum(1 for w in words if w[:1].isdigit() and stem(w) not in asked),
            float(bool(_QUOTE.search(c.text))),
            math.nan,  # document_best_similarity
            math.nan,  # document_best_coverage
            dates.index(c.published) if c.published else math.nan,
            n,
        ]
        facts.append(CandidateFacts(has_type, named, float(sim[i]), lexical, float(hand)))
    column = {name: j for j, name in enumerate(FEATURES)}
    rows[:, column["similarity_gap"]] = sim - sim.max()
    rows[:, column["similarity_rank"]] = _ranks(sim)
    rows[:, column["coverage_gap"]] = cov_context - cov_context.max()
    rows[:, column["coverage_rank"]] = _ranks(cov_context)
    by_document: dict[str, list[int]] = {}
    for i, c in enumerate(found):
        by_document.setdefault(c.doc_id, []).append(i)
    for members in by_document.values():
        rows[members, column["document_best_similarity"]] = sim[members].max()
        rows[members, column["document_best_coverage"]] = cov_context[members].max()
    return rows, facts
