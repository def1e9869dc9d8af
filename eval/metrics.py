"""Pure metric functions: answer normalisation and matching, ranking and answer scores per
question, and their summary per configuration."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

_PUNCTUATION = set(string.punctuation) | set("‘’‚‛“”„‟«»‹›–—…")
_ARTICLES = re.compile(r"\b(a|an|the)\b")

HIT_KS = (1, 5, 10)
MRR_K = 10
READING_BUDGET = 4000  # characters of ranked passages for answer_hit@4000c
BUDGET_CURVE = (500, 1000, 1500, 2000, 2500, 3000, 3500, 4000)


def normalise(text: str) -> str:
    """SQuAD normalisation: lower-case; drop punctuation (typographic too) and articles; fold spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def padded(text: str) -> str:
    """The normalised text with a space at each end, for whole-word containment tests."""
    return f" {normalise(text)} "


def occurs_in(padded_text: str, answers: Iterable[str]) -> bool:
    """True when a normalised accepted answer occurs in an already padded text, on word boundaries."""
    return any(f" {needle} " in padded_text for needle in (normalise(a) for a in answers) if needle)


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """True when a normalised accepted answer occurs in the normalised text, on word boundaries."""
    return occurs_in(padded(text), answers)


def first_hit(passages: Sequence[str], answers: Sequence[str]) -> int | None:
    """1-based rank of the first passage that contains an accepted answer, or None.

    Each passage is matched on its own: an answer split across two passages is not found.
    Passages with equal scores keep the order the retriever gave them.
    """
    return next((rank for rank, text in enumerate(passages, start=1) if contains_answer(text, answers)), None)


def hit_within_chars(passages: Sequence[str], answers: Sequence[str], budget: int) -> bool:
    """Whether an accepted answer occurs within the first `budget` characters of the ranked
    passages, read in order, the last one cut at the budget."""
    left = budget
    for text in passages:
        if left <= 0:
            return False
        if contains_answer(_whole_words(text, left), answers):
            return True
        left -= len(text)
    return False


def _whole_words(text: str, limit: int) -> str:
    """The text cut at `limit` characters, without the word the cut falls inside ("15,000" cut
    to "15," must not read as "15")."""
    if limit >= len(text) or text[limit].isspace():
        return text[:limit]
    head = text[:limit]
    last_space = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    return head[: last_space + 1] if last_space >= 0 else ""


def reciprocal_rank(rank: int | None, k: int = MRR_K) -> float:
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def _tokens(text: str) -> list[str]:
    return normalise(text).split()


def _gold(answers: Sequence[str]) -> list[str]:
    """Accepted answers as the SQuAD 2.0 script keeps them: those that normalise to nothing are
    dropped, and none left means the question has no answer (the empty string is right)."""
    return [a for a in answers if normalise(a)] or [""]


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD 2.0 exact match: 1 when the normalised prediction equals an accepted answer; with no
    accepted answers (unanswerable), 1 when the prediction is empty (the question was declined)."""
    return float(any(normalise(prediction) == normalise(answer) for answer in _gold(answers)))


def f1(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD 2.0 token F1, the best over the accepted answers (empty-answer rule as exact_match)."""
    predicted = _tokens(prediction)
    best = 0.0
    for answer in _gold(answers):
        gold = _tokens(answer)
        if not gold or not predicted:
            best = max(best, float(gold == predicted))
            continue
        common = sum((Counter(predicted) & Counter(gold)).values())
        if common:
            precision, recall = common / len(predicted), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def markers_resolve(
    markers: Sequence[int], cited: Mapping[int, tuple[str, str]], retrieved: set[tuple[str, str]]
) -> bool:
    """Whether an answer's citation markers are all sound: at least one marker, and each names a
    citation (n -> (doc id, passage text)) whose passage is one of the retrieved passages."""
    return bool(markers) and all(n in cited and cited[n] in retrieved for n in markers)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass(frozen=True)
