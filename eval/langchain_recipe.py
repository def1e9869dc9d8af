"""The stock LangChain RAG recipe, as a user would build it in an afternoon, for comparison.

RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200), all-MiniLM-L6-v2, a Chroma
vector store through langchain-chroma, and similarity search for the top 4 chunks. Only the
start offsets are added (`add_start_index`), which changes no chunk but lets citations point
into the document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.embeddings import Embedder
from rag.types import Chunk, Document, Passage

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
    return {"splitter": "RecursiveCharacterTextSplitter", "chunk_size": CHUNK_SIZE, "chunk_overlap": CHUNK_OVERLAP}


def split(documents: Sequence[Document]) -> list[LangChainDocument]:
    """The recipe's chunks, each with its document's metadata and start offset."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True)
    chunks = splitter.create_documents(
        [document.text for document in documents],
        metadatas=[
            {
                "doc_id": document.id,
                "title": document.title,
                "published": document.published,
                "source": document.source,
                "url": document.url,
            }
            for document in documents
        ],
    )
    seen: dict[str, int] = {}
    for chunk in chunks:
        doc_id = chunk.metadata["doc_id"]
        chunk.metadata["index"] = seen.get(doc_id, 0)
        seen[doc_id] = chunk.metadata["index"] + 1
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


def build(store: Chroma, documents: Sequence[Document], progress: Callable[[int], None] | None = None) -> int:
    """Split and add every document (ids are deterministic, so a resumed build overwrites rather
    than duplicates); returns the number of chunks."""
    chunks = split(documents)
    for first in range(0, len(chunks), ADD_BATCH):
        batch = chunks[first : first + ADD_BATCH]
        store.add_documents(batch, ids=[chunk_id(chunk) for chunk in batch])
        if progress:
            progress(len(batch))
    return len(chunks)


def _chunk(document: LangChainDocument) -> Chunk:
    meta: dict[str, Any] = document.metadata
    start = int(meta["start_index"])
    return Chunk(
        id=chunk_id(document),
        doc_id=str(meta["doc_id"]),
        index=int(meta.get("index", 0)),
        text=document.page_content,
        start=start,
        end=start + len(document.page_content),
        title=str(meta.get("title", "")),
        published=str(meta.get("published", "")),
        source=str(meta.get("source", "")),
        url=str(meta.get("url", "")),
    )


class LangChainRetriever:
    """Chroma similarity search through langchain-chroma, as Passages."""

    def __init__(self, store: Chroma, k: int = TOP_K) -> None:
        self.store = store
        self.k = k

    def retrieve(self, query: str, k: int | None = None) -> list[Passage]:
        if not query.strip():
            return []
        results = self.store.similarity_search_with_score(query, k=k or self.k)
        # Chroma's default space is squared L2; on unit vectors, cosine similarity = 1 - d / 2.
        return [Passage(chunk=_chunk(document), score=1.0 - distance / 2) for document, distance in results]
