"""Pure metric functions: answer normalisation, matching, per-question records and their summary."""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_PUNCTUATION = set(string.punctuation) | set("‘’“”«»–—…")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    """SQuAD normalisation: lower-case; drop punctuation (typographic too) and articles; fold spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """True when a normalised accepted answer occurs in the normalised text, on word boundaries."""
    haystack = f" {normalise(text)} "
    return any(f" {needle} " in haystack for needle in (normalise(a) for a in answers) if needle)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass(frozen=True)
class QuestionRecord:
    """What happened to one gold question."""

    id: str
    answerable: bool
    refused: bool
    answer_correct: bool  # an accepted answer occurs in the answer text
    hit_at_k: bool  # an accepted answer occurs in one of the top-k passages
    cited: int  # citations given
    cited_correct: int  # citations whose passage contains an accepted answer
    confidence: float
    retrieve_ms: float
    answer_ms: float
    total_ms: float


def _mean(flags: Iterable[bool | float]) -> float | None:
    values = [float(f) for f in flags]
    return round(sum(values) / len(values), 4) if values else None


def summarise(records: Sequence[QuestionRecord], k: int) -> dict[str, float | int | None]:
    """Headline metrics; each rate is over the questions it applies to (None when there are none)."""
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    answered = [r for r in answerable if not r.refused and r.cited]
    citations = sum(r.cited for r in answered)
    totals = [r.total_ms for r in records]
    return {
        "questions": len(records),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        f"answer_hit@{k}": _mean(r.hit_at_k for r in answerable),
        "answer_accuracy": _mean(r.answer_correct and not r.refused for r in answerable),
        "citation_accuracy": _mean(r.cited_correct > 0 for r in answered),
        "citation_precision": round(sum(r.cited_correct for r in answered) / citations, 4) if citations else None,
        "refusal_accuracy": _mean(r.refused for r in unanswerable),
        "false_refusal_rate": _mean(r.refused for r in answerable),
        "latency_ms_p50": round(percentile(totals, 50), 1),
        "latency_ms_p95": round(percentile(totals, 95), 1),
        "retrieve_ms_p50": round(percentile([r.retrieve_ms for r in records], 50), 1),
        "answer_ms_p50": round(percentile([r.answer_ms for r in records], 50), 1),
    }


def best_threshold(scored: Sequence[tuple[float, bool, bool]]) -> tuple[float, float]:
    """Refusal threshold that maximises accuracy over (confidence, answerable, correct_if_answered).

    A question counts as right when it is answerable, answered (confidence >= threshold) and
    correct, or unanswerable and refused. Candidates are midpoints between neighbouring
    confidences; among equally good ones the median is taken, away from both edges.
    """
    if not scored:
        return 0.0, 0.0
    confidences = sorted({c for c, _, _ in scored})
    candidates = (
        [confidences[0] - 1e-6] + [(a + b) / 2 for a, b in zip(confidences, confidences[1:])] + [confidences[-1] + 1e-6]
    )

    def accuracy(threshold: float) -> float:
        right = sum(
            (answerable and correct and c >= threshold) or (not answerable and c < threshold)
            for c, answerable, correct in scored
        )
        return right / len(scored)

    best = max(accuracy(t) for t in candidates)
    ties = [t for t in candidates if accuracy(t) == best]
    return ties[len(ties) // 2], best
