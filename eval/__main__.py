"""`python -m eval`: score Citeline and the baselines on a dataset and write a report folder."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from eval.datasets import SPLITS, VALIDATION_FROM
from rag.config import PROJECT_ROOT, Settings

DEFAULT_DATASET = PROJECT_ROOT / "eval" / "gold" / "seed.jsonl"
DEFAULT_INDEX_DIR = PROJECT_ROOT / ".citeline" / "eval"
REPORTS_DIR = PROJECT_ROOT / "eval" / "reports"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eval",
        description="Evaluate Citeline against BM25, dense and stock LangChain baselines on a dataset.",
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        default=DEFAULT_DATASET,
        help="a folder with corpus.jsonl and questions.jsonl, or a questions .jsonl file asked about "
        "--corpus (default: eval/gold/seed.jsonl)",
    )
    parser.add_argument(
        "--corpus", type=Path, default=None, help="article folder for a questions file (default: Settings.corpus_dir)"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="first N questions only, indexing only the documents they name"
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=1,
        help="every N-th question only, indexing only the documents they name (python -m eval.train_answerer uses 2)",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default=None,
        help=f"realtimeqa-2024's questions dated before {VALIDATION_FROM} (train) or from it on (validation), "
        "all of them, indexing only the documents they name",
    )
    parser.add_argument(
        "--questions-from",
        default="",
        metavar="YYYY-MM-DD",
        help="ask only the questions dated on or after this day (the validation split of realtimeqa-2024 is "
        "2024-09-01); all the documents are still indexed",
    )
    parser.add_argument(
        "--questions-before",
        default="",
        metavar="YYYY-MM-DD",
        help="ask only the questions dated before this day; all the documents are still indexed",
    )
    parser.add_argument(
        "--as-of",
        choices=("question", "none"),
        default="question",
        help="question (the default): ask each dated question as of its own day, with only the articles "
        "published by then visible, as a reader that day; none: every article visible",
    )
    parser.add_argument(
        "--configs",
        default=None,
        help="comma-separated: citeline,rrf,bm25,dense,langchain (the default), and citeline-llamacpp, "
        "citeline-openai (answers by an LLM; need `make install-llm`, and CITELINE_LLM_* for the server)",
    )
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: eval/reports/<dataset>-<time>)")
    parser.add_argument(
        "--index-dir",
        type=Path,
        default=DEFAULT_INDEX_DIR,
        help="where indexes are kept and reused (default: .citeline/eval)",
    )
    parser.add_argument(
        "--rebuild-index", action="store_true", help="discard this dataset's indexes and build them again"
    )
    parser.add_argument(
        "--serve-llm",
        action="store_true",
        help="for citeline-openai: serve the llamacpp model (CITELINE_LLM_MODEL_PATH, default SmolLM2) with "
        "llama-cpp-python's OpenAI-compatible server on 127.0.0.1 for this run, instead of CITELINE_LLM_BASE_URL",
    )
    parser.add_argument(
        "--calibrate", action="store_true", help="also find the refusal threshold that maximises accuracy (citeline)"
    )
    return parser


def _shown_path(path: Path) -> str:
    """Paths inside the project are written relative to it, so checked-in reports do not name a machine."""
    resolved = path.resolve()
    return str(resolved.relative_to(PROJECT_ROOT)) if resolved.is_relative_to(PROJECT_ROOT) else str(path)


def _settings_for_report(settings: Settings) -> dict[str, Any]:
    shown = {
        key: _shown_path(value) if isinstance(value, Path) else value for key, value in settings.model_dump().items()
    }
    return {**shown, "llm_api_key": "(not shown)"}


def _with_local_server(settings: Settings, resources: ExitStack, index_dir: Path) -> Settings:
    """Settings whose openai backend is a llama-cpp-python server started for this run."""
    from eval.llm_server import MODEL_ALIAS, local_llm_server
    from rag.llm import LLMConfigError, shipped_gguf

    model = settings.llm_model_path or shipped_gguf()
    if model is None:
        raise LLMConfigError("--serve-llm needs a GGUF model: set CITELINE_LLM_MODEL_PATH or run `make install-llm`")
    log = index_dir / "llm-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    base_url = resources.enter_context(local_llm_server(Path(model), log, settings.llm_context_tokens))
    print(f"serving {model} at {base_url} (log: {_shown_path(log)})")
    return settings.model_copy(update={"llm_base_url": base_url, "llm_model": MODEL_ALIAS})


def main(argv: Sequence[str] | None = None) -> int:
    from eval.configs import (
        ConfigError,
        build_configurations,
        check_llm_backends,
        discard_indexes,
        parse_config_names,
        unthresholded,
    )
    from eval.datasets import DatasetFormatError, asked_between, dated_split, every_nth, load_dataset
    from eval.llm_server import ServerError
    from eval.metrics import summarise
    from eval.report import write_report
    from eval.runner import answers_in_corpus, calibrate, git_commit, run, timestamp
    from rag.llm import LLMConfigError

    args = _parser().parse_args(argv)
    settings = Settings()
    for name, value in (("--limit", args.limit), ("--stride", args.stride)):
        if value is not None and value < 1:
            print(f"error: {name} must be at least 1", file=sys.stderr)
            return 2
    try:
        names = parse_config_names(args.configs, needed=["citeline"] if args.calibrate else [])
        dataset = load_dataset(args.dataset, args.corpus or settings.corpus_dir, args.limit)
        dataset = every_nth(dated_split(dataset, args.split) if args.split else dataset, args.stride)
    except (ConfigError, DatasetFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for failure in dataset.failed:
        print(f"warning: not indexed: {failure}", file=sys.stderr)
    print(f"dataset {dataset.name}: {len(dataset.questions)} questions, {len(dataset.documents)} documents")

    with ExitStack() as resources:
        try:
            if args.serve_llm:
                settings = _with_local_server(settings, resources, args.index_dir)
            check_llm_backends(settings, names)
        except (LLMConfigError, ServerError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        if args.rebuild_index:
            discard_indexes(dataset, args.index_dir)
        configurations = build_configurations(dataset, settings, names, args.index_dir)
        if args.questions_from or args.questions_before:
            dataset = asked_between(dataset, args.questions_from, args.questions_before)
        as_of_question = args.as_of == "question"
        in_corpus = answers_in_corpus(dataset, as_of_question)
        runs = [run(configuration, dataset.questions, in_corpus, as_of_question) for configuration in configurations]

    calibration = None
    if args.calibrate:
        product = next(c for c in configurations if c.name == "citeline")
        calibration = calibrate(run(unthresholded(product), dataset.questions, in_corpus, as_of_question).records)

    answerable = [q for q in dataset.questions if q.answerable]
    configs: dict[str, dict[str, Any]] = {}
    for configuration, configuration_run in zip(configurations, runs, strict=True):
        configs[configuration.name] = {
            **summarise(configuration_run.records),
            "index_chunks": configuration.index.chunks,
            "ingest_chunks_per_s": configuration.index.chunks_per_second,
        }
    report: dict[str, Any] = {
        "dataset": dataset.name,
        "path": _shown_path(args.dataset),
        "commit": git_commit(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "limit": args.limit,
        "stride": args.stride,
        "split": args.split,
        "questions_from": args.questions_from,
        "questions_before": args.questions_before,
        "as_of": args.as_of,
        "settings": _settings_for_report(settings),
        "questions": len(dataset.questions),
        "documents": len(dataset.documents),
        "retrieval_questions": sum(in_corpus[q.id] for q in answerable),
        "left_out": {
            "unanswerable": len(dataset.questions) - len(answerable),
            "answer_not_in_corpus": sum(not in_corpus[q.id] for q in answerable),
        },
        "descriptions": {c.name: c.description for c in configurations},
        "indexes": {
            c.name: {
                "path": _shown_path(Path(c.index.path)),
                "chunks": c.index.chunks,
                "seconds": round(c.index.seconds, 2),
                "reused": c.index.reused,
                "built": c.index.built,
            }
            for c in configurations
        },
        "configs": configs,
        "calibration": calibration,
    }
    out = args.out or REPORTS_DIR / f"{dataset.name}-{timestamp()}"
    write_report(out, report, runs)

    width = max(len(metric) for metric in configs[names[0]])
    print(f"{'':<{width}}  " + "  ".join(f"{name:>10}" for name in names))
    for metric in configs[names[0]]:
        print(f"{metric:<{width}}  " + "  ".join(f"{_plain(configs[name][metric]):>10}" for name in names))
    if calibration:
        print(
            f"calibrated answer_min_score {calibration['answer_min_score']} "
            f"(accuracy {calibration['accuracy_at_threshold']}); "
            f"current {settings.answer_min_score or 'the threshold chosen with the scorer'}"
        )
    print(f"report: {_shown_path(out / 'report.md')}")
    return 0


def _plain(value: object) -> str:
    return "-" if value is None else str(value)


if __name__ == "__main__":
    sys.exit(main())
