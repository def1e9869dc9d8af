"""Ask every gold question of each configuration and score what comes back."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from eval.configs import Configuration
from eval.datasets import Dataset, GoldQuestion, iso_date
from eval.metrics import (
    BUDGET_CURVE,
    HIT_KS,
    READING_BUDGET,
    QuestionRecord,
    best_threshold,
    contains_answer,
    exact_match,
    f1,
    first_hit,
    hit_within_chars,
    markers_resolve,
    occurs_in,
    padded,
)
from rag.citations import cited_numbers, strip_invalid_markers
from rag.config import PROJECT_ROOT
from rag.retrieval import Retriever
from rag.types import Answer, Passage, SearchFilter

RANK_DEPTH = max(HIT_KS)
MAX_RANK_DEPTH = 160
DOC_HIT_K = 5


def question_filter(question: GoldQuestion, as_of_question: bool) -> SearchFilter | None:
    """Pure: what a question may search: with the as-of protocol, only the articles published
    by the day it was asked (when it has a date), as a reader that day; otherwise everything."""
    if as_of_question and question.date:
        return SearchFilter(as_of=iso_date(question.date))
    return None


def answers_in_corpus(dataset: Dataset, as_of_question: bool = False) -> dict[str, bool]:
    """Per question: does an accepted answer occur (normalised, on word boundaries) in some
    document it may search (under the as-of protocol, one published by the question's day)?"""
    texts = [(document.published, padded(document.text)) for document in dataset.documents]  # normalised once
    corpus = "\n".join(text for _, text in texts)
    found = {}
    for question in dataset.questions:
        where = question_filter(question, as_of_question)
        if where is None:
            found[question.id] = occurs_in(corpus, question.answers)
            continue
        found[question.id] = any(
            occurs_in(text, question.answers) for published, text in texts if where.shows_published(published)
        )
    return found


def rank(ranker: Retriever, query: str, where: SearchFilter | None = None) -> list[Passage]:
    """At least RANK_DEPTH passages, and enough to fill the reading budget when there are."""
    depth = RANK_DEPTH
    while True:
        passages = ranker.retrieve(query, depth, where)
        if (
            len(passages) < depth
            or sum(len(p.chunk.text) for p in passages) >= READING_BUDGET
            or depth >= MAX_RANK_DEPTH
        ):
            return passages
        depth *= 2


def _visible(text: str) -> str:
    """Answer text without its [n] markers, which would otherwise read as numbers."""
    return strip_invalid_markers(text, ())


def prediction(answer: Answer) -> str:
    """What exact match and F1 compare: the short answer, or the answer text when none stands
    out; nothing when the question was declined."""
    if answer.refused:
        return ""
    return answer.short_answer or _visible(answer.text)


def score_question(
    question: GoldQuestion, answer: Answer, ranking: Sequence[Passage], in_corpus: bool
) -> QuestionRecord:
    """Pure: one gold question, the answer and the deeper ranking -> its record."""
    accepted = question.answers
    texts = [p.chunk.text for p in ranking]
    cited = {c.n: (c.doc_id, c.passage) for c in answer.citations}
    retrieved = {(p.chunk.doc_id, p.chunk.text) for p in answer.passages}
    return QuestionRecord(
        id=question.id,
        answerable=question.answerable,
        in_corpus=in_corpus,
        first_hit=first_hit(texts, accepted),
        budget_hits=tuple(b for b in BUDGET_CURVE if hit_within_chars(texts, accepted, b)),
        doc_hit=any(p.chunk.doc_id in question.doc_ids for p in ranking[:DOC_HIT_K]) if question.doc_ids else None,
        refused=answer.refused,
        answer_contains=not answer.refused
        and (contains_answer(answer.short_answer, accepted) or contains_answer(_visible(answer.text), accepted)),
        exact_match=exact_match(prediction(answer), accepted if question.answerable else ()),
        f1=f1(prediction(answer), accepted if question.answerable else ()),
        citations_valid=markers_resolve(cited_numbers(answer.text), cited, retrieved),
        cited=len(answer.citations),
        cited_correct=sum(contains_answer(c.passage, accepted) for c in answer.citations) if accepted else 0,
        confidence=answer.confidence,
        timings_ms={stage: round(ms, 2) for stage, ms in answer.timings_ms.items()},
        follow_up=bool(question.history),
    )


def detail(
    configuration: str, question: GoldQuestion, answer: Answer, ranking: Sequence[Passage], record: QuestionRecord
) -> dict[str, object]:
    """One line of questions.jsonl: what was retrieved, answered and cited, for reading failures."""
    read = {p.chunk.id for p in answer.passages_read}
    return {
        "config": configuration,
        "id": question.id,
        "question": question.question,
        "history": [{"question": t.question, "answer": t.answer} for t in question.history],
        "accepted": list(question.answers),
        "query": answer.query,
        "answer": answer.text,
        "short_answer": answer.short_answer,
        "refused": answer.refused,
        "confidence": round(answer.confidence, 4),
        "exact_match": record.exact_match,
        "f1": round(record.f1, 4),
        "answer_contains": record.answer_contains,
        "citations_valid": record.citations_valid,
        "first_hit": record.first_hit,
        "in_corpus": record.in_corpus,
        "citations": [{"n": c.n, "doc_id": c.doc_id, "sentence": c.sentence} for c in answer.citations],
        "retrieved": [
            {
                "rank": i,
                "chunk_id": p.chunk.id,
                "doc_id": p.chunk.doc_id,
                "score": round(p.score, 4),
                "read_by_answerer": p.chunk.id in read,
                "text": p.chunk.text,
            }
            for i, p in enumerate(ranking[:RANK_DEPTH], start=1)
        ],
        "timings_ms": record.timings_ms,
    }


@dataclass
class ConfigurationRun:
    name: str
    records: list[QuestionRecord]
    details: list[dict[str, object]]


def run(
    configuration: Configuration,
    questions: Sequence[GoldQuestion],
    in_corpus: dict[str, bool],
    as_of_question: bool = False,
) -> ConfigurationRun:
    """Every question through the configuration's Assistant, as the app asks it (history
    included); with `as_of_question`, each dated question as of its own day."""
    from tqdm import tqdm

    records, details = [], []
    disagreements = 0
    configuration.assistant.warm_up()  # as the app does at start: the first question is not timed cold
    configuration.assistant.embedder.forget_queries()  # each configuration embeds its own queries
    for question in tqdm(questions, desc=configuration.name, unit="q", file=sys.stderr, disable=None):
        where = question_filter(question, as_of_question)
        answer = configuration.assistant.ask(question.question, question.history, where=where)
        ranking = rank(configuration.ranker, answer.query, where)
        read = [p.chunk.id for p in answer.passages_read]
        disagreements += [p.chunk.id for p in ranking[: len(read)]] != read
        record = score_question(question, answer, ranking, in_corpus[question.id])
        records.append(record)
        details.append(detail(configuration.name, question, answer, ranking, record))
    if disagreements:
        print(
            f"warning: {configuration.name}: for {disagreements} questions the ranking scored for retrieval "
            "metrics does not start with the passages the answerer read",
            file=sys.stderr,
        )
    return ConfigurationRun(configuration.name, records, details)


def calibrate(records: Sequence[QuestionRecord]) -> dict[str, float]:
    """Best refusal threshold for records produced with refusals switched off (min score 0)."""
    threshold, accuracy = best_threshold([(r.confidence, r.answerable, r.answer_contains) for r in records])
    return {"answer_min_score": round(threshold, 4), "accuracy_at_threshold": round(accuracy, 4)}


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def git_commit() -> str:
    """The project's short commit, marked '-dirty' when tracked files other than reports differ
    from it (regenerating the reference reports one after another must not mark the later ones)."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)eval/reports")
    return f"{commit}-dirty" if changed else commit


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