class QuestionRecord:
    """What happened to one gold question under one configuration."""

    id: str
    answerable: bool
    in_corpus: bool  # an accepted answer occurs in some document; retrieval metrics count only these
    first_hit: int | None  # rank of the first retrieved passage containing an accepted answer
    budget_hits: tuple[int, ...]  # the BUDGET_CURVE budgets within which an answer was found
    doc_hit: bool | None  # a top-5 passage comes from a gold document (None: no doc_ids given)
    refused: bool
    answer_contains: bool  # an accepted answer occurs in the answer text
    exact_match: float
    f1: float
    citations_valid: bool
    cited: int
    cited_correct: int  # citations whose passage contains an accepted answer
    confidence: float
    timings_ms: dict[str, float] = field(default_factory=dict)
    follow_up: bool = False  # asked after earlier turns of a conversation

    def hit_at(self, k: int) -> bool:
        return self.first_hit is not None and self.first_hit <= k


def _mean(values: Iterable[bool | float]) -> float | None:
    numbers = [float(v) for v in values]
    return round(sum(numbers) / len(numbers), 4) if numbers else None


def summarise(records: Sequence[QuestionRecord]) -> dict[str, float | int | None]:
    """Headline metrics; each rate is over the questions it applies to (None when there are none)."""
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    ranked = [r for r in answerable if r.in_corpus]
    with_docs = [r for r in answerable if r.doc_hit is not None]
    answered = [r for r in records if not r.refused]
    answered_ranked = [r for r in ranked if not r.refused]  # their citations could contain an answer
    citations = sum(r.cited for r in answered_ranked)
    metrics: dict[str, float | int | None] = {
        "questions": len(records),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "retrieval_questions": len(ranked),
    }
    for k in HIT_KS:
        metrics[f"answer_hit@{k}"] = _mean(r.hit_at(k) for r in ranked)
    metrics[f"mrr@{MRR_K}"] = _mean(reciprocal_rank(r.first_hit) for r in ranked)
    metrics[f"answer_hit@{READING_BUDGET}c"] = _mean(READING_BUDGET in r.budget_hits for r in ranked)
    metrics["doc_hit@5"] = _mean(bool(r.doc_hit) for r in with_docs)
    metrics["exact_match"] = _mean(r.exact_match for r in records)
    metrics["f1"] = _mean(r.f1 for r in records)
    metrics["answer_contains"] = _mean(r.answer_contains for r in answerable)
    metrics["follow_up_accuracy"] = _mean(r.answer_contains for r in answerable if r.follow_up)
    metrics["citation_validity"] = _mean(r.citations_valid for r in answered)
    metrics["citation_precision"] = (
        round(sum(r.cited_correct for r in answered_ranked) / citations, 4) if citations else None
    )
    metrics["refusal_accuracy"] = _mean(r.refused for r in unanswerable)
    metrics["false_refusal_rate"] = _mean(r.refused for r in answerable)
    for stage in ("retrieve", "answer", "total"):
        values = [r.timings_ms.get(stage, 0.0) for r in records]
        metrics[f"{stage}_ms_p50"] = round(percentile(values, 50), 1) if values else None
        metrics[f"{stage}_ms_p95"] = round(percentile(values, 95), 1) if values else None
    return metrics


def hit_curve(records: Sequence[QuestionRecord], ks: Sequence[int]) -> list[float]:
    """answer_hit@k for each k, over the questions whose answer is in the corpus (for plots)."""
    ranked = [r for r in records if r.answerable and r.in_corpus]
    return [sum(r.hit_at(k) for r in ranked) / len(ranked) if ranked else 0.0 for k in ks]


def budget_curve(records: Sequence[QuestionRecord], budgets: Sequence[int] = BUDGET_CURVE) -> list[float]:
    """Share of those questions answered within each reading budget (for plots)."""
    ranked = [r for r in records if r.answerable and r.in_corpus]
    return [sum(b in r.budget_hits for r in ranked) / len(ranked) if ranked else 0.0 for b in budgets]


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
