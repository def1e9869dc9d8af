"""Passages -> Answer. The default answerer is extractive and offline: it quotes the retrieved
sentences that best answer the question, cites them, and declines when none is good enough."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.chunking import sentence_spans
from rag.embeddings import Embedder
from rag.lexical import TOKEN, stem, terms
from rag.types import Answer, Citation, Passage

REFUSAL = "I could not find an answer to that in the documents I have."

_NUMBER = re.compile(
    r"(?:about |around |approximately |nearly |some |over |more than |up to )?"
    r"\$?\d[\d,.]*(?:\s?(?:%|percent|million|billion|thousand|hundred))?"
    r"(?:\s(?:to|and|or|-)\s\d[\d,.]*(?:\s?(?:million|billion|thousand))?)?"
    r"(?:\s[a-z]+)?"
)
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(
    rf"\b(?:(?:{_MONTHS})\s+\d{{1,2}}(?:,\s*\d{{4}})?|\d{{1,2}}\s+(?:{_MONTHS})(?:\s+\d{{4}})?|(?:{_MONTHS})\s+\d{{4}}"
    rf"|(?:in |since |by )?(?:19|20)\d{{2}}|(?:in |since |by |last |next |this )(?:{_MONTHS})|(?:last|next|this) (?:week|month|year)|today|yesterday"
    rf"|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday))\b"
)
# Runs of capitalised words; a possessive ends a run ("Russia’s Kursk" is not one name).
_CAPITALISED = re.compile(r"\b[A-Z][a-zA-Z.-]+(?:\s+[A-Z][a-zA-Z.-]+)*")
_SPEECH = re.compile(r"^\s*(said|says|told|stated|announced|added|wrote)\b")
_SPEECH_BEFORE = re.compile(r"\b(said|says|told|stated|announced|added|wrote),?\s*$")


def question_weights(question: str, idf: Callable[[str], float]) -> dict[str, float]:
    """Content terms of the question with IDF weights: rare terms ('NIS', 'killed') decide."""
    return {term: idf(term) for term in terms(question)}


def lexical_coverage(weights: dict[str, float], text: str) -> float:
    """IDF-weighted share of the question's terms that occur in the text (0..1)."""
    total = sum(weights.values())
    if not total:
        return 0.0
    present = set(terms(text))
    return sum(w for t, w in weights.items() if t in present) / total


def expected_type(question: str) -> str | None:
    """What kind of answer the question wants: 'number', 'date', 'name', or None."""
    q = question.lower()
    if re.search(r"\bhow (many|much)\b|\bwhat (number|percentage|share|amount)\b|\bhow (large|big|far|long|old)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|day|month)\b|\bwhich (year|date|day|month)\b", q):
        return "date"
    if re.search(r"\bwho(m|se)?\b", q):
        return "name"
    return None


def typed_spans(kind: str, sentence: str, question: str) -> list[tuple[int, int]]:
    """Spans in the sentence that could be an answer of the given kind (and are not in the question)."""
    if kind == "number":
        pattern = _NUMBER
    elif kind == "date":
        pattern = _DATE
    else:
        pattern = _CAPITALISED
    asked = {stem(t) for t in TOKEN.findall(question)}
    spans = []
    for match in pattern.finditer(sentence):
        new_words = {stem(t) for t in TOKEN.findall(match.group(0))} - asked
        if kind == "name" and not _looks_like_a_name(sentence, match, len(new_words)):
            continue
        if new_words:
            end = match.end()
            if kind == "name" and sentence[end - 1] == "." and not sentence[end:].strip():
                end -= 1  # the sentence's full stop, not part of the name
            spans.append((match.start(), end))
    return spans


