"""`python -m eval`: score Citeline on a gold question set and write a JSON report."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rag.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GOLD = ROOT / "eval" / "gold" / "seed.jsonl"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description="Evaluate Citeline on gold questions.")
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="questions .jsonl (default: the seed set)")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus folder (default: Settings.corpus_dir)")
    parser.add_argument(
        "--store", type=Path, default=None, help="index folder (default: .citeline/eval/<gold>-<index shape>)"
    )
    parser.add_argument("--out", type=Path, default=None, help="report path (default: eval/reports/<gold>-<time>.json)")
    parser.add_argument(
        "--calibrate", action="store_true", help="also find the refusal threshold that maximises accuracy"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from eval.runner import GoldFormatError, calibrate, evaluate, git_commit, load_questions, timestamp
    from rag.pipeline import Assistant

    args = _parser().parse_args(argv)
    base = Settings()
    name = args.gold.stem
    # One index per gold set and index shape: reused while both are unchanged, never mixed.
    shape = hashlib.sha1(json.dumps(base.index_shape(), sort_keys=True).encode()).hexdigest()[:8]
    settings = base.model_copy(
        update={
            "corpus_dir": args.corpus or base.corpus_dir,
            "store_dir": args.store or ROOT / ".citeline" / "eval" / f"{name}-{shape}",
        }
    )
    try:
        questions = load_questions(args.gold)
    except (OSError, GoldFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    assistant = Assistant.from_settings(settings)
    ingest = assistant.ingest()
    for failure in ingest.failed:
        print(f"warning: not indexed: {failure}", file=sys.stderr)
    result = evaluate(assistant, questions)
    if args.calibrate:
        unthresholded = Assistant.from_settings(settings.model_copy(update={"answer_min_score": 0.0}))
        result.calibration = calibrate(evaluate(unthresholded, questions, label="calibrating").records)
    report = result.report(
        gold=str(args.gold),
        commit=git_commit(),
        settings=json.loads(settings.model_dump_json()),
        ingest=ingest.summary(),
    )
    out = args.out or ROOT / "eval" / "reports" / f"{name}-{timestamp()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    width = max(len(key) for key in result.metrics)
    for key, value in result.metrics.items():
        print(f"{key:<{width}}  {value}")
    if result.calibration:
        print(
            f"calibrated answer_min_score {result.calibration['answer_min_score']} "
            f"(accuracy {result.calibration['accuracy_at_threshold']}); current {settings.answer_min_score}"
        )
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
