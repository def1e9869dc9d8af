"""The learned answer scorer: a LightGBM model that gives each candidate sentence the
probability that it answers the question, read from a small file in the repository.

`python -m eval.train_answerer` makes the files; this module only loads and applies them. The
model records what it was trained with (the embedding model and a hash of the feature code);
loading it with anything else is refused with a message that says how to retrain, as a store
built with another model is.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag import answer_features, answer_spans, answer_types
from rag.errors import CitelineError
from rag.model_files import read_model_files
from rag.tree_model import TreeEnsemble

MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL_FILE = "answer_scorer.txt"
SPAN_MODEL_FILE = "span_scorer.txt"
META_FILE = "answer_scorer.json"
RETRAIN = "retrain it with `python -m eval.train_answerer` (see README, 'The answer scorer')"


class AnswerModelError(CitelineError, RuntimeError):
    """The answer scorer's files are missing or were made for other features or another model."""


def feature_code_hash() -> str:
    """Changes whenever the feature code does, so a model never reads features it was not fitted on."""
    digest = hashlib.sha256()
    for module in (answer_features, answer_spans, answer_types):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class AnswerModel:
    """The fitted sentence and span scorers and the thresholds chosen with them."""

    sentence_trees: TreeEnsemble
    span_trees: TreeEnsemble
    threshold: float  # below this best sentence probability the assistant declines
    span_threshold: float  # below this best span probability no short answer is given
    meta: dict[str, Any]

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """P(the sentence answers the question) for each row of answer_features.features."""
        return _predict(self.sentence_trees, rows)

    def span_probabilities(self, rows: np.ndarray) -> np.ndarray:
        """P(the span is the answer) for each row of answer_spans.span_features."""
        return _predict(self.span_trees, rows)


def _predict(trees: TreeEnsemble, rows: np.ndarray) -> np.ndarray:
    if len(rows) == 0:
        return np.zeros(0)
    return trees.predict(rows)


def check_meta(meta: dict[str, Any], embedding_model: str, where: Path) -> None:
    """Raise AnswerModelError when the model was trained for other features or another embedding model."""
    if (
        meta.get("features") != list(answer_features.FEATURES)
        or meta.get("span_features") != list(answer_spans.SPAN_FEATURES)
        or meta.get("feature_code") != feature_code_hash()
    ):
        raise AnswerModelError(
            f"the answer scorer in {where} was trained on other features than rag/answer_features.py "
            f"now computes; {RETRAIN}"
        )
    if meta.get("embedding_model") != embedding_model:
        raise AnswerModelError(
            f"the answer scorer in {where} was trained with the embedding model {meta.get('embedding_model')!r}, "
            f"not {embedding_model!r} (CITELINE_EMBEDDING_MODEL); {RETRAIN}"
        )


@functools.lru_cache(maxsize=4)
def load(embedding_model: str, folder: Path = MODELS_DIR) -> AnswerModel:
    """The model in `folder`, checked against the feature code and the embedding model (once per
    process). Read without LightGBM (rag/tree_model.py), which a first answer would wait for."""
    meta, (sentences, spans) = read_model_files(
        folder, META_FILE, (MODEL_FILE, SPAN_MODEL_FILE), AnswerModelError, "answer scorer", RETRAIN
    )
    check_meta(meta, embedding_model, folder)
    return AnswerModel(
        TreeEnsemble.from_text(sentences),
        TreeEnsemble.from_text(spans),
        float(meta["threshold"]),
        float(meta["span_threshold"]),
        meta,
    )
