"""`python -m eval.benchmark --scale`: how retrieval, memory, opening and adding grow with the store.

Stores of about 10k, 100k and 1M chunks are built from realtimeqa's articles, chunked as an
ingest chunks them. Their vectors are computed once with the configured backend and kept
(.citeline/eval/scale/), so the stores are rebuilt without the model. Past the first 100k real
chunks (REAL_CHUNKS; realtimeqa-2024 has about 125k), a store holds copies of them: copy c of a document has its own
id, the same text, and each vector moved by seeded noise (cosine about 0.98 to the original) and
renormalised, so the dense index holds distinct points near real ones and BM25 sees real term
statistics, repeated. The report says how many chunks were real.

Each size is then measured in a new process (eval.scale_probe), one at a time: the model's
load, opening the store and answering a first question, retrieval latency per mode (query
embedding included), resident memory, reading the stories' signatures (which the first change
in a process does, and a running app's start), and adding then removing one unseen article.
Figures are printed and written to report.json, report.md and scale.png; they are not assertions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunk_records import ChunkRecords
from rag.config import PROJECT_ROOT, Settings
from rag.types import Chunk, Document

SIZES = (10_000, 100_000, 1_000_000)
REAL_CHUNKS = 100_000  # at most this many real chunks; larger stores are copies of them
WRITE_CHUNKS = 2048  # chunks per store write while building
SETTLE_CHUNKS = 250_000  # compact the BM25 index this often while building (bounds its memory)
COPY_NOISE = 0.01  # per-dimension noise on a copy's vector (unit 384-d vectors: cosine ~0.98)

DocumentChunks = tuple[Document, list[Chunk]]


def real_chunks(documents: Sequence[Document], settings: Settings, limit: int) -> list[DocumentChunks]:
    """Whole documents in corpus order, chunked, until they hold at least `limit` chunks (or all)."""
    from rag.chunking import chunk_document

    taken: list[DocumentChunks] = []
    total = 0
    for document in documents:
        if total >= limit:
            break
        chunks = chunk_document(document, settings.chunk_max_chars, settings.chunk_overlap_sentences)
        if chunks:
            taken.append((document, chunks))
            total += len(chunks)
    return taken


def _key(parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cached_vectors(
    taken: Sequence[DocumentChunks], settings: Settings, folder: Path, log: Any = print
) -> list[np.ndarray]:
    """Per document, its chunk vectors as an ingest makes them, computed once in parts and kept
    in `folder` (an interrupted run resumes at the next part)."""
    from rag.embeddings import Embedder
    from rag.ingest import chunk_vectors

    embedder = Embedder.from_settings(settings)
    folder.mkdir(parents=True, exist_ok=True)
    vectors: list[np.ndarray] = []
    part_documents = 500
    for first in range(0, len(taken), part_documents):
        part = taken[first : first + part_documents]
        path = folder / f"part-{first:06d}-{len(part)}.npz"
        if not path.exists():
            began = time.perf_counter()
            made = chunk_vectors(embedder, settings.heading_weight, part)
            arrays = {f"d{i}": np.asarray(v, dtype=np.float32) for i, v in enumerate(made)}
            np.savez(path.with_suffix(".tmp.npz"), **arrays)
            path.with_suffix(".tmp.npz").rename(path)
            chunks = sum(len(c) for _, c in part)
            rate = chunks / (time.perf_counter() - began)
            log(f"vectors: {first + len(part)}/{len(taken)} documents ({rate:.0f} chunks/s)")
        with np.load(path) as stored:
            vectors.extend(stored[f"d{i}"] for i in range(len(part)))
    return vectors


def _copy(document: Document, chunks: Sequence[Chunk], number: int) -> DocumentChunks:
    """Copy `number` of a document: its own id (and so chunk ids), the same text."""
    from rag.chunking import chunk_id

    doc_id = f"{document.id}~copy{number}"
    copied = [
        dataclasses.replace(c, id=chunk_id(doc_id, document.content_hash, c.index), doc_id=doc_id) for c in chunks
    ]
    return dataclasses.replace(document, id=doc_id), copied


def _moved(vectors: np.ndarray, seed: int) -> np.ndarray:
    noisy = vectors + np.random.default_rng(seed).normal(0.0, COPY_NOISE, vectors.shape).astype(np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def store_contents(
    taken: Sequence[DocumentChunks], vectors: Sequence[np.ndarray], size: int
) -> Iterator[tuple[Document, list[Chunk], np.ndarray]]:
    """The documents of a store of about `size` chunks: the real ones first, then copies."""
    total, number = 0, 0
    while total < size:
        for index, ((document, chunks), own) in enumerate(zip(taken, vectors)):
            if total >= size:
                return
            if number == 0:
                yield document, chunks, own
            else:
                copied, copied_chunks = _copy(document, chunks, number)
                yield copied, copied_chunks, _moved(own, number * 1_000_003 + index)
            total += len(chunks)
        number += 1


def build_store(
    folder: Path, settings: Settings, contents: Iterator[tuple[Document, list[Chunk], np.ndarray]], log: Any = print
) -> dict[str, Any]:
    """Write the documents into a new store at `folder` the way an ingest stores them (one
    write per group of documents, the BM25 index compacted as it grows); returns its record."""
    from rag.pipeline import Assistant
    from rag.store_records import DocumentRecords

    assistant = Assistant.from_settings(settings.model_copy(update={"store_dir": folder}))
    store = assistant.store
    began = time.perf_counter()
    chunks = since_settle = 0
    group: list[DocumentRecords] = []
    with store.writing():
        store.reset()
        for document, document_chunks, own in contents:
            group.append(DocumentRecords(document, document_chunks, own))
            if sum(len(r.chunks) for r in group) >= WRITE_CHUNKS:
                store.put_documents(group)
                chunks += sum(len(r.chunks) for r in group)
                since_settle += sum(len(r.chunks) for r in group)
                group = []
                if since_settle >= SETTLE_CHUNKS:
                    store.settle()
                    since_settle = 0
                    log(f"store {folder.name}: {chunks} chunks ({time.perf_counter() - began:.0f} s)")
        if group:
            store.put_documents(group)
            chunks += sum(len(r.chunks) for r in group)
        store.lexical.settle(force=True)
        store.settle()
    return {"chunks": chunks, "seconds": round(time.perf_counter() - began, 1)}


def probe(folder: Path, questions_file: Path, queries: int, article_file: Path) -> dict[str, Any]:
    """Measure one store in a new process (eval.scale_probe) and return its figures."""
    result = subprocess.run(
        [sys.executable, "-m", "eval.scale_probe", str(folder), str(questions_file), str(queries), str(article_file)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"eval.scale_probe failed on {folder}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def markdown(report: dict[str, Any]) -> str:
    rows = report["sizes"]
    modes = list(rows[0]["retrieval_ms"]) if rows else []
    lines = [
        f"# Scale benchmark: {report['dataset']}, commit {report['commit']}, {report['created']}",
        "",
        f"Backend {report['embedding_backend']}; {report['real_chunks']} real chunks, the rest perturbed copies "
        f"(same text, vector moved by N(0, {COPY_NOISE}) per dimension and renormalised). Each size measured in a "
        f"new process; retrieval over {report['queries']} realtimeqa questions, top {report['top_k']}, query "
        "embedding included.",
        "",
        "| chunks | "
        + " | ".join(f"{mode} p50 / p95 ms" for mode in modes)
        + " | RSS after open MB | RSS after queries MB | model load s | open + first answer s"
        + " | story signatures read s | add one article s | build s |",
        "|---:|" + "---:|" * (len(modes) + 7),
    ]
    for row in rows:
        latency = " | ".join(f"{row['retrieval_ms'][m]['p50']} / {row['retrieval_ms'][m]['p95']}" for m in modes)
        lines.append(
            f"| {row['chunks']:,} | {latency} | {row['rss_open_mb']} | {row['rss_after_mb']} | {row['model_load_s']} | "
            f"{row['open_first_answer_s']} | {row.get('story_signatures_s', '')} | {row['add_article_s']} | "
            f"{row['build_s']} |"
        )
    lines += ["", "![figures against size](scale.png)", ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["sizes"]
    sizes = [row["chunks"] for row in rows]
    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    latency = axes[0][0]
    for mode in rows[0]["retrieval_ms"]:
        latency.plot(sizes, [r["retrieval_ms"][mode]["p50"] for r in rows], marker="o", label=f"{mode} p50")
    latency.set(title="Retrieval latency (p50, ms)", xscale="log", xlabel="chunks", ylabel="ms")
    latency.legend(fontsize=8)
    memory = axes[0][1]
    memory.plot(sizes, [r["rss_open_mb"] for r in rows], marker="o", label="after open")
    memory.plot(sizes, [r["rss_after_mb"] for r in rows], marker="o", label="after the queries")
    memory.set(title="Resident memory (MB)", xscale="log", xlabel="chunks", ylabel="MB")
    memory.legend(fontsize=8)
    opening = axes[1][0]
    opening.plot(sizes, [r["open_first_answer_s"] for r in rows], marker="o", label="open + first answer")
    opening.plot(sizes, [r["model_load_s"] for r in rows], marker="o", label="model load")
    opening.plot(sizes, [r.get("story_signatures_s", 0) for r in rows], marker="o", label="story signatures read")
    opening.set(title="New process (s)", xscale="log", xlabel="chunks", ylabel="s")
    opening.legend(fontsize=8)
    adding = axes[1][1]
    adding.plot(sizes, [r["add_article_s"] for r in rows], marker="o")
    adding.set(title="Adding one article (s)", xscale="log", xlabel="chunks", ylabel="s")
    figure.tight_layout()
    figure.savefig(target, dpi=100)
    plt.close(figure)


def run(dataset: Path, sizes: Sequence[int], queries: int, index_dir: Path, out: Path) -> dict[str, Any]:
    from eval.datasets import CORPUS_FILE, QUESTIONS_FILE, load_corpus_jsonl
    from eval.runner import git_commit

    settings = Settings()
    documents = load_corpus_jsonl(dataset / CORPUS_FILE)
    # The real part: up to the largest size (at most REAL_CHUNKS), leaving one unseen article
    # for the addition.
    taken = real_chunks(documents[:-1], settings, min(max(sizes), REAL_CHUNKS))
    real = sum(len(chunks) for _, chunks in taken)
    key = _key([dataset.name, len(documents), settings.index_shape()])
    root = index_dir / "scale"
    print(f"scale: {len(taken)} documents, {real} real chunks; vectors in {root / f'vectors-{key}'}")
    vectors = cached_vectors(taken, settings, root / f"vectors-{key}")
    article_file = root / f"unseen-{key}.jsonl"
    unseen = documents[-1]
    article_file.write_text(
        json.dumps(
            {
                "id": unseen.id,
                "title": unseen.title,
                "url": unseen.url,
                "published": unseen.published,
                "text": unseen.text,
            }
        )
        + "\n"
    )
    rows = []
    for size in sizes:
        folder = root / f"store-{size}-{key}-{real}"
        record_file = folder / "scale-record.json"
        if record_file.exists():
            record = json.loads(record_file.read_text())
            print(f"store {folder.name}: reusing ({record['chunks']} chunks)")
            filled = ChunkRecords(folder / f"records-{settings.collection}.sqlite3").fill_sentence_terms()
            if filled:
                print(f"store {folder.name}: stored the sentence terms of {filled} chunks made before they were kept")
        else:
            record = build_store(folder, settings, store_contents(taken, vectors, size))
            record_file.write_text(json.dumps(record))
            print(f"store {folder.name}: built, {record['chunks']} chunks in {record['seconds']} s")
        figures = probe(folder, dataset / QUESTIONS_FILE, queries, article_file)
        rows.append({"size": size, "chunks": record["chunks"], "build_s": record["seconds"], **figures})
        print(json.dumps(rows[-1]))
    report = {
        "dataset": dataset.name,
        "commit": git_commit(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "embedding_backend": settings.embedding_backend,
        "real_chunks": real,
        "queries": queries,
        "top_k": settings.top_k,
        "sizes": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    plot(report, out / "scale.png")
    print(markdown(report))
    return report
