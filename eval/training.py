"""What the trainers (eval.train_answerer, eval.train_fusion) share: where they read and cache,
and their common command-line options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from eval.datasets import Dataset
    from rag.pipeline import Assistant

DEFAULT_DATASET = PROJECT_ROOT.parent / "shared" / "data" / "realtimeqa-2024"
DEFAULT_INDEX_DIR = PROJECT_ROOT / ".citeline" / "eval"
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".citeline" / "train"
# Every other question of the year (604 questions, 4,660 articles, about 71k chunks): indexing
# all 8,817 articles takes about two hours here. Both trainers share this index.
QUESTION_STRIDE = 2
SEED = 13
# What makes a LightGBM fit give the same model file, bit for bit, on every run.
REPRODUCIBLE: dict[str, Any] = {
    "seed": SEED,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbosity": -1,
}
# How the trainers' dense searches are answered (ChunkStore.search_exactly): part of their cache
# keys, so candidates found by Chroma's approximate search are never reused.
DENSE_SEARCH = "exact"


def training_parser(prog: str, description: str, models_dir: Path) -> argparse.ArgumentParser:
    """A parser with the options every trainer takes: the dataset, where the model goes, the
    index and cache folders, and the question stride."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="training dataset folder")
    parser.add_argument("--out", type=Path, default=models_dir, help="where the model files go (default: rag/models)")
    parser.add_argument("--index-dir", type=Path, default=DEFAULT_INDEX_DIR)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument(
        "--stride", type=int, default=QUESTION_STRIDE, help="every N-th question (default: %(default)s)"
    )
    return parser


def open_index(dataset: Dataset, settings: Settings, index_dir: Path) -> Assistant:
    """The product's index of the dataset (built once, then reused, as the eval does), with
    the embedding model loaded and dense searches answered exactly, so that every run finds the
    same candidates (rag/exact_search.py)."""
    from eval.configs import dataset_root, product_index
    from rag.embeddings import Embedder

    embedder = Embedder.from_settings(settings)
    assistant, _ = product_index(dataset, settings, dataset_root(dataset, index_dir), embedder, print)
    embedder.load()
    assistant.store.search_exactly()
    return assistant
