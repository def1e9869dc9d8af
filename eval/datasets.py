"""Evaluation datasets: gold questions and the corpus they are asked about.

A dataset is either a folder holding corpus.jsonl (`id, title, url, published, source, text`)
and questions.jsonl, or a questions .jsonl file asked about a folder of article files (the
shipped eval/gold/seed.jsonl over corpus/). Either way it becomes Documents and GoldQuestions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from rag.loaders import LoadError, load_articles_jsonl, load_documents
from rag.types import Document, Turn

CORPUS_FILE = "corpus.jsonl"
# realtimeqa-2024's questions before this day train and choose (about eight months of weekly
# quizzes); those from it on validate. Nothing is fitted or chosen on the validation split.
VALIDATION_FROM = "2024-09-01"
SPLITS = ("train", "validation")
Split = Literal["train", "validation"]
QUESTIONS_FILE = "questions.jsonl"


class DatasetFormatError(ValueError):
    """A dataset file or line that cannot be used; the message names the file, line and field."""


@dataclass(frozen=True)
class GoldQuestion:
    """One gold question; no accepted answers means it should be declined."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_ids: tuple[str, ...] = ()
    answerable: bool = True
    date: str = ""
    history: tuple[Turn, ...] = ()


@dataclass(frozen=True)
class Dataset:
    name: str
    documents: tuple[Document, ...]
    questions: tuple[GoldQuestion, ...]
    failed: tuple[LoadError, ...] = ()  # corpus files that could not be loaded

    def fingerprint(self) -> str:
        """Changes whenever any document's text or metadata changes, or one is added or removed."""
        digest = hashlib.sha256()
        for document in sorted(self.documents, key=lambda d: d.id):
            digest.update(f"{document.id}\x1f{document.content_hash}\n".encode())
        return digest.hexdigest()[:12]


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a .jsonl file."""
    if not path.is_file():
        raise DatasetFormatError(f"{path}: no such file; a dataset folder needs {CORPUS_FILE} and {QUESTIONS_FILE}")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetFormatError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DatasetFormatError(f"{path}:{number}: each line must be a JSON object")
            yield number, row


def _field(path: Path, number: int, row: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    value = row.get(key, default)
    if not isinstance(value, kind):
        raise DatasetFormatError(f"{path}:{number}: field '{key}' must be a {kind.__name__}")
    return value


def _history(path: Path, number: int, value: Any) -> tuple[Turn, ...]:
    if not isinstance(value, list) or not all(
        isinstance(t, dict) and isinstance(t.get("question"), str) and isinstance(t.get("answer"), str) for t in value
    ):
        raise DatasetFormatError(
            f'{path}:{number}: field \'history\' must be a list of {{"question": ..., "answer": ...}} turns'
        )
    return tuple(Turn(t["question"], t["answer"]) for t in value)


def load_questions(path: Path) -> list[GoldQuestion]:
    """Read questions.jsonl: `id, question, answers[]`, optional `doc_ids[], answerable, date, history`."""
    questions: list[GoldQuestion] = []
    seen: set[str] = set()
    for number, row in _rows(path):
        question_id = _field(path, number, row, "id", str)
        if question_id in seen:
            raise DatasetFormatError(f"{path}:{number}: id '{question_id}' is used twice; ids must be unique")
        seen.add(question_id)
        answers = tuple(_field(path, number, row, "answers", list))
        if not all(isinstance(answer, str) and answer.strip() for answer in answers):
            raise DatasetFormatError(f"{path}:{number}: field 'answers' must hold non-empty strings")
        answerable = _field(path, number, row, "answerable", bool, bool(answers))
        if answerable != bool(answers):
            raise DatasetFormatError(
                f"{path}:{number}: field 'answerable' is {str(answerable).lower()} but 'answers' is "
                f"{'empty' if not answers else 'not empty'}; an unanswerable question has no answers"
            )
        questions.append(
            GoldQuestion(
                id=question_id,
                question=_field(path, number, row, "question", str),
                answers=answers,
                doc_ids=tuple(str(d) for d in _field(path, number, row, "doc_ids", list, [])),
                answerable=answerable,
                date=str(row.get("date") or ""),
                history=_history(path, number, row.get("history", [])),
            )
        )
    return questions


def load_corpus_jsonl(path: Path) -> list[Document]:
    """Read corpus.jsonl (the format `python -m rag import` reads); a dataset must be whole, so
    the first bad line is an error."""
    if not path.is_file():
        raise DatasetFormatError(f"{path}: no such file; a dataset folder needs {CORPUS_FILE} and {QUESTIONS_FILE}")
    documents, failed = load_articles_jsonl(path)
    if failed:
        raise DatasetFormatError(str(failed[0]))
    return documents


def load_dataset(path: Path, corpus_dir: Path, limit: int | None = None) -> Dataset:
    """Load a dataset folder, or a questions file asked about the article files in corpus_dir.

    With `limit`, only the first `limit` questions are kept and, when every kept question names
    its documents, only the documents they name are indexed: a subset that indexes in minutes
    while each question still competes with the other questions' articles.
    """
    if path.is_dir():
        name = path.name
        questions = load_questions(path / QUESTIONS_FILE)
        documents = load_corpus_jsonl(path / CORPUS_FILE)
        failed: list[LoadError] = []
    elif path.is_file():
        name = path.stem
        questions = load_questions(path)
        documents, failed = load_documents([corpus_dir])
    else:
        raise DatasetFormatError(
            f"{path}: no such dataset; give a folder with {CORPUS_FILE} and {QUESTIONS_FILE}, "
            "or a questions .jsonl file (asked about --corpus)"
        )
    if not documents:
        raise DatasetFormatError(f"{path}: the dataset has no documents to index")
    dataset = Dataset(name=name, documents=tuple(documents), questions=tuple(questions), failed=tuple(failed))
    return dataset if limit is None else with_questions(dataset, questions[:limit])


def with_questions(dataset: Dataset, questions: Sequence[GoldQuestion]) -> Dataset:
    """The dataset asked only these questions and, when every one names its documents, indexing
    only the documents they name (each question still competes with the others' articles)."""
    named = {doc_id for question in questions for doc_id in question.doc_ids}
    if not questions or not all(question.doc_ids for question in questions):
        return replace(dataset, questions=tuple(questions))
    return replace(dataset, questions=tuple(questions), documents=tuple(d for d in dataset.documents if d.id in named))


def every_nth(dataset: Dataset, n: int) -> Dataset:
    """Every n-th question (the first, the n+1-th, ...) and only the documents they name: the
    whole period's weeks at about 1/n of the indexing cost."""
    return dataset if n == 1 else with_questions(dataset, dataset.questions[::n])


def dated_split(dataset: Dataset, part: Split, boundary: str = VALIDATION_FROM) -> Dataset:
    """The questions asked before `boundary` ('train') or on and after it ('validation'), and
    only the documents they name: all of one split, indexed apart from the other."""
    before = part == "train"
    return with_questions(dataset, [q for q in dataset.questions if (iso_date(q.date) < boundary) == before])


def iso_date(value: str) -> str:
    """A question's date as ISO: '2024/01/05' -> '2024-01-05'."""
    return value.replace("/", "-")[:10]


def asked_between(dataset: Dataset, first_date: str = "", before_date: str = "") -> Dataset:
    """Only the questions dated on or after `first_date` and before `before_date` (ISO; empty:
    no bound); the documents are kept, so the same index serves (a split asked over the whole
    period's articles)."""
    return replace(
        dataset,
        questions=tuple(
            q
            for q in dataset.questions
            if iso_date(q.date) >= first_date and (not before_date or iso_date(q.date) < before_date)
        ),
    )
