"""The Chroma side of the store: the client (embedded folder or server), the collection
opened by name and checked against Settings, and the store's generation.

The generation is a counter in the collection's metadata, raised by every change (under the
store's write lock, so two writers never raise it to the same value). Every process reads it
before a question, one cheap call; a change it did not make itself, of any kind (a document
replaced by one of as many chunks included), tells it to bring its caches in step.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args
from urllib.parse import urlsplit

from rag.config import EmbeddingBackend, Settings
from rag.embeddings import Embedder
from rag.errors import CitelineError, InputError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

GENERATION = "citeline_generation"
# What a store made before a setting was recorded was built with: backends came later, and
# every earlier store's vectors are PyTorch's.
SHAPE_BEFORE_RECORDED: dict[str, str] = {"embedding_backend": "torch"}


class StoreMismatchError(CitelineError, RuntimeError):
    """The store on disk was built with another model or other chunking than Settings ask for."""


class ChromaEmbeddingFunction:
    """Hands Chroma our model so that it never falls back to its own (downloading) default."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def __call__(self, input: Sequence[str]) -> list[list[float]]:  # noqa: A002 - Chroma's name
        return self._embedder.embed(list(input))

    def embed_query(self, input: Sequence[str]) -> list[list[float]]:  # noqa: A002
        return self._embedder.embed(list(input))

    @staticmethod
    def name() -> str:
        return "citeline-sentence-transformers"

    def get_config(self) -> dict[str, Any]:
        return {"model": self._embedder.model_name, "backend": self._embedder.backend}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(Embedder(config["model"], backend=config.get("backend", "torch")))

    def is_legacy(self) -> bool:
        return False

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]


class _ReopeningCollection:
    """Stands in for the store's Collection: a call that finds the collection gone (another
    process rebuilt the store) opens it again by name and is made once more."""

    def __init__(self, opener: ChromaCollection) -> None:
        self._opener = opener

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._opener.current(), name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            from chromadb.errors import NotFoundError

            try:
                return attribute(*args, **kwargs)
            except NotFoundError:
                self._opener.forget()
                return getattr(self._opener.current(), name)(*args, **kwargs)

        return call


