"""`python -m eval.benchmark --encoders`: each embedding backend's own speed, and an import beside it.

On the first --docs articles of a dataset, for each backend (torch, onnx, onnx-int8), in one run:

- the encoder's own speed: the chunks and headings an import embeds, embedded in the same groups
  (rag.ingest.chunk_vectors), counted in chunks per second;
- `python -m rag import` of the same articles into a new store, in a new process, with that
  backend: the chunks/s it prints (model loading excluded, as it excludes it);
- their ratio, and the new process's time to load the model and embed one question.

Encoder and import alternate --repeats times per backend, and the medians are reported, since
the machine's speed drifts between runs. Written to report.json and report.md.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.config import PROJECT_ROOT, EmbeddingBackend, Settings

BACKENDS: tuple[EmbeddingBackend, ...] = ("torch", "onnx", "onnx-int8")
IMPORT_RATE = re.compile(r"(\d+) chunks, ([\d.]+) chunks/s")
FIRST_QUERY = (
    "import sys, time; began = time.perf_counter()\n"
    "from rag.config import Settings; from rag.embeddings import Embedder\n"
    "Embedder.from_settings(Settings()).embed_query('How many troops did NIS report?')\n"
    "print(round(time.perf_counter() - began, 2), 'torch' in sys.modules)\n"
)


def encoder_rate(backend: EmbeddingBackend, documents: list[Any], settings: Settings) -> float:
    """Chunks per second of the backend embedding what an import of `documents` embeds."""
    from rag.chunking import chunk_document
    from rag.embeddings import Embedder
    from rag.ingest import chunk_vectors, documents_of, embedding_groups

    embedder = Embedder.from_settings(settings.model_copy(update={"embedding_backend": backend}))
    embedder.load()
    embedder.embed(["warm up"] * 8)
    pending = [
        (d, chunk_document(d, settings.chunk_max_chars, settings.chunk_overlap_sentences), True) for d in documents
    ]
    began = time.perf_counter()
    for group in embedding_groups(pending):  # the import's groups
        chunk_vectors(embedder, settings.heading_weight, documents_of(group))
    return sum(len(chunks) for _, chunks, _ in pending) / (time.perf_counter() - began)


def import_rate(backend: EmbeddingBackend, articles: Path, folder: Path) -> float:
    """The chunks/s `python -m rag import` prints for the articles, into a new store."""
    env = {
        **os.environ,
        "CITELINE_STORE_DIR": str(folder),
        "CITELINE_EMBEDDING_BACKEND": backend,
        "CITELINE_CONVERSATIONS_PATH": str(folder / "conversations.sqlite3"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "rag", "import", str(articles)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = IMPORT_RATE.search(result.stdout)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"python -m rag import failed with {backend}:\n{result.stdout}\n{result.stderr[-2000:]}")
    return float(found.group(2))


def first_query(backend: EmbeddingBackend) -> tuple[float, bool]:
    """A new process's seconds to load the backend and embed a question; whether it imported torch."""
    env = {**os.environ, "CITELINE_EMBEDDING_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", FIRST_QUERY], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
    )
    seconds, torch = result.stdout.split()
    return float(seconds), torch == "True"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Embedding backends: {report['dataset']}, first {report['documents']} articles ({report['chunks']} chunks)",
        "",
        f"Commit {report['commit']}, {report['created']}; medians of {report['repeats']} alternations of encoder and "
        "import per backend. The encoder embeds what the import embeds (chunks and headings, in the same groups); "
        "`python -m rag import` runs in a new process into a new store.",
        "",
        "| backend | encoder chunks/s | `rag import` chunks/s | import / encoder | × torch's import | "
        "new process: load + one question s | imports torch |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    torch_import = next(row["import"] for row in report["backends"] if row["backend"] == "torch")
    for row in report["backends"]:
        lines.append(
            f"| {row['backend']} | {row['encoder']:.1f} | {row['import']:.1f} | {row['import'] / row['encoder']:.2f} | "
            f"{row['import'] / torch_import:.2f} | {row['first_query_s']} | {'yes' if row['imports_torch'] else 'no'} |"
        )
    lines.append("")
    return "\n".join(lines)


def run(dataset: Path, docs: int, out: Path, repeats: int = 2) -> dict[str, Any]:
    from eval.datasets import CORPUS_FILE, load_corpus_jsonl
    from eval.runner import git_commit

    settings = Settings()
    documents = load_corpus_jsonl(dataset / CORPUS_FILE)[:docs]
    rows = []
    with tempfile.TemporaryDirectory(prefix="citeline-encoders-") as scratch:
        articles = Path(scratch) / "articles.jsonl"
        fields = ("id", "title", "url", "published", "source", "text")
        articles.write_text("".join(json.dumps({f: getattr(d, f) for f in fields}) + "\n" for d in documents))
        for backend in BACKENDS:
            encoders, imports = [], []
            for attempt in range(repeats):
                encoders.append(encoder_rate(backend, documents, settings))
                imports.append(import_rate(backend, articles, Path(scratch) / f"store-{backend}-{attempt}"))
                print(f"{backend}: encoder {encoders[-1]:.1f} chunks/s, import {imports[-1]:.1f} chunks/s", flush=True)
            seconds, torch = first_query(backend)
            rows.append(
                {
                    "backend": backend,
                    "encoder": round(statistics.median(encoders), 1),
                    "import": round(statistics.median(imports), 1),
                    "encoder_runs": [round(r, 1) for r in encoders],
                    "import_runs": [round(r, 1) for r in imports],
                    "first_query_s": seconds,
                    "imports_torch": torch,
                }
            )
    from rag.chunking import chunk_document

    chunks = sum(len(chunk_document(d, settings.chunk_max_chars, settings.chunk_overlap_sentences)) for d in documents)
    report = {
        "dataset": dataset.name,
        "documents": len(documents),
        "chunks": chunks,
        "commit": git_commit(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "repeats": repeats,
        "backends": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    return report
