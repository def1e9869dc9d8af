"""`python -m eval.benchmark`: retrieval latency and the cost of adding a document, on a large index.

It indexes the first --docs articles of a dataset's corpus.jsonl (reused between runs, like the
eval indexes), then measures, in one process:

- retrieval latency per question for hybrid (learned fusion and reciprocal rank fusion), dense
  and BM25 retrieval, query embedding included (the query vectors and chunks kept in memory are
  dropped before each mode, so no mode starts with what the one before read);
- adding one unseen article: the time to embed its chunks alone, then the time of the whole
  `ingest_documents` call (embedding, Chroma, the BM25 index); the difference is what adding
  costs beyond embedding. The article is removed again afterwards.

Figures are printed and written to report.json and report.md; they are not assertions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from rag.config import PROJECT_ROOT, Settings

DEFAULT_INDEX_DIR = PROJECT_ROOT / ".citeline" / "eval"
REPORTS_DIR = PROJECT_ROOT / "eval" / "reports"
# Retrieval modes timed: hybrid with the learned fusion (the default), hybrid with reciprocal
# rank fusion, and each side alone.
MODES: dict[str, dict[str, str]] = {
    "hybrid (learned fusion)": {"retrieval": "hybrid", "fusion": "learned"},
    "hybrid (rrf)": {"retrieval": "hybrid", "fusion": "rrf"},
    "dense": {"retrieval": "dense"},
    "lexical": {"retrieval": "lexical"},
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a folder with corpus.jsonl and questions.jsonl")
    parser.add_argument("--docs", type=int, default=2000, help="articles to index (default: 2000)")
    parser.add_argument("--queries", type=int, default=200, help="questions timed per retrieval mode (default: 200)")
    parser.add_argument("--adds", type=int, default=3, help="unseen articles added (and removed) one at a time")
    parser.add_argument("--index-dir", type=Path, default=DEFAULT_INDEX_DIR, help="where indexes are kept and reused")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: eval/reports/benchmark-<time>)")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="instead: stores of --sizes chunks, each measured in a new process (eval/scale.py)",
    )
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="store sizes for --scale, in chunks (default: 10k, 100k, 1M)"
    )
    parser.add_argument(
        "--encoders",
        action="store_true",
        help="instead: each embedding backend's texts/s, and `python -m rag import` beside it (eval/encoders.py)",
    )
    return parser


def _milliseconds(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 2),
        "mean": round(statistics.fmean(ordered) * 1000, 2),
    }


def _timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def time_retrieval(assistant: Any, questions: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per mode, latency of retrieving top_k passages for each question, embedding included."""
    from rag.pipeline import build_retriever

    results: dict[str, dict[str, float]] = {}
    for mode, changes in MODES.items():
        retriever = build_retriever(assistant.settings.model_copy(update=changes), assistant.store, assistant.embedder)
        assistant.embedder.forget_queries()
        retriever.retrieve("warm up")  # first-call costs (Chroma's segment load) are not per-query costs
        assistant.embedder.forget_queries()
        assistant.store.forget_chunks()  # each mode starts with none kept from the one before
        results[mode] = _milliseconds([_timed(partial(retriever.retrieve, question)) for question in questions])
    return results


def time_additions(assistant: Any, documents: Sequence[Any]) -> list[dict[str, float | int | str]]:
    """For each unseen document: seconds to embed its chunks alone, and seconds to add it
    (chunk, embed, store, index); it is removed again so the index is left as it was."""
    from rag.chunking import chunk_document

    rows: list[dict[str, float | int | str]] = []
    settings = assistant.settings
    for document in documents:
        chunks = chunk_document(document, settings.chunk_max_chars, settings.chunk_overlap_sentences)
        embed = _timed(partial(assistant.ingestor.chunk_vectors, [(document, chunks)]))
        add = _timed(partial(assistant.ingest_documents, [document]))
        remove = _timed(partial(assistant.remove, document.id))
        rows.append(
            {
                "doc_id": document.id,
                "chunks": len(chunks),
                "embed_s": round(embed, 3),
                "add_s": round(add, 3),
                "overhead_s": round(add - embed, 3),
                "remove_s": round(remove, 3),
            }
        )
    return rows


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Benchmark: {report['dataset']}, {report['documents']} documents, {report['chunks']} chunks",
        "",
        (
            f"Commit {report['commit']}, {report['created']}. Index built in {report['index']['seconds']} s "
            f"({'reused' if report['index']['reused'] else 'built now'})."
        ),
        "",
        f"## Retrieval latency ({report['queries']} questions, top {report['top_k']}, query embedding included)",
        "",
        "| mode | p50 ms | p95 ms | mean ms |",
        "|---|---:|---:|---:|",
        *(f"| {mode} | {t['p50']} | {t['p95']} | {t['mean']} |" for mode, t in report["retrieval_ms"].items()),
        "",
        "## Adding one document",
        "",
        "| document | chunks | embed s | add s | add − embed s | remove s |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {a['doc_id']} | {a['chunks']} | {a['embed_s']} | {a['add_s']} | {a['overhead_s']} | {a['remove_s']} |"
            for a in report["additions"]
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from eval.configs import product_index
    from eval.datasets import (
        CORPUS_FILE,
        QUESTIONS_FILE,
        Dataset,
        DatasetFormatError,
        load_corpus_jsonl,
        load_questions,
    )
    from eval.runner import git_commit, timestamp
    from rag.embeddings import Embedder

    args = _parser().parse_args(argv)
    out = args.out or REPORTS_DIR / f"benchmark-{timestamp()}"
    if args.scale:
        from eval.scale import run as run_scale

        run_scale(args.dataset, [int(size) for size in args.sizes.split(",")], args.queries, args.index_dir, out)
        return 0
    if args.encoders:
        from eval.encoders import run as run_encoders

        run_encoders(args.dataset, args.docs, out)
        return 0
    settings = Settings()
    try:
        documents = load_corpus_jsonl(args.dataset / CORPUS_FILE)
        questions = [q.question for q in load_questions(args.dataset / QUESTIONS_FILE)][: args.queries]
    except DatasetFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if len(documents) < args.docs + args.adds:
        print(
            f"error: {args.dataset} has {len(documents)} documents; --docs {args.docs} and --adds {args.adds} "
            "need more. Lower --docs.",
            file=sys.stderr,
        )
        return 2
    indexed = Dataset(f"{args.dataset.name}-first{args.docs}", tuple(documents[: args.docs]), ())
    embedder = Embedder.from_settings(settings)
    root = args.index_dir / f"{indexed.name}-{indexed.fingerprint()}"
    assistant, info = product_index(indexed, settings, root, embedder, print)
    assistant.warm_up()
    open_seconds = _timed(lambda: len(assistant.store.lexical))
    chunks = assistant.chunk_count()
    print(f"index: {chunks} chunks; BM25 index ready in {open_seconds:.2f} s")

    retrieval = time_retrieval(assistant, questions)
    additions = time_additions(assistant, documents[args.docs : args.docs + args.adds])
    report = {
        "dataset": args.dataset.name,
        "commit": git_commit(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "documents": args.docs,
        "chunks": chunks,
        "queries": len(questions),
        "top_k": settings.top_k,
        "index": {"seconds": round(info.seconds, 1), "reused": info.reused, "chunks_per_s": info.chunks_per_second},
        "bm25_ready_s": round(open_seconds, 3),
        "retrieval_ms": retrieval,
        "additions": additions,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = _markdown(report)
    (out / "report.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