class ChromaCollection:
    """Opens the Settings' collection lazily (creating it when missing), reopens it when another
    process rebuilt it, and reads and raises its generation."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self._collection: Collection | None = None
        self._client_instance: ClientAPI | None = None
        # Chroma's client registry is not safe to enter from two threads at once (a KeyError
        # from its shared-system map): the first searches of two threads open it one at a time.
        self._opening = threading.RLock()

    @property
    def path(self) -> Path:
        return self.settings.store_dir

    @property
    def collection(self) -> Collection:
        """The collection, reopened when another process has rebuilt it (deleted and created it
        again), so a running app keeps answering after `ingest --rebuild`."""
        return cast("Collection", _ReopeningCollection(self))

    def current(self) -> Collection:
        with self._opening:
            if self._collection is None:
                self._collection = self._open()
            return self._collection

    def forget(self) -> None:
        self._collection = None

    def reopen(self) -> None:
        """Embedded mode: read the folder afresh after another process wrote to it. Chroma keeps
        a process's view of the vector index in memory, and after another process's upsert it
        answered queries with ids whose records it no longer had; a new client reads the index
        from disk. (A server serves every process one view: nothing to do.)"""
        if self._client_instance is not None and not self.settings.chroma_url:
            self._client_instance.close()
            self._client_instance = None
        self._collection = None

    def exists(self) -> bool:
        """Whether the store has been created (without creating one): the embedded folder, or
        the collection on the Chroma server."""
        if self.settings.chroma_url:
            return self._has_collection(self._client())
        return (self.path / "chroma.sqlite3").exists()

    def drop(self) -> None:
        """Delete the collection and create it again empty (used by --rebuild). The new one
        carries on the old one's generation, so no process mistakes it for a store it has seen."""
        generation = self.generation()
        client = self._client()
        if self._has_collection(client):
            client.delete_collection(self.settings.collection)
        self._collection = self._open(generation)

    def generation(self) -> int:
        """The store's generation as stored now (read afresh: another process may have raised it)."""
        from chromadb.errors import NotFoundError

        try:
            metadata = self._client().get_collection(self.settings.collection).metadata or {}
        except NotFoundError:  # not created yet, or deleted by a rebuild
            return 0
        return int(metadata.get(GENERATION, 0))

    def raise_generation(self) -> tuple[int, int]:
        """Raise the generation by one (the caller holds the write lock); returns (before, after)."""
        self.current()  # created if it is not there yet
        metadata = dict(self._client().get_collection(self.settings.collection).metadata or {})
        before = int(metadata.get(GENERATION, 0))
        self.collection.modify(metadata={**metadata, GENERATION: before + 1})
        return before, before + 1

    def _client(self) -> ClientAPI:
        with self._opening:
            if self._client_instance is None:
                self._client_instance = self._new_client()
            return self._client_instance

    def _new_client(self) -> ClientAPI:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from chromadb.utils.embedding_functions import register_embedding_function

        # Chroma rebuilds a stored collection's embedding function by name when it reads the
        # collection's schema (on every write to a store another process created); unregistered,
        # it warned "Could not reconstruct embedding function" on stderr.
        register_embedding_function(ChromaEmbeddingFunction)

        if self.settings.chroma_url:
            url = urlsplit(self.settings.chroma_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise InputError(
                    f"CITELINE_CHROMA_URL={self.settings.chroma_url!r} is not a server URL; "
                    "write it like http://127.0.0.1:8000"
                )
            return chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=ChromaSettings(anonymized_telemetry=False),
            )
        self.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(self.path), settings=ChromaSettings(anonymized_telemetry=False))

    def _has_collection(self, client: ClientAPI) -> bool:
        return self.settings.collection in {c.name for c in client.list_collections()}

    def _open(self, generation: int = 0) -> Collection:
        client = self._client()
        embedding_function = ChromaEmbeddingFunction(self.embedder)
        expected: dict[str, str | int | float] = dict(self.settings.index_shape())
        if self._has_collection(client):
            collection = client.get_collection(self.settings.collection, embedding_function=embedding_function)  # type: ignore[arg-type]
            self._check_shape(collection.metadata or {}, expected)
            return collection
        return client.create_collection(
            name=self.settings.collection,
            metadata={**expected, "embedding_dim": self.embedder.dimension, GENERATION: generation},
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=embedding_function,  # type: ignore[arg-type]
        )

    def _may_adopt_backend(self, backend: object) -> bool:
        """Whether a store built with another backend is opened with that one (its questions and
        new documents embedded by it): only when the setting was not given, as for a store built
        under an older default. A backend asked for by name is never overridden."""
        return "embedding_backend" not in self.settings.model_fields_set and backend in get_args(EmbeddingBackend)

    def _check_shape(self, stored: dict[str, Any], expected: dict[str, str | int | float]) -> None:
        """Refuse a store built differently: its vectors would give silently wrong results.

        Names and chunking are compared first, so a wrong model is reported without loading it.
        """
        recorded = {**SHAPE_BEFORE_RECORDED, **stored}
        backend = recorded.get("embedding_backend")
        if backend != expected["embedding_backend"] and self._may_adopt_backend(backend):
            # The backend was left at its default, which has changed since the store was built:
            # questions are embedded the store's way, so its vectors are still never mixed.
            self.embedder.backend = cast("EmbeddingBackend", backend)
            expected = {**expected, "embedding_backend": str(backend)}
        differences = [
            f"{key} is {recorded.get(key)!r} in the store but {value!r} in Settings"
            for key, value in expected.items()
            if recorded.get(key) != value
        ]
        if not differences and stored.get("embedding_dim") != self.embedder.dimension:
            differences.append(
                f"the store holds {stored.get('embedding_dim')}-dimensional vectors but the model "
                f"makes {self.embedder.dimension}-dimensional ones"
            )
        if differences:
            raise StoreMismatchError(
                f"The store at {self.path} (collection '{self.settings.collection}') was built differently: "
                + "; ".join(differences)
                + ". Rebuild it with `python -m rag ingest --rebuild`, or point CITELINE_STORE_DIR at another folder"
                + (
                    f", or set CITELINE_EMBEDDING_BACKEND={recorded.get('embedding_backend')} to use it as it is."
                    if recorded.get("embedding_backend") != expected.get("embedding_backend")
                    else "."
                )
            )
