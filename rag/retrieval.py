"""Query -> ranked Passages: dense (the store's vectors) and lexical (BM25 over the same chunks)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from rag.embeddings import Embedder
from rag.lexical import terms
from rag.store import ChunkStore
from rag.types import Chunk, Passage

if TYPE_CHECKING:
    import bm25s


class Retriever(Protocol):
    """Anything that ranks passages for a query; the pipeline and eval take any of them."""

    def retrieve(self, query: str, k: int | None = None) -> list[Passage]: ...


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


class BM25Retriever:
    """Okapi BM25 (bm25s) over a fixed set of chunks, with the answerer's stemmed terms as tokens.

    Built in memory from the chunks it is given; chunks sharing no term with the query are
    never returned, so a query of unknown words gets no passages rather than arbitrary ones.
    """

    def __init__(self, chunks: Iterable[Chunk], k: int) -> None:
        import bm25s

        began = time.perf_counter()
        self.chunks = list(chunks)
        self.k = k
        self._index: bm25s.BM25 | None = None
        if self.chunks:
            self._index = bm25s.BM25()
            self._index.index([terms(chunk.text) for chunk in self.chunks], show_progress=False)
        self.build_seconds = time.perf_counter() - began

    @classmethod
    def from_store(cls, store: ChunkStore, k: int) -> BM25Retriever:
        return cls(store.chunks(), k)

    def retrieve(self, query: str, k: int | None = None) -> list[Passage]:
        query_terms = terms(query)
        if self._index is None or not query_terms:
            return []
        depth = min(k or self.k, len(self.chunks))
        rows, scores = self._index.retrieve([query_terms], k=depth, show_progress=False)
        return [
            Passage(chunk=self.chunks[int(row)], score=float(score))
            for row, score in zip(rows[0], scores[0])
            if score > 0
        ]
