"""One store's figures, measured in a new process for eval.scale; prints one JSON line.

`python -m eval.scale_probe STORE_DIR QUESTIONS_JSONL QUERIES ARTICLE_JSONL`
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def resident_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(store_dir: Path, questions_file: Path, queries: int, article_file: Path) -> dict[str, Any]:
    from eval.benchmark import time_retrieval
    from eval.datasets import load_questions
    from rag.config import Settings
    from rag.embeddings import Embedder
    from rag.loaders import load_articles_jsonl
    from rag.pipeline import Assistant

    settings = Settings(store_dir=store_dir)
    questions = [q.question for q in load_questions(questions_file)][: queries + 1]
    began = time.perf_counter()
    embedder = Embedder.from_settings(settings)
    embedder.load()
    model_load = time.perf_counter() - began

    began = time.perf_counter()
    assistant = Assistant(settings, embedder=embedder)
    first = assistant.ask(questions[0])
    open_first_answer = time.perf_counter() - began
    rss_open = resident_mb()

    retrieval = time_retrieval(assistant, questions[1:])
    rss_after = resident_mb()

    # A question does not need the stories' signatures (rag.ingest.Stories.has_copies); the
    # first change does. Read here, once, so that adding is timed as it is in a running app,
    # whose start reads them (Assistant.warm_up).
    began = time.perf_counter()
    assistant.stories.warm_up()
    stories = time.perf_counter() - began

    documents, _ = load_articles_jsonl(article_file)
    began = time.perf_counter()
    report = assistant.ingest_documents(documents)
    add = time.perf_counter() - began
    for document in documents:
        assistant.remove(document.id)
    return {
        "model_load_s": round(model_load, 2),
        "open_first_answer_s": round(open_first_answer, 2),
        "first_answer_cited": len(first.citations),
        "rss_open_mb": rss_open,
        "rss_after_mb": rss_after,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "retrieval_ms": retrieval,
        "story_signatures_s": round(stories, 2),
        "add_article_s": round(add, 2),
        "add_article_chunks": report.chunks_embedded,
    }


if __name__ == "__main__":
    store, questions, count, article = sys.argv[1:5]
    print(json.dumps(measure(Path(store), Path(questions), int(count), Path(article))))
