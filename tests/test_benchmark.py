"""The benchmark command runs end to end on a tiny corpus and writes its figures (no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.benchmark import main

ARTICLES = [
    ("a1", "Parliament approved the budget on Tuesday after a long debate about defence spending."),
    ("a2", "The central bank held interest rates at 4 percent, citing slowing inflation."),
    ("a3", "Floods closed two highways in the north of the country on Monday."),
    ("a4", "A new museum of maritime history opened in the old harbour district."),
]


def test_benchmark_writes_latency_and_addition_figures(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with (data / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        for doc_id, text in ARTICLES:
            corpus.write(json.dumps({"id": doc_id, "title": doc_id, "text": text, "published": "2023-01-02"}) + "\n")
    questions = ["What did parliament approve?", "Where did floods close highways?"]
    (data / "questions.jsonl").write_text(
        "".join(json.dumps({"id": f"q{i}", "question": q, "answers": ["x"]}) + "\n" for i, q in enumerate(questions)),
        encoding="utf-8",
    )
    out = tmp_path / "report"
    argv = [
        "--dataset",
        str(data),
        "--docs",
        "3",
        "--adds",
        "1",
        "--index-dir",
        str(tmp_path / "index"),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["documents"] == 3 and report["queries"] == 2
    assert set(report["retrieval_ms"]) == {"hybrid (learned fusion)", "hybrid (rrf)", "dense", "lexical"}
    assert all(t["p50"] > 0 for t in report["retrieval_ms"].values())
    [added] = report["additions"]
    assert added["doc_id"] == "a4" and added["chunks"] == 1 and added["add_s"] > 0
    assert "| hybrid (learned fusion) |" in (out / "report.md").read_text(encoding="utf-8")
    assert main(argv) == 0  # the second run reuses the index, and the added article was removed again
    again = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert again["index"]["reused"] and again["chunks"] == report["chunks"]


def test_benchmark_says_when_the_corpus_is_too_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "corpus.jsonl").write_text(json.dumps({"id": "a", "text": "One article."}) + "\n", encoding="utf-8")
    (data / "questions.jsonl").write_text(json.dumps({"id": "q", "question": "What?", "answers": []}) + "\n")
    assert main(["--dataset", str(data), "--docs", "5"]) == 2
    assert "Lower --docs" in capsys.readouterr().err
