"""`python -m eval` end to end: the quality gate on the seed set, report files, index reuse,
left-out questions on a dataset folder, and scoring of single answers."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from eval.__main__ import main
from eval.datasets import GoldQuestion
from eval.runner import prediction, score_question
from rag.types import Answer, Chunk, Citation, Passage

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ["citeline", "rrf", "bm25", "dense", "langchain"]


def test_seed_gold_set_meets_the_thresholds_and_writes_a_full_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    args = ["--index-dir", str(tmp_path / "indexes"), "--corpus", str(ROOT / "corpus")]
    assert main([*args, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert {"dataset", "commit", "settings", "questions", "left_out", "configs"} <= set(report)
    assert list(report["configs"]) == CONFIGS
    assert report["questions"] >= 40 and report["left_out"]["unanswerable"] >= 10

    floors = tomllib.loads((ROOT / "eval" / "thresholds.toml").read_text())["seed"]
    below = {
        (config, name): (metrics[name], floor)
        for config, metrics in report["configs"].items()
        for name, floor in {**floors["all"], **floors.get(config, {})}.items()
        if metrics[name] is None or metrics[name] < floor
    }
    assert not below, f"metrics below their floors (value, floor): {below}"

    markdown = (out / "report.md").read_text()
    assert "| metric | citeline | rrf | bm25 | dense | langchain |" in markdown
    assert "| answer_hit@4000c" in markdown and "| f1" in markdown
    for plot in ("answer_hit_at_k.png", "answer_hit_by_budget.png", "latency.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    lines = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert len(lines) == report["questions"] * len(CONFIGS)
    nis = next(line for line in lines if line["config"] == "citeline" and line["id"] == "seed-001")
    assert nis["first_hit"] == 1 and "1,500" in nis["answer"] and nis["retrieved"][0]["doc_id"]
    assert "answer_hit@5" in capsys.readouterr().out

    # Same dataset and settings: the indexes are reused, and the run says so.
    again_args = ["--out", str(tmp_path / "again"), "--limit", "5", "--configs", "citeline,langchain", "--calibrate"]
    assert main([*args, *again_args]) == 0
    printed = capsys.readouterr().out
    assert "index citeline: reusing" in printed and "index langchain: reusing" in printed
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert again["questions"] == 5 and list(again["configs"]) == ["citeline", "langchain"]
    assert all(index["reused"] for index in again["indexes"].values())
    assert 0.0 <= again["calibration"]["answer_min_score"] <= 1.0
    assert "calibrated answer_min_score" in printed


MINI_CORPUS = [
    {
        "id": "nk",
        "title": "Troops",
        "published": "2024-10-18",
        "source": "Wire",
        "text": "South Korea's spy agency said North Korea sent 1,500 soldiers to Russia's Far East.",
    },
    {
        "id": "kr",
        "title": "Kursk",
        "published": "2024-11-04",
        "source": "DoD",
        "text": "The Pentagon said about 10,000 North Korean troops were in Kursk Oblast.",
    },
]
MINI_QUESTIONS = [
    {"id": "a", "question": "How many soldiers did North Korea send to Russia's Far East?", "answers": ["1,500"]},
    {"id": "b", "question": "How many troops were in Kursk?", "answers": ["10,000"], "doc_ids": ["kr"]},
    {"id": "c", "question": "Who is the mayor of Kursk?", "answers": ["Alexander Nikitin"]},  # not in the corpus
    {"id": "d", "question": "Who won the 2018 World Cup?", "answers": [], "answerable": False},
    {
        "id": "e",
        "question": "And where were the 1,500 sent?",
        "answers": ["Far East"],
        "history": [{"question": "How many soldiers?", "answer": "1,500"}],
    },
]


def write_mini_dataset(folder: Path, corpus: list[dict[str, str]] = MINI_CORPUS) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (folder / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in MINI_QUESTIONS))
    return folder


def test_a_dataset_folder_reports_what_was_left_out_of_retrieval_metrics(tmp_path: Path) -> None:
    folder = write_mini_dataset(tmp_path / "mini")
    out = tmp_path / "report"
    args = ["--dataset", str(folder), "--index-dir", str(tmp_path / "ix"), "--out", str(out)]
    assert main([*args, "--configs", "bm25,citeline"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "mini" and report["documents"] == 2
    assert report["left_out"] == {"unanswerable": 1, "answer_not_in_corpus": 1}
    assert report["retrieval_questions"] == 3
    assert list(report["configs"]) == ["citeline", "bm25"]  # canonical order, whatever was typed
    citeline = report["configs"]["citeline"]
    assert citeline["retrieval_questions"] == 3 and citeline["answer_hit@10"] == 1.0
    assert citeline["doc_hit@5"] == 1.0  # only question b names its documents
    lines = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    follow_up = next(line for line in lines if line["id"] == "e")
    assert follow_up["history"] == [{"question": "How many soldiers?", "answer": "1,500"}]


def test_both_llm_backends_are_evaluated_and_every_citation_they_make_resolves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITELINE_LLM_MAX_TOKENS", "60")  # SmolLM2 on the CPU: keep it short
    folder = write_mini_dataset(tmp_path / "mini")
    out = tmp_path / "report"
    args = ["--dataset", str(folder), "--index-dir", str(tmp_path / "ix"), "--out", str(out), "--serve-llm"]
    assert main([*args, "--configs", "citeline-openai,citeline-llamacpp,citeline"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["configs"]) == ["citeline", "citeline-llamacpp", "citeline-openai"]
    for name in ("citeline-llamacpp", "citeline-openai"):
        assert report["configs"][name]["citation_validity"] == 1.0, name
        assert report["configs"][name]["answer_hit@10"] == report["configs"]["citeline"]["answer_hit@10"]
    assert report["settings"]["llm_api_key"] == "(not shown)"
    lines = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert {line["config"] for line in lines} == {"citeline", "citeline-llamacpp", "citeline-openai"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--configs", "citeline-openai"], "CITELINE_LLM=openai needs CITELINE_LLM_BASE_URL"),
        (["--configs", "citeline,gpt"], "unknown configuration 'gpt'; choose from citeline, rrf, bm25, dense, langchain"),
        (["--dataset", "no/such/folder"], "no such dataset"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--stride", "0"], "--stride must be at least 1"),
        (["--configs", "bm25", "--calibrate"], "needs the citeline configuration; add it to --configs"),
    ],
)
def test_bad_arguments_are_named_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main([*args, "--index-dir", str(tmp_path / "ix")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "ix").exists()


def _passage(doc_id: str, text: str, start: int = 0) -> Passage:
    return Passage(Chunk(f"{doc_id}:0", doc_id, 0, text, start, start + len(text)), 0.5)


def _citation(n: int, passage: Passage) -> Citation:
    chunk = passage.chunk
    return Citation(n, chunk.doc_id, "", "", "", "", chunk.text, chunk.start, chunk.start, chunk.end, 0.5)


def test_score_question_checks_answer_citations_and_ranking() -> None:
    right = _passage("nk", "North Korea sent 1,500 soldiers.")
    other = _passage("kr", "About 10,000 troops were in Kursk.")
    question = GoldQuestion("q", "How many soldiers?", ("1,500",), doc_ids=("kr",))
    answer = Answer(
        text="North Korea sent 1,500 soldiers. [1]",
        refused=False,
        citations=(_citation(1, right),),
        passages=(right, other),
        short_answer="1,500 soldiers",
        timings_ms={"retrieve": 1.0, "answer": 2.0, "total": 3.0},
    )
    record = score_question(question, answer, [other, right], in_corpus=True)
    assert record.first_hit == 2 and record.doc_hit is True
    assert record.answer_contains and record.citations_valid
    assert (record.cited, record.cited_correct) == (1, 1)
    assert record.exact_match == 0.0 and record.f1 == pytest.approx(2 / 3)

    # Marker numbers are not answer text: "[2]" does not answer "how many", "2".
    two = GoldQuestion("t", "How many nations?", ("2",))
    marked = Answer(text="Both nations signed. [1] [2]", refused=False, citations=(), passages=(right,))
    assert not score_question(two, marked, [right], in_corpus=True).answer_contains

    unretrieved = _passage("elsewhere", "North Korea sent 1,500 soldiers.")
    bad = Answer(
        text=answer.text + " Also [2].", refused=False, citations=(_citation(1, unretrieved),), passages=(right,)
    )
    assert not score_question(question, bad, [right], in_corpus=True).citations_valid


def test_prediction_is_the_short_answer_else_the_text_without_markers() -> None:
    assert prediction(Answer(text="Sent 1,500. [1]", refused=False, short_answer="1,500")) == "1,500"
    assert prediction(Answer(text="Sent 1,500. [1]", refused=False)) == "Sent 1,500."
    assert prediction(Answer(text="I could not find that.", refused=True)) == ""


def test_an_index_is_rebuilt_when_a_document_changes_or_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_mini_dataset(tmp_path / "mini")
    args = ["--dataset", str(folder), "--index-dir", str(tmp_path / "ix"), "--out", str(tmp_path / "r"), "--configs"]
    assert main([*args, "citeline"]) == 0
    assert "index citeline: building" in capsys.readouterr().out
    assert main([*args, "citeline"]) == 0
    assert "index citeline: reusing" in capsys.readouterr().out

    edited = [{**MINI_CORPUS[0], "text": MINI_CORPUS[0]["text"].replace("1,500", "3,000")}, MINI_CORPUS[1]]
    write_mini_dataset(folder, edited)
    assert main([*args, "citeline"]) == 0
    assert "index citeline: building" in capsys.readouterr().out

    assert main([*args, "citeline", "--rebuild-index"]) == 0
    assert "index citeline: building" in capsys.readouterr().out
