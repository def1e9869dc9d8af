"""The stock LangChain RAG recipe, as a user would build it in an afternoon, for comparison.

RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200), all-MiniLM-L6-v2, a Chroma
vector store through langchain-chroma, and similarity search for the top 4 chunks. Only the
start offsets are added (`add_start_index`), which changes no chunk but lets citations point
into the document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rag.embeddings import Embedder
from rag.store_records import chunk_from_record
from rag.types import Document, Passage, SearchFilter

if TYPE_CHECKING:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document as LangChainDocument

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 4
COLLECTION = "langchain"
ADD_BATCH = 256  # chunks embedded and added per call


def recipe() -> dict[str, str | int]:
    """What shapes this index; part of its cache key."""
    from importlib.metadata import version

    return {
        "splitter": f"RecursiveCharacterTextSplitter {version('langchain-text-splitters')}",
        "chunk_size": CHUNK_SIZE,
        "chunk_overlap": CHUNK_OVERLAP,
    }


def split(documents: Sequence[Document]) -> list[LangChainDocument]:
    """The recipe's chunks, each with its document's metadata and start offset."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True)
    chunks = splitter.create_documents(
        [document.text for document in documents],
        metadatas=[
            {"doc_id": d.id, "title": d.title, "published": d.published, "source": d.source, "url": d.url}
            for d in documents
        ],
    )
    # The same metadata keys as the product's store, so a hit reads back with the same code.
    seen: dict[str, int] = {}
    for chunk in chunks:
        meta = chunk.metadata
        meta["index"] = seen.get(meta["doc_id"], 0)
        meta["start"], meta["end"] = meta["start_index"], meta["start_index"] + len(chunk.page_content)
        seen[meta["doc_id"]] = meta["index"] + 1
    return chunks


def chunk_id(chunk: LangChainDocument) -> str:
    return f"{chunk.metadata['doc_id']}@{chunk.metadata['start_index']}"


def open_store(path: Path, embedder: Embedder) -> Chroma:
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma

    path.mkdir(parents=True, exist_ok=True)
    return Chroma(
        collection_name=COLLECTION,
        embedding_function=embedder,
        persist_directory=str(path),
        client_settings=ChromaSettings(anonymized_telemetry=False, is_persistent=True),
    )


def add(store: Chroma, chunks: Sequence[LangChainDocument], progress: Callable[[int], None] | None = None) -> None:
    """Embed and add the chunks in batches (ids are deterministic, so a resumed build overwrites
    rather than duplicates)."""
    for first in range(0, len(chunks), ADD_BATCH):
        batch = list(chunks[first : first + ADD_BATCH])
        store.add_documents(batch, ids=[chunk_id(chunk) for chunk in batch])
        if progress:
            progress(len(batch))


def count(store: Chroma) -> int:
    return store._collection.count()  # noqa: SLF001 - langchain-chroma exposes no count


class LangChainRetriever:
    """Chroma similarity search through langchain-chroma, as Passages."""

    def __init__(self, store: Chroma, k: int = TOP_K) -> None:
        self.store = store
        self.k = k

    def retrieve(self, query: str, k: int | None = None, where: SearchFilter | None = None) -> list[Passage]:
        """The recipe's similarity search. The recipe has no date filter, so an as-of bound
        (the evaluation's "ask each question on its own day") is applied to its results, asking
        for more until k pass or the store has no more; other filters are refused."""
        if where and (where.sources or where.since):
            raise ValueError("the LangChain recipe is a baseline without filters; ask it without sources or since")
        if not query.strip():
            return []
        k = k or self.k
        fetch = k
        while True:
            results = self.store.similarity_search_with_score(query, k=fetch)
            # Chroma's default space is squared L2; on unit vectors, cosine similarity = 1 - d / 2.
            passages = [
                Passage(
                    chunk=chunk_from_record(chunk_id(document), document.page_content, document.metadata),
                    score=1 - d / 2,
                )
                for document, d in results
            ]
            visible = [p for p in passages if where is None or where.shows_published(p.chunk.published)]
            if len(visible) >= k or len(results) < fetch:
                return visible[:k]
            fetch *= 4
