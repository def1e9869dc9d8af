"""The CLI, in process through main(argv) and once as a real `python -m rag` subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.__main__ import main
from rag.config import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CITELINE_STORE_DIR", str(settings.store_dir))
    monkeypatch.setenv("CITELINE_CORPUS_DIR", str(settings.corpus_dir))
    return settings


def test_ingest_twice_then_ask_list_remove(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 1
    assert "run `python -m rag ingest` first" in capsys.readouterr().err
    assert not cli_env.store_dir.exists(), "asking about a missing store does not create one"
    assert main(["ingest"]) == 0
    assert capsys.readouterr().out.startswith("4 documents embedded")
    assert main(["ingest", str(cli_env.corpus_dir)]) == 0
    assert capsys.readouterr().out.startswith("0 documents embedded")

    assert main(["ask", "--json", "How many troops did NIS report?"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["refused"] is False and "1,500" in payload["answer"]
    assert (payload["passages_sent"], payload["passages_retrieved"]) == (None, 5)  # no LLM, nothing trimmed
    citation = payload["citations"][0]
    assert {"n", "doc_id", "title", "passage", "start", "end"} <= citation.keys()
    assert "(NIS) announced that North Korea had sent 1,500 soldiers" in citation["passage"]

    assert main(["ask", "How many troops did NIS report?"]) == 0
    text = capsys.readouterr().out
    assert "1,500" in text and "Sources:" in text and "[1] The Secret Weapon of Russia" in text

    assert main(["list"]) == 0
    assert "north-korean-soldiers-russia" in capsys.readouterr().out
    assert main(["remove", "north-korean-soldiers-russia"]) == 0
    assert main(["remove", "north-korean-soldiers-russia"]) == 1
    assert "no document with id" in capsys.readouterr().err


def test_ingest_reports_bad_files_by_name_and_exits_1(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    (cli_env.corpus_dir / "empty.md").write_text("")
    assert main(["ingest"]) == 1
    captured = capsys.readouterr()
    assert "4 documents embedded" in captured.out
    assert "empty.md: is empty" in captured.err


def test_mismatched_store_is_a_clear_error(cli_env: Settings, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["ingest"]) == 0
    monkeypatch.setenv("CITELINE_CHUNK_MAX_CHARS", "300")
    assert main(["list"]) == 2
    assert "--rebuild" in capsys.readouterr().err


def test_python_dash_m_rag_refuses_an_off_topic_question(cli_env: Settings) -> None:
    env = {**os.environ, "CITELINE_STORE_DIR": str(cli_env.store_dir), "CITELINE_CORPUS_DIR": str(cli_env.corpus_dir)}
    ingest = subprocess.run([sys.executable, "-m", "rag", "ingest"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert ingest.returncode == 0, ingest.stderr
    asked = subprocess.run(
        [sys.executable, "-m", "rag", "ask", "--json", "Who won the 2018 FIFA World Cup?"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert asked.returncode == 0, asked.stderr
    payload = json.loads(asked.stdout)
    assert payload["refused"] is True and payload["citations"] == []


def test_chat_keeps_one_conversation_across_lines(
    cli_env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    assert main(["ingest"]) == 0
    capsys.readouterr()
    lines = "How many troops did NIS report?\n\nWhat about the later South Korean intelligence briefing?\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["chat", "--json"]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["standalone_query"] == "How many troops did NIS report?" and "1,500" in first["answer"]
    assert second["standalone_query"] == "How many troops did NIS report? the later South Korean intelligence briefing"
    assert {"answer", "short_answer", "refused", "citations"} <= second.keys() and "3,000" in second["answer"]

    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["chat"]) == 0
    text = capsys.readouterr().out
    assert "(searched for: How many troops did NIS report? the later South Korean intelligence briefing)" in text
    assert text.count("Sources:") == 2


def test_ask_filters_by_source_and_date_and_names_a_bad_filter(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest"]) == 0
    capsys.readouterr()
    pentagon_day = ["--since", "2024-11-04", "--until", "2024-11-04"]
    assert main(["ask", "--json", *pentagon_day, "How many North Korean troops are in Kursk?"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {c["published"] for c in payload["citations"]} == {"2024-11-04"} and "10,000" in payload["answer"]

    vergun = "DOD News (U.S. Department of Defense), by David Vergun"
    pentagon = ["--source", vergun, "--source", "DOD News (U.S. Department of Defense)"]
    assert main(["ask", "--json", *pentagon, "How many North Korean troops are in Kursk?"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["citations"] and all(c["source"].startswith("DOD News") for c in payload["citations"])
    assert {c["source"] for c in payload["citations"]} == {vergun, "DOD News (U.S. Department of Defense)"}
    assert (
        main(["ask", "--json", "--source", "DOD News (U.S. Department of Defense)", "How many troops did NIS report?"])
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert all(c["source"] == "DOD News (U.S. Department of Defense)" for c in payload["citations"])

    assert main(["ask", "--source", "Reuters", "How many troops?"]) == 2
    error = capsys.readouterr().err
    assert "no stored document has the source 'Reuters'" in error and "DOD News" in error
    assert main(["ask", "--since", "2024-12-01", "--until", "2024-11-01", "How many troops?"]) == 2
    assert "the date range is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["ask", "--since", "last week", "How many troops?"])
    assert "write it as YYYY-MM-DD" in capsys.readouterr().err


ARTICLES = [
    {
        "id": "a1",
        "title": "Troops",
        "published": "2024-10-18",
        "source": "Wire",
        "text": "The NIS reported 1,500 soldiers.",
    },
    {
        "id": "a2",
        "title": "Missiles",
        "published": "2024-10-19",
        "source": "Wire",
        "text": "ATACMS can reach 190 miles.",
    },
    {"id": "a3", "title": "Talks", "url": "https://example.org/t", "text": "Austin met Kim Yong-hyun at the Pentagon."},
]


def write_articles(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows), encoding="utf-8"
    )
    return path


def test_import_reads_jsonl_articles_reports_bad_lines_and_resumes(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An import stopped after its first article, then run again on the whole file, ends as one whole import.
    assert main(["import", str(write_articles(tmp_path / "part.jsonl", ARTICLES[:1]))]) == 0
    capsys.readouterr()
    bad = ["{not json", {"id": "a4", "text": "  "}, {"id": "a1", "text": "A second a1."}]
    assert main(["import", str(write_articles(tmp_path / "all.jsonl", [*ARTICLES, *bad]))]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("2 documents embedded (2 new, 0 changed;") and "1 unchanged" in out and "documents/s" in out
    assert "all.jsonl:4: is not valid JSON" in err
    assert "all.jsonl:5: field 'text' is missing or empty" in err
    assert "all.jsonl:6: id 'a1' is used by an earlier line" in err
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert [line.split("\t")[0] for line in listed.splitlines()] == ["a2", "a1", "a3"]  # newest first, undated last
    assert main(["ask", "--json", "How far can ATACMS reach?"]) == 0
    assert json.loads(capsys.readouterr().out)["citations"][0]["doc_id"] == "a2"


def test_import_of_a_missing_file_says_what_to_give(cli_env: Settings, tmp_path: Path, capsys) -> None:
    assert main(["import", str(tmp_path / "nothing.jsonl")]) == 2
    assert "no such file; give a .jsonl file with one article per line" in capsys.readouterr().err


def test_writing_to_a_store_another_process_made_prints_no_chroma_warning(cli_env: Settings, tmp_path: Path) -> None:
    env = {**os.environ, "CITELINE_STORE_DIR": str(cli_env.store_dir), "CITELINE_CORPUS_DIR": str(cli_env.corpus_dir)}

    def run_import(rows: list[object], name: str) -> subprocess.CompletedProcess[str]:
        path = write_articles(tmp_path / name, rows)
        return subprocess.run(
            [sys.executable, "-m", "rag", "import", str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    first = run_import(ARTICLES[:1], "first.jsonl")
    assert first.returncode == 0, first.stderr
    second = run_import(ARTICLES[1:], "second.jsonl")  # a new process writing to the stored collection
    assert second.returncode == 0, second.stderr
    assert "Warning" not in second.stderr and "Could not reconstruct" not in second.stderr


def test_a_question_of_100000_characters_is_refused_before_any_work(tmp_path: Path) -> None:
    """Refused before the store or the model is opened: with neither there (a missing model
    would fail, a missing store would warn), the length is still what the message is about."""
    env = {
        **os.environ,
        "CITELINE_STORE_DIR": str(tmp_path / "no-store"),
        "CITELINE_EMBEDDING_MODEL": str(tmp_path / "no-model"),
    }
    began = time.perf_counter()
    asked = subprocess.run(
        [sys.executable, "-m", "rag", "ask", "troops " * 14_286], cwd=ROOT, env=env, capture_output=True, text=True
    )
    print(f"refused in {time.perf_counter() - began:.2f} s, Python's start included")
    assert asked.returncode == 2 and asked.stdout == ""
    assert "100,002 characters long; questions are limited to 4,000 (CITELINE_QUESTION_MAX_CHARS)" in asked.stderr
    assert not (tmp_path / "no-store").exists()


def test_ask_as_of_a_day_cites_nothing_published_after_it(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest"]) == 0
    capsys.readouterr()
    question = "How many North Korean troops are in Kursk?"
    assert main(["ask", "--json", "--as-of", "2024-11-01", question]) == 0
    as_of = json.loads(capsys.readouterr().out)
    assert as_of["as_of"] == "2024-11-01" and as_of["notice"].startswith("As of 2024-11-01")
    assert all(c["published"] <= "2024-11-01" for c in as_of["citations"])
    assert main(["ask", "--json", question]) == 0
    today = json.loads(capsys.readouterr().out)
    assert "2024-11-18" in {c["published"] for c in today["citations"]} and today["as_of"] == ""


def test_a_relative_short_answer_says_what_it_meant_on_its_articles_day(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest"]) == 0
    capsys.readouterr()
    assert main(["ask", "--json", "When did North Korean troops enter Russia?"]) == 0
    answer = json.loads(capsys.readouterr().out)
    said_in = next(c for c in answer["citations"] if "last month" in c["passage"])
    assert answer["short_answer"] == "last month" and said_in["published"].startswith("2024-11")
    assert answer["short_answer_date"] == "October 2024"
    assert main(["ask", "When did North Korean troops enter Russia?"]) == 0
    assert capsys.readouterr().out.startswith("Answer: last month (October 2024)")
