"""The embedding backends: PyTorch, and ONNX Runtime in float32 and int8, exported here offline.

Each gives vectors close to PyTorch's for the seed question and a seed passage, and a store
records the backend it was built with and refuses another."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.chroma import StoreMismatchError
from rag.config import Settings
from rag.embeddings import Embedder
from rag.pipeline import Assistant
from tests.conftest import ROOT

SEED_QUESTION = "How many troops did NIS report?"
SEED_PASSAGE = (
    "South Korea, following a briefing from its national intelligence agency, once again claimed "
    "that North Korea had sent 3,000 soldiers to Russia."
)


@pytest.fixture(scope="module")
def exported_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache of this test's own, so the export itself is tested, not a file left by an
    earlier run. The export runs in a new process with every network variable pointing nowhere."""
    cache = tmp_path_factory.mktemp("model-cache")
    offline = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    script = (
        "import sys; from pathlib import Path; from rag.embeddings import Embedder\n"
        "for backend in ('onnx', 'onnx-int8'): Embedder(backend=backend, cache_dir=Path(sys.argv[1])).load()\n"
    )
    subprocess.run([sys.executable, "-c", script, str(cache)], cwd=ROOT, env=offline, check=True, timeout=300)
    return cache


@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8"])
def test_each_backend_embeds_the_seed_question_close_to_torch(backend: str, exported_cache: Path) -> None:
    torch_vectors = np.asarray(Embedder(backend="torch").embed([SEED_QUESTION, SEED_PASSAGE]))
    embedder = Embedder(backend=backend, cache_dir=exported_cache)  # type: ignore[arg-type]
    vectors = np.asarray(embedder.embed([SEED_QUESTION, SEED_PASSAGE]))
    assert embedder.dimension == 384 and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert (cosines >= 0.99).all(), cosines
    query = np.asarray(embedder.embed_query(SEED_QUESTION))
    assert float(query @ vectors[0]) > 0.999, "a query is embedded as the same text in a batch is"


def test_the_onnx_backends_do_not_import_torch(exported_cache: Path) -> None:
    """What makes them start fast: a new process embeds a question without importing PyTorch."""
    script = (
        "import sys; from pathlib import Path; from rag.embeddings import Embedder\n"
        "Embedder(backend='onnx-int8', cache_dir=Path(sys.argv[1])).embed_query('troops')\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(exported_cache)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_store_built_with_one_backend_refuses_another(tmp_path: Path, corpus_dir: Path) -> None:
    built = Settings(corpus_dir=corpus_dir, store_dir=tmp_path / "store", embedding_backend="onnx-int8")
    Assistant.from_settings(built).ingest([corpus_dir / "north-korean-soldiers-russia.md"])
    other = Assistant.from_settings(built.model_copy(update={"embedding_backend": "onnx"}))
    with pytest.raises(StoreMismatchError) as refused:
        other.chunk_count()
    message = str(refused.value)
    assert "embedding_backend is 'onnx-int8' in the store but 'onnx' in Settings" in message
    assert "CITELINE_EMBEDDING_BACKEND=onnx-int8" in message and "--rebuild" in message


def test_a_store_from_before_backends_were_recorded_is_taken_as_torchs(tmp_path: Path, corpus_dir: Path) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from rag.chroma import ChromaEmbeddingFunction

    settings = Settings(corpus_dir=corpus_dir, store_dir=tmp_path / "store", embedding_backend="torch")
    older_shape = {k: v for k, v in settings.index_shape().items() if k != "embedding_backend"}
    client = chromadb.PersistentClient(
        path=str(settings.store_dir), settings=ChromaSettings(anonymized_telemetry=False)
    )
    client.create_collection(
        settings.collection,
        metadata={**older_shape, "embedding_dim": 384},
        configuration={"hnsw": {"space": "cosine"}},
        embedding_function=ChromaEmbeddingFunction(Embedder(backend="torch")),  # type: ignore[arg-type]
    )
    del client
    assert Assistant.from_settings(settings).chunk_count() == 0
    onnx = Assistant.from_settings(settings.model_copy(update={"embedding_backend": "onnx-int8"}))
    with pytest.raises(StoreMismatchError, match="embedding_backend is 'torch' in the store"):
        onnx.chunk_count()


def test_a_store_built_under_another_default_is_opened_with_its_own_backend(tmp_path: Path, corpus_dir: Path) -> None:
    """Upgrading must not lock a user out of their store: with the setting left unset, a store
    built with onnx is read and added to with onnx, not refused and not mixed with int8 vectors."""
    built = Settings(corpus_dir=corpus_dir, store_dir=tmp_path / "store", embedding_backend="onnx")
    Assistant.from_settings(built).ingest([corpus_dir / "north-korean-soldiers-russia.md"])
    defaults = Settings(corpus_dir=corpus_dir, store_dir=tmp_path / "store")
    assert "embedding_backend" not in defaults.model_fields_set and defaults.embedding_backend != "onnx"
    reopened = Assistant.from_settings(defaults)
    answer = reopened.ask("How many troops did NIS report?")
    assert reopened.embedder.backend == "onnx"
    assert answer.citations and answer.citations[0].doc_id == "north-korean-soldiers-russia"


def test_questions_are_embedded_by_the_question_backend_and_stored_texts_by_the_stores(exported_cache: Path) -> None:
    """The default pairs int8 document vectors (the bulk of the work) with float32 questions and
    answer sentences (a few dozen texts a question)."""
    embedder = Embedder(backend="onnx-int8", cache_dir=exported_cache, question_backend="onnx")
    float32 = Embedder(backend="onnx", cache_dir=exported_cache)
    int8 = Embedder(backend="onnx-int8", cache_dir=exported_cache)
    assert embedder.embed_query(SEED_QUESTION) == float32.embed_query(SEED_QUESTION)
    assert embedder.embed_for_question([SEED_PASSAGE]) == float32.embed([SEED_PASSAGE])
    assert embedder.embed([SEED_PASSAGE]) == int8.embed([SEED_PASSAGE]) != float32.embed([SEED_PASSAGE])
    assert Embedder(backend="onnx", cache_dir=exported_cache).question_backend == "onnx"
