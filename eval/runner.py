"""Run gold questions through the same Assistant the app uses and score what comes back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eval.metrics import QuestionRecord, best_threshold, contains_answer, summarise
from rag.pipeline import Assistant
from rag.types import Answer

HIT_K = 5


class GoldFormatError(ValueError):
    """A gold file line that is not a valid question; the message names file, line and field."""


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    doc_ids: tuple[str, ...] = ()
    answerable: bool = True


def load_questions(path: Path) -> list[GoldQuestion]:
    """Read a questions .jsonl file (`id, question, answers[], doc_ids[]`, optional `answerable`)."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldFormatError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        for key, kind in (("id", str), ("question", str), ("answers", list)):
            if not isinstance(row.get(key), kind):
                raise GoldFormatError(f"{path}:{number}: field '{key}' must be a {kind.__name__}")
        answers = tuple(str(a) for a in row["answers"])
        questions.append(
            GoldQuestion(
                id=row["id"],
                question=row["question"],
                answers=answers,
                doc_ids=tuple(row.get("doc_ids") or ()),
                answerable=bool(row.get("answerable", bool(answers))),
            )
        )
    return questions


def score_answer(question: GoldQuestion, answer: Answer, k: int = HIT_K) -> QuestionRecord:
    """Pure: one gold question and the assistant's answer -> its record."""
    accepted = question.answers
    answer_text = f"{answer.short_answer} {answer.text}"
    return QuestionRecord(
        id=question.id,
        answerable=question.answerable,
        refused=answer.refused,
        answer_correct=bool(accepted) and not answer.refused and contains_answer(answer_text, accepted),
        hit_at_k=bool(accepted) and any(contains_answer(p.chunk.text, accepted) for p in answer.passages[:k]),
        cited=len(answer.citations),
        cited_correct=sum(contains_answer(c.passage, accepted) for c in answer.citations) if accepted else 0,
        confidence=answer.confidence,
        retrieve_ms=answer.timings_ms.get("retrieve", 0.0),
        answer_ms=answer.timings_ms.get("answer", 0.0),
        total_ms=answer.timings_ms.get("total", 0.0),
    )


@dataclass
class EvalResult:
    metrics: dict[str, float | int | None]
    records: list[QuestionRecord]
    answers: list[dict[str, object]] = field(default_factory=list)
    calibration: dict[str, float] | None = None

    def report(self, **context: object) -> dict[str, object]:
        return {
            **context,
            "metrics": self.metrics,
            "calibration": self.calibration,
            "questions": [
                {**asdict(record), **answer} for record, answer in zip(self.records, self.answers, strict=True)
            ],
        }


def evaluate(
    assistant: Assistant, questions: Sequence[GoldQuestion], k: int = HIT_K, label: str = "questions"
) -> EvalResult:
    """Ask every question (with a progress bar on a terminal); the assistant's own refusal
    threshold decides refusals."""
    from tqdm import tqdm

    records, answers = [], []
    for question in tqdm(questions, desc=label, unit="q", file=sys.stderr, disable=None):
        answer = assistant.ask(question.question)
        records.append(score_answer(question, answer, k))
        answers.append({"question": question.question, "accepted": list(question.answers), **answer.to_json()})
    return EvalResult(metrics=summarise(records, k), records=records, answers=answers)


def calibrate(records: Sequence[QuestionRecord]) -> dict[str, float]:
    """Best refusal threshold for records produced with refusals switched off (min score 0)."""
    threshold, accuracy = best_threshold([(r.confidence, r.answerable, r.answer_correct) for r in records])
    return {"answer_min_score": round(threshold, 4), "accuracy_at_threshold": round(accuracy, 4)}


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
