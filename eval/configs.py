"""The configurations one evaluation compares, and the indexes they need, built once and reused.

Every configuration answers through an `Assistant` (the pipeline the app uses) with the same
extractive answerer; they differ only in how passages are retrieved:

- citeline: the product as configured in Settings (the learned fusion by default);
- rrf: the product with reciprocal rank fusion in place of the learned ranker;
- bm25: BM25 alone over the product's own chunks (its lexical index);
- dense: dense (MiniLM + Chroma) alone over the product's own chunks;
- langchain: the stock LangChain recipe (1,000/200 character splitter, MiniLM, Chroma, top 4).

Asked for by name only (they need the optional LLM backends): citeline-llamacpp and
citeline-openai, the product with answers written by an LLM and checked in code.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from eval import langchain_recipe
from eval.datasets import Dataset
from rag import chunking
from rag.config import Settings
from rag.embeddings import Embedder
from rag.pipeline import Assistant, build_retriever
from rag.retrieval import DenseRetriever, LexicalRetriever, Retriever

if TYPE_CHECKING:
    from tqdm import tqdm

CONFIG_NAMES = ("citeline", "rrf", "bm25", "dense", "langchain")
GENERATIVE_NAMES = ("citeline-llamacpp", "citeline-openai")
DESCRIPTIONS = {
    "citeline-llamacpp": "the product, answers written by a local GGUF model (CITELINE_LLM_MODEL_PATH)",
    "citeline-openai": "the product, answers written by an OpenAI-compatible server (CITELINE_LLM_BASE_URL)",
    "citeline": "the product, as configured in Settings",
    "rrf": "the product with reciprocal rank fusion (fusion=rrf) instead of the learned ranker",
    "bm25": "BM25 only, over the product's chunks",
    "dense": "dense only (MiniLM + Chroma), over the product's chunks",
    "langchain": "stock LangChain recipe: RecursiveCharacterTextSplitter(1000, 200), MiniLM, Chroma, top 4",
}
INDEX_RECORD = "index.json"

Log = Callable[[str], None]


class ConfigError(ValueError):
    """An unknown configuration name was asked for."""


def parse_config_names(text: str | None, needed: Sequence[str] = ()) -> list[str]:
    """'citeline,bm25' -> ['citeline', 'bm25'], in the canonical order; None -> the four that need
    no LLM. `needed` names configurations another option relies on."""
    if not text:
        return list(CONFIG_NAMES)
    names = {name.strip() for name in text.split(",") if name.strip()}
    missing = [name for name in needed if name not in names]
    if missing:
        raise ConfigError(f"this run needs the {', '.join(missing)} configuration; add it to --configs")
    every = CONFIG_NAMES + GENERATIVE_NAMES
    unknown = sorted(names - set(every))
    if unknown or not names:
        raise ConfigError(f"unknown configuration {', '.join(unknown) or text!r}; choose from {', '.join(every)}")
    return [name for name in every if name in names]


@dataclass(frozen=True)
class IndexInfo:
    """One index on disk (or in memory), how long it took to build and whether it was reused."""

    path: str
    chunks: int  # chunks in the index
    embedded: int  # chunks embedded by the build that made it (0 for a lexical index)
    seconds: float
    reused: bool
    built: str

    @property
    def chunks_per_second(self) -> float | None:
        """Embedding and storing speed of the build (None for indexes that embed nothing)."""
        return round(self.embedded / self.seconds, 1) if self.embedded and self.seconds > 0 else None


@dataclass
class Configuration:
    """One way of answering: an Assistant that answers, and a ranker that gives the same
    retrieval to a greater depth, for the ranking metrics."""

    name: str
    assistant: Assistant
    ranker: Retriever
    index: IndexInfo

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.name]


def _key_hash(key: object) -> str:
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]


def _source_hash(module: ModuleType) -> str:
    """Changes whenever the module's code does (so a changed chunker never reuses old chunks)."""
    return hashlib.sha1(Path(str(module.__file__)).read_bytes()).hexdigest()[:12]


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _read_record(folder: Path, key: dict[str, object], stored: Callable[[], int]) -> IndexInfo | None:
    """The record of a finished build with this key whose chunks are all still stored, or None
    (never built, built differently, interrupted, or changed since)."""
    try:
        record = json.loads((folder / INDEX_RECORD).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if record.get("key") != key or record.get("chunks") != stored():
        return None
    return IndexInfo(
        str(folder), record["chunks"], int(record["embedded"]), float(record["seconds"]), True, str(record["built"])
    )


def _write_record(folder: Path, key: dict[str, object], chunks: int, embedded: int, seconds: float) -> IndexInfo:
    info = IndexInfo(str(folder), chunks, embedded, seconds, False, _now())
    record = {"key": key, "chunks": chunks, "embedded": embedded, "seconds": round(seconds, 2), "built": info.built}
    (folder / INDEX_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return info


def _progress_bar(total: int, label: str) -> tqdm:
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="chunk", file=sys.stderr, disable=None)


def _reuse_message(name: str, info: IndexInfo) -> str:
    return f"index {name}: reusing {info.path} ({info.chunks} chunks, built {info.built}; dataset and code unchanged)"


def _without_torch_backend(shape: dict[str, Any]) -> dict[str, Any]:
    """The index key without the backend when it is PyTorch: indexes built before backends
    were recorded are PyTorch's, and keep their keys (and folders) so they are reused."""
    return {k: v for k, v in shape.items() if not (k == "embedding_backend" and v == "torch")}


def product_index(
    dataset: Dataset, settings: Settings, root: Path, embedder: Embedder, log: Log
) -> tuple[Assistant, IndexInfo]:
    key: dict[str, object] = {
        "dataset": dataset.fingerprint(),
        **_without_torch_backend(settings.index_shape()),
        "chunker": _source_hash(chunking),
    }
    folder = root / f"citeline-{_key_hash(key)}"
    assistant = Assistant(
        settings.model_copy(update={"store_dir": folder, "collection": "citeline"}), embedder=embedder
    )
    info = _read_record(folder, key, assistant.chunk_count)
    if info is not None:
        log(_reuse_message("citeline", info))
        return assistant, info
    log(f"index citeline: building {folder} from {len(dataset.documents)} documents")
    embedder.load()  # indexing speed should not include loading the model
    began = time.perf_counter()
    with _progress_bar(0, "indexing citeline") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = assistant.ingest_documents(dataset.documents, progress=progress)
    seconds = time.perf_counter() - began
    info = _write_record(folder, key, assistant.chunk_count(), report.chunks_embedded, seconds)
    log(f"index citeline: {report.summary()}")
    return assistant, info


def _langchain_index(
    dataset: Dataset, settings: Settings, root: Path, embedder: Embedder, log: Log
) -> tuple[Retriever, IndexInfo]:
    key: dict[str, object] = {
        "dataset": dataset.fingerprint(),
        "model": settings.embedding_model,
        **_without_torch_backend({"embedding_backend": settings.embedding_backend}),
        **langchain_recipe.recipe(),
    }
    folder = root / f"langchain-{_key_hash(key)}"
    store = langchain_recipe.open_store(folder, embedder)
    info = _read_record(folder, key, lambda: langchain_recipe.count(store))
    if info is not None:
        log(_reuse_message("langchain", info))
    else:
        log(f"index langchain: building {folder} from {len(dataset.documents)} documents")
        chunks = langchain_recipe.split(dataset.documents)
        embedder.load()
        began = time.perf_counter()
        with _progress_bar(len(chunks), "indexing langchain") as bar:
            langchain_recipe.add(store, chunks, progress=bar.update)
        seconds = time.perf_counter() - began
        info = _write_record(folder, key, langchain_recipe.count(store), len(chunks), seconds)
        log(f"index langchain: {len(chunks)} chunks in {seconds:.1f} s ({info.chunks_per_second} chunks/s)")
    return langchain_recipe.LangChainRetriever(store), info


def dataset_root(dataset: Dataset, index_root: Path) -> Path:
    return index_root / f"{dataset.name}-{dataset.fingerprint()}"


def discard_indexes(dataset: Dataset, index_root: Path) -> None:
    """Delete this dataset's indexes so that the next build starts from nothing."""
    from chromadb.api.shared_system_client import SharedSystemClient

    shutil.rmtree(dataset_root(dataset, index_root), ignore_errors=True)
    # Chroma keeps one client per folder per process; after the folder is gone that client
    # would serve stale segments to the next build in this process.
    SharedSystemClient.clear_system_cache()


def llm_settings(settings: Settings, name: str) -> Settings:
    """The settings of a generative configuration (citeline-llamacpp -> llm="llamacpp")."""
    return settings.model_copy(update={"llm": name.removeprefix("citeline-")})


def check_llm_backends(settings: Settings, names: Sequence[str]) -> None:
    """Raise LLMConfigError, before any index is built, when a named LLM backend is not usable."""
    from rag.llm import chat_model

    for name in names:
        if name in GENERATIVE_NAMES:
            chat_model(llm_settings(settings, name))


def build_configurations(
    dataset: Dataset, settings: Settings, names: Sequence[str], index_root: Path, log: Log = print
) -> list[Configuration]:
    """Build (or reuse) the indexes the named configurations need, and the configurations."""
    root = dataset_root(dataset, index_root)
    embedder = Embedder.from_settings(settings)
    product, product_info = product_index(dataset, settings, root, embedder, log)
    configurations: list[Configuration] = []
    for name in names:
        if name == "citeline":
            configurations.append(Configuration(name, product, product.retriever, product_info))
        elif name == "rrf":
            rrf = build_retriever(settings.model_copy(update={"fusion": "rrf"}), product.store, embedder)
            configurations.append(Configuration(name, _assistant_with(product, rrf), rrf, product_info))
        elif name == "dense":
            dense = DenseRetriever(product.store, embedder, settings.top_k)
            configurations.append(Configuration(name, _assistant_with(product, dense), dense, product_info))
        elif name == "bm25":
            began = time.perf_counter()
            chunks = len(product.store.lexical)  # loads the saved BM25 index, or builds it
            info = IndexInfo(product_info.path, chunks, 0, time.perf_counter() - began, product_info.reused, _now())
            log(f"index bm25: {info.chunks} chunks ready in {info.seconds:.1f} s (beside the citeline index)")
            bm25 = LexicalRetriever(product.store, settings.top_k)
            configurations.append(Configuration(name, _assistant_with(product, bm25), bm25, info))
        elif name in GENERATIVE_NAMES:
            # The product's retrieval and store; only the writer of the answers differs.
            writer = Assistant(
                llm_settings(product.settings, name),
                embedder=embedder,
                store=product.store,
                retriever=product.retriever,
            )
            configurations.append(Configuration(name, writer, product.retriever, product_info))
        elif name == "langchain":
            retriever, info = _langchain_index(dataset, settings, root, embedder, log)
            assistant = _assistant_with(product, retriever, top_k=langchain_recipe.TOP_K)
            configurations.append(Configuration(name, assistant, retriever, info))
    return configurations


def _assistant_with(product: Assistant, retriever: Retriever, **changes: object) -> Assistant:
    """The product's pipeline and answerer with another retriever and, optionally, other
    settings (the model, store and corpus statistics are shared)."""
    settings = product.settings.model_copy(update=changes)
    return Assistant(settings, embedder=product.embedder, store=product.store, retriever=retriever)


def unthresholded(configuration: Configuration) -> Configuration:
    """The same configuration with refusals switched off (for calibrating the threshold)."""
    assistant = _assistant_with(configuration.assistant, configuration.assistant.retriever, answer_min_score=0.0)
    return Configuration(configuration.name, assistant, configuration.ranker, configuration.index)