def _looks_like_a_name(sentence: str, match: re.Match[str], new_words: int) -> bool:
    """A person or organisation: two or more new capitalised words ("Sabrina Singh"), or one
    new word right before or after a speech verb ("Ryder said", "said Singh")."""
    if new_words >= 2:
        return True
    before = sentence[max(0, match.start() - 12) : match.start()]
    after = sentence[match.end() : match.end() + 12]
    return new_words == 1 and bool(_SPEECH.search(after) or _SPEECH_BEFORE.search(before))


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate supporting sentence, located in its document, with how it was scored."""

    passage_rank: int
    start: int  # in the document
    end: int
    text: str
    semantic: float
    lexical: float
    has_type: bool
    score: float


@dataclass(frozen=True)
class _Candidate:
    passage_rank: int
    start: int
    end: int
    text: str
    context: str  # the document title and the neighbouring sentences in the passage


def _candidates(passages: Sequence[Passage]) -> list[_Candidate]:
    """Every distinct sentence of the passages (overlapping chunks repeat some), best passage first."""
    found: dict[tuple[str, int], _Candidate] = {}
    for rank, passage in enumerate(passages):
        chunk = passage.chunk
        spans = sentence_spans(chunk.text)
        for i, (s, e) in enumerate(spans):
            before = chunk.text[spans[i - 1][0] : spans[i - 1][1]] if i > 0 else ""
            after = chunk.text[spans[i + 1][0] : spans[i + 1][1]] if i + 1 < len(spans) else ""
            found.setdefault(
                (chunk.doc_id, chunk.start + s),
                _Candidate(rank, chunk.start + s, chunk.start + e, chunk.text[s:e], f"{chunk.title}\n{before}\n{after}"),
            )
    return list(found.values())


def _uniform_idf(term: str) -> float:
    return 1.0


class ExtractiveAnswerer:
    """Quotes the best-supported sentences from the passages, with [n] citations.

    A sentence's support mixes its embedding similarity to the question with the IDF-weighted
    share of the question's terms found in it (and, at a lower weight, in its neighbours and the
    document title), and is discounted when it lacks the kind of answer asked for (a number for
    "how many", a date for "when"). The best support decides between answering and declining.
    """

    SEMANTIC_WEIGHT = 0.4
    CONTEXT_WEIGHT = 0.35
    MISSING_TYPE_PENALTY = 0.6

    def __init__(
        self,
        embedder: Embedder,
        min_score: float,
        max_sentences: int,
        idf: Callable[[str], float] = _uniform_idf,
    ) -> None:
        self.embedder = embedder
        self.min_score = min_score
        self.max_sentences = max_sentences
        self.idf = idf

    def score_sentences(self, question: str, passages: Sequence[Passage]) -> list[ScoredSentence]:
        """Every distinct sentence of the passages, scored against the question, best first."""
        candidates = _candidates(passages)
        if not candidates:
            return []
        vectors = np.asarray(self.embedder.embed([question] + [c.text for c in candidates]))
        similarities = vectors[1:] @ vectors[0]
        weights = question_weights(question, self.idf)
        kind = expected_type(question)
        scored = []
        for candidate, similarity in zip(candidates, similarities):
            own = lexical_coverage(weights, candidate.text)
            around = lexical_coverage(weights, f"{candidate.text}\n{candidate.context}")
            lexical = (1 - self.CONTEXT_WEIGHT) * own + self.CONTEXT_WEIGHT * around
            has_type = kind is None or bool(typed_spans(kind, candidate.text, question))
            score = self.SEMANTIC_WEIGHT * float(similarity) + (1 - self.SEMANTIC_WEIGHT) * lexical
            if not has_type:
                score *= self.MISSING_TYPE_PENALTY
            scored.append(
                ScoredSentence(
                    candidate.passage_rank, candidate.start, candidate.end, candidate.text,
                    float(similarity), lexical, has_type, score,
                )
            )
        scored.sort(key=lambda s: (-s.score, s.passage_rank, s.start))
        return scored

    def answer(self, question: str, passages: Sequence[Passage]) -> Answer:
        scored = self.score_sentences(question, passages)
        best = scored[0].score if scored else 0.0
        if best < self.min_score:
            return Answer(text=REFUSAL, refused=True, passages=tuple(passages), query=question, confidence=best)
        chosen = [scored[0]]
        for candidate in scored[1:]:
            if len(chosen) >= self.max_sentences:
                break
            # A second sentence only when nearly as good: it adds a source or a figure, not noise.
            if candidate.score >= max(self.min_score, 0.9 * best) and candidate.has_type:
                chosen.append(candidate)
        chosen.sort(key=lambda s: (s.passage_rank, s.start))
        citations: list[Citation] = []
        parts: list[str] = []
        for sentence in chosen:
            chunk = passages[sentence.passage_rank].chunk
            n = len(citations) + 1
            citations.append(
                Citation(
                    n=n,
                    doc_id=chunk.doc_id,
                    title=chunk.title,
                    published=chunk.published,
                    source=chunk.source,
                    url=chunk.url,
                    passage=chunk.text,
                    passage_start=chunk.start,
                    start=sentence.start,
                    end=sentence.end,
                    score=sentence.score,
                )
            )
            parts.append(f"{sentence.text} [{n}]")
        return Answer(
            text=" ".join(parts),
            refused=False,
            citations=tuple(citations),
            passages=tuple(passages),
            query=question,
            short_answer=self._short_answer(question, scored[0].text),
            confidence=best,
        )

    @staticmethod
    def _short_answer(question: str, sentence: str) -> str:
        """The number, date or name in the sentence that answers the question, when one stands out.

        Among several candidates the one with the most words not already in the question wins
        ("Deputy Pentagon Press Secretary Sabrina Singh" over "Pentagon"); ties go to the first.
        """
        kind = expected_type(question)
        if kind is None:
            return ""
        asked = set(terms(question))
        spans = typed_spans(kind, sentence, question)
        if not spans:
            return ""
        start, end = max(spans, key=lambda span: len(set(terms(sentence[span[0] : span[1]])) - asked))
        return sentence[start:end].strip()
