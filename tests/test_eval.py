"""Quality gate: the seed gold set through the real pipeline, against eval/thresholds.toml."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from eval.__main__ import main
from eval.metrics import QuestionRecord, best_threshold, contains_answer, normalise, percentile, summarise
from eval.runner import GoldFormatError, load_questions

ROOT = Path(__file__).resolve().parent.parent


def test_seed_gold_set_meets_the_thresholds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    assert main(["--store", str(tmp_path / "store"), "--out", str(out), "--corpus", str(ROOT / "corpus")]) == 0
    report = json.loads(out.read_text())
    metrics = report["metrics"]
    assert metrics["questions"] >= 20 and metrics["unanswerable"] >= 5
    floors = tomllib.loads((ROOT / "eval" / "thresholds.toml").read_text())["seed"]
    below = {name: (metrics[name], floor) for name, floor in floors.items() if metrics[name] < floor}
    assert not below, f"metrics below their floors (value, floor): {below}"
    assert len(report["questions"]) == metrics["questions"]
    assert "answer_accuracy" in capsys.readouterr().out


def test_gold_file_is_well_formed() -> None:
    questions = load_questions(ROOT / "eval" / "gold" / "seed.jsonl")
    assert len({q.id for q in questions}) == len(questions)
    corpus_ids = {p.stem for p in (ROOT / "corpus").glob("*.md")}
    for question in questions:
        assert set(question.doc_ids) <= corpus_ids, question.id
        assert question.answerable == bool(question.answers)


def test_bad_gold_line_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": "a", "question": "q?", "answers": []}\n{"id": "b", "answers": []}\n')
    with pytest.raises(GoldFormatError, match=r"gold.jsonl:2: field 'question'"):
        load_questions(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("The  U.S. “Army”!", "us army"), ("An apple, a day", "apple day"), ("1,500", "1500")],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("text", "answers", "found"),
    [
        ("sent 1,500 soldiers", ["1,500"], True),
        ("sent 11,500 soldiers", ["1,500"], False),
        ("in Russia’s Far East.", ["Russia’s Far East"], True),
        ("anything", [], False),
    ],
)
def test_contains_answer(text: str, answers: list[str], found: bool) -> None:
    assert contains_answer(text, answers) is found


def test_percentile() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(map(float, range(1, 101))), 95) == 95.0


def record(answerable: bool, refused: bool, correct: bool, cited: int = 1, cited_correct: int = 1) -> QuestionRecord:
    return QuestionRecord("q", answerable, refused, correct, correct, cited, cited_correct, 0.5, 1.0, 2.0, 3.0)


def test_summarise_counts_each_rate_over_its_own_questions() -> None:
    metrics = summarise(
        [
            record(True, False, True),
            record(True, False, False, cited=2, cited_correct=0),
            record(True, True, False, cited=0, cited_correct=0),
            record(False, True, False, cited=0, cited_correct=0),
        ],
        k=5,
    )
    assert metrics["answer_accuracy"] == round(1 / 3, 4)
    assert metrics["false_refusal_rate"] == round(1 / 3, 4)
    assert metrics["refusal_accuracy"] == 1.0
    assert metrics["citation_accuracy"] == 0.5
    assert metrics["citation_precision"] == round(1 / 3, 4)


def test_best_threshold_separates_answerable_from_unanswerable() -> None:
    scored = [(0.9, True, True), (0.7, True, True), (0.4, False, False), (0.2, False, False), (0.5, True, False)]
    threshold, accuracy = best_threshold(scored)
    assert 0.4 < threshold <= 0.7 and accuracy == 0.8
