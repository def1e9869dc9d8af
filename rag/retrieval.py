"""Query -> ranked Passages. Dense retrieval over the store for now."""

from __future__ import annotations

from rag.embeddings import Embedder
from rag.store import ChunkStore
from rag.types import Passage


class DenseRetriever:
    """Top-k chunks by cosine similarity between the query and chunk embeddings."""

    def __init__(self, store: ChunkStore, embedder: Embedder, k: int) -> None:
        self.store = store
        self.embedder = embedder
        self.k = k

    def retrieve(self, query: str, k: int | None = None) -> list[Passage]:
        if not query.strip():
            return []
        return self.store.search(self.embedder.embed_query(query), k or self.k)
