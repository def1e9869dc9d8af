"""Dataset loading: both shapes, --limit, and a clear error for every kind of bad line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import (
    Dataset,
    DatasetFormatError,
    GoldQuestion,
    asked_between,
    dated_split,
    every_nth,
    load_dataset,
    load_questions,
)
from rag.types import Turn

ROOT = Path(__file__).resolve().parent.parent


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def make_dataset(folder: Path) -> Path:
    folder.mkdir()
    write_jsonl(
        folder / "corpus.jsonl",
        [
            {
                "id": "d1",
                "title": "One",
                "url": "https://e.com/1",
                "published": "2023/01/05",
                "source": "X",
                "text": "Alpha.",
            },
            {"id": "d2", "title": "Two", "url": "", "published": "", "source": "", "text": "Beta."},
            {"id": "d3", "title": "Three", "text": "Gamma."},
        ],
    )
    write_jsonl(
        folder / "questions.jsonl",
        [
            {"id": "q1", "question": "Alpha?", "answers": ["Alpha"], "doc_ids": ["d1"], "date": "2023/01/06"},
            {
                "id": "q2",
                "question": "And beta?",
                "answers": ["Beta"],
                "doc_ids": ["d2"],
                "history": [{"question": "Alpha?", "answer": "Alpha."}],
            },
            {"id": "q3", "question": "Delta?", "answers": [], "answerable": False, "doc_ids": ["d3"]},
        ],
    )
    return folder


def test_a_dataset_folder_loads_documents_and_questions(tmp_path: Path) -> None:
    dataset = load_dataset(make_dataset(tmp_path / "tiny"), corpus_dir=tmp_path / "unused")
    assert dataset.name == "tiny"
    assert [d.id for d in dataset.documents] == ["d1", "d2", "d3"]
    first = dataset.documents[0]
    assert (first.title, first.url, first.published, first.source) == ("One", "https://e.com/1", "2023-01-05", "X")
    assert dataset.documents[2].title == "Three" and dataset.documents[2].content_hash
    q1, q2, q3 = dataset.questions
    assert q1.answerable and q1.answers == ("Alpha",) and q1.date == "2023/01/06" and q1.history == ()
    assert q2.history == (Turn("Alpha?", "Alpha."),)
    assert not q3.answerable and q3.answers == ()


def test_limit_keeps_the_first_questions_and_the_documents_they_name(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "tiny")
    dataset = load_dataset(folder, corpus_dir=tmp_path, limit=2)
    assert [q.id for q in dataset.questions] == ["q1", "q2"]
    assert [d.id for d in dataset.documents] == ["d1", "d2"]
    assert dataset.fingerprint() != load_dataset(folder, corpus_dir=tmp_path).fingerprint()
    assert dataset.fingerprint() == load_dataset(folder, corpus_dir=tmp_path, limit=2).fingerprint()


def test_a_dated_split_keeps_its_questions_and_only_the_documents_they_name(tmp_path: Path) -> None:
    dataset = load_dataset(make_dataset(tmp_path / "tiny"), corpus_dir=tmp_path)
    validation = dated_split(dataset, "validation", boundary="2023-01-06")
    assert [q.id for q in validation.questions] == ["q1"] and [d.id for d in validation.documents] == ["d1"]
    train = dated_split(dataset, "train", boundary="2023-01-06")  # undated questions come before any day
    assert [q.id for q in train.questions] == ["q2", "q3"] and [d.id for d in train.documents] == ["d2", "d3"]
    assert [q.id for q in every_nth(dataset, 2).questions] == ["q1", "q3"]
    asked = asked_between(dataset, "2023-01-01", "2023-01-07")  # the documents stay: one index serves
    assert [q.id for q in asked.questions] == ["q1"] and len(asked.documents) == 3
    assert [q.id for q in asked_between(dataset, before_date="2023-01-06").questions] == ["q2", "q3"]


def test_the_seed_set_is_asked_about_the_article_folder() -> None:
    dataset = load_dataset(ROOT / "eval" / "gold" / "seed.jsonl", corpus_dir=ROOT / "corpus")
    assert dataset.name == "seed" and not dataset.failed
    ids = {d.id for d in dataset.documents}
    assert len(ids) == len(list((ROOT / "corpus").glob("*.md")))
    assert len({q.id for q in dataset.questions}) == len(dataset.questions) >= 40
    for question in dataset.questions:
        assert set(question.doc_ids) <= ids, question.id  # gold doc ids are the loader's ids
        assert question.answerable == bool(question.answers)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"questions.jsonl:2: not valid JSON"),
        ('["a list"]', r"questions.jsonl:2: each line must be a JSON object"),
        ('{"id": "b", "answers": []}', r"questions.jsonl:2: field 'question' must be a str"),
        ('{"id": "b", "question": "q?", "answers": "1,500"}', r"questions.jsonl:2: field 'answers' must be a list"),
        ('{"id": "a", "question": "q?", "answers": []}', r"questions.jsonl:2: id 'a' is used twice"),
        ('{"id": "b", "question": "q?", "answers": [], "history": ["hi"]}', r"questions.jsonl:2: field 'history'"),
        ('{"id": "b", "question": "q?", "answers": [], "answerable": "no"}', r"field 'answerable' must be a bool"),
        ('{"id": "b", "question": "q?", "answers": [1500]}', r"field 'answers' must hold non-empty strings"),
        ('{"id": "b", "question": "q?", "answers": [" "]}', r"field 'answers' must hold non-empty strings"),
        (
            '{"id": "b", "question": "q?", "answers": [], "answerable": true}',
            r"'answerable' is true but 'answers' is empty",
        ),
        ('{"id": "b", "question": "q?", "answers": ["x"], "answerable": false}', r"'answerable' is false but"),
    ],
)
def test_a_bad_question_line_names_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "questions.jsonl"
    path.write_text('{"id": "a", "question": "q?", "answers": []}\n' + line + "\n\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=message):
        load_questions(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"title": "No id", "text": "x"}, r"corpus.jsonl:2: field 'id' is missing or empty"),
        ({"id": "d9", "text": "   "}, r"corpus.jsonl:2: field 'text' is missing or empty"),
        ({"id": "d1", "text": "again"}, r"corpus.jsonl:2: id 'd1' is used by an earlier line"),
    ],
)
def test_a_bad_corpus_line_names_file_line_and_field(tmp_path: Path, row: dict[str, object], message: str) -> None:
    folder = make_dataset(tmp_path / "tiny")
    write_jsonl(folder / "corpus.jsonl", [{"id": "d1", "text": "Alpha."}, row])
    with pytest.raises(DatasetFormatError, match=message):
        load_dataset(folder, corpus_dir=tmp_path)


def test_missing_files_say_what_a_dataset_needs(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="no such dataset"):
        load_dataset(tmp_path / "nowhere", corpus_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetFormatError, match=r"questions.jsonl: no such file; a dataset folder needs corpus.jsonl"):
        load_dataset(tmp_path / "empty", corpus_dir=tmp_path)


def test_under_the_as_of_protocol_a_question_sees_only_what_was_published_by_its_day() -> None:
    from eval.runner import answers_in_corpus, question_filter
    from rag.types import Document, SearchFilter

    documents = (
        Document(id="early", title="Acme", text="Layoffs at Acme.", published="2023-01-03"),
        Document(id="later", title="Globex", text="Layoffs at Globex.", published="2023-03-10"),
        Document(id="undated", title="Initech", text="Layoffs at Initech.", published=""),
    )
    questions = (
        GoldQuestion(id="jan", question="Which company laid off staff?", answers=("Globex",), date="2023/01/06"),
        GoldQuestion(id="mar", question="Which company laid off staff?", answers=("Globex",), date="2023/03/17"),
        GoldQuestion(id="undated-q", question="Which company laid off staff?", answers=("Initech",)),
    )
    dataset = Dataset("toy", documents, questions)
    assert question_filter(questions[0], True) == SearchFilter(as_of="2023-01-06")
    assert question_filter(questions[0], False) is None and question_filter(questions[2], True) is None
    assert answers_in_corpus(dataset, True) == {"jan": False, "mar": True, "undated-q": True}
    assert answers_in_corpus(dataset, False) == {"jan": True, "mar": True, "undated-q": True}
