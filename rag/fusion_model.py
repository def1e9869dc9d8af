"""The learned fusion: a LightGBM ranker that orders the candidates of dense and BM25 search,
read from a small file in the repository.

`python -m eval.train_fusion` makes the file; this module loads, checks and writes it. The model
records what it was trained with (the embedding model and a hash of rag/fusion_features.py);
loading it with anything else is refused with a message that says how to retrain.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag import fusion_features
from rag.errors import CitelineError
from rag.model_files import read_model_files, write_model_files
from rag.tree_model import TreeEnsemble

if TYPE_CHECKING:
    import lightgbm

MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL_FILE = "fusion_ranker.txt"
META_FILE = "fusion_ranker.json"
RETRAIN = "retrain it with `python -m eval.train_fusion` (see README, 'Retrieval')"


class FusionModelError(CitelineError, RuntimeError):
    """The fusion ranker's files are missing or were made for other features or another model."""


def feature_code_hash() -> str:
    """Changes whenever the feature code does, so a model never reads features it was not fitted on."""
    return hashlib.sha256(Path(str(fusion_features.__file__)).read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class FusionModel:
    trees: TreeEnsemble
    meta: dict[str, Any]

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """A ranking score per row of fusion_features.features (higher: more likely to hold the answer)."""
        if len(rows) == 0:
            return np.zeros(0)
        return self.trees.predict(rows)


def check_meta(meta: dict[str, Any], embedding_model: str, where: Path) -> None:
    """Raise FusionModelError when the model was trained on other features or another embedding model."""
    if meta.get("features") != list(fusion_features.FUSION_FEATURES) or meta.get("feature_code") != feature_code_hash():
        raise FusionModelError(
            f"the fusion ranker in {where} was trained on other features than rag/fusion_features.py now "
            f"computes; {RETRAIN}, or set CITELINE_FUSION=rrf"
        )
    if meta.get("embedding_model") != embedding_model:
        raise FusionModelError(
            f"the fusion ranker in {where} was trained with the embedding model {meta.get('embedding_model')!r}, "
            f"not {embedding_model!r} (CITELINE_EMBEDDING_MODEL); {RETRAIN}, or set CITELINE_FUSION=rrf"
        )


@functools.lru_cache(maxsize=4)
def load(embedding_model: str, folder: Path = MODELS_DIR) -> FusionModel:
    """The model in `folder`, checked against the feature code and the embedding model (once per
    process). Read without LightGBM (rag/tree_model.py): importing it costs a new process's first
    answer about a second."""
    meta, (text,) = read_model_files(folder, META_FILE, (MODEL_FILE,), FusionModelError, "fusion ranker", RETRAIN)
    check_meta(meta, embedding_model, folder)
    return FusionModel(TreeEnsemble.from_text(text), meta)


def write_model(booster: lightgbm.Booster, embedding_model: str, trained_on: dict[str, Any], folder: Path) -> None:
    """The model's text and its record, written so that the same fit gives the same bytes."""
    meta = {
        "features": list(fusion_features.FUSION_FEATURES),
        "feature_code": feature_code_hash(),
        "embedding_model": embedding_model,
        **trained_on,
    }
    write_model_files(folder, META_FILE, {MODEL_FILE: booster}, meta)
