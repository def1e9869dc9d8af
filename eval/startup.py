"""How long from `python -m rag serve` (what `make run` starts after its ingest) printing its
URL to the first answer on screen, in the system's Chromium, on an already indexed corpus.

    python -m eval.startup [--runs 3] [--out eval/reports/startup-<time>]

Each run starts a new server process (the model and indexes load once per server); the browser
is already open, as a reader's would be. Prints the figures and writes report.json and report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from eval.app_server import ROOT, chromium, streamlit_app

QUESTION = "How many troops did NIS report?"


def indexed_site(folder: Path) -> dict[str, str]:
    """The shipped corpus copied and indexed with `python -m rag ingest`, as `make run` does
    (with default settings: the caller's own CITELINE_* variables are left out)."""
    shutil.copytree(ROOT / "corpus", folder / "corpus")
    env = {"CITELINE_STORE_DIR": str(folder / "store"), "CITELINE_CORPUS_DIR": str(folder / "corpus")}
    defaults = {k: v for k, v in os.environ.items() if not k.startswith("CITELINE_")}
    subprocess.run([sys.executable, "-m", "rag", "ingest"], cwd=ROOT, env={**defaults, **env}, check=True)
    return env


def one_run(env: dict[str, str], log: Path) -> dict[str, float]:
    """Seconds from the URL printed to the page ready and to the first answer shown."""
    with chromium() as browser, streamlit_app(env, log) as app:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(app.url)
        page.get_by_test_id("stChatInputTextArea").wait_for(state="visible")
        ready = time.perf_counter() - app.url_printed_at
        box = page.get_by_test_id("stChatInputTextArea")
        box.fill(QUESTION)
        box.press("Enter")
        page.locator('[data-testid="stChatMessage"]', has_text="1,500 soldiers").first.wait_for(state="visible")
        answered = time.perf_counter() - app.url_printed_at
    return {"page_ready_s": round(ready, 2), "first_answer_s": round(answered, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="server starts to time (default 3)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default eval/reports/startup-<time>)")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "eval" / "reports" / f"startup-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="citeline-startup-") as scratch:
        env = indexed_site(Path(scratch))
        runs = [one_run(env, Path(scratch) / f"streamlit-{i}.log") for i in range(args.runs)]
    first = [r["first_answer_s"] for r in runs]
    ready = [r["page_ready_s"] for r in runs]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    report = {
        "question": QUESTION,
        "runs": runs,
        "first_answer_median_s": statistics.median(first),
        "page_ready_median_s": statistics.median(ready),
        "commit": commit,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Launch to first answer",
        "",
        f"`python -m rag serve` (as `make run`) on the indexed shipped corpus; Chromium asks “{QUESTION}”",
        f"as soon as the page is ready. Seconds from the URL printed. Commit {commit[:12]}, {report['when']}.",
        "",
        "| run | page ready | first answer on screen |",
        "|---:|---:|---:|",
        *(f"| {i} | {r['page_ready_s']:.1f} | {r['first_answer_s']:.1f} |" for i, r in enumerate(runs, start=1)),
        f"| median | {report['page_ready_median_s']:.1f} | {report['first_answer_median_s']:.1f} |",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nreport: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
