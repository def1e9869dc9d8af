"""Pure: how chunks are recorded in Chroma and read back, and how filters are written for it.

Chunk metadata is the single record of what is stored: each chunk carries its document's id
and content hash, so incremental ingest and the document list need no second database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rag.chunking import heading
from rag.lexical import SentenceTerms, terms
from rag.lexical_index import LexicalRow, RowFilter
from rag.types import Chunk, Document, SearchFilter


@dataclass(frozen=True)
class StoredDocument:
    """One document as the store knows it."""

    doc_id: str
    title: str
    published: str
    source: str
    url: str
    path: str
    content_hash: str
    chunks: int
    story: str = ""  # the document it copies' story, or its own id


@dataclass(frozen=True)
class DocumentRecords:
    """What one document's write stores: its chunks and their vectors, the story it belongs to
    (default: its own id) and its encoded MinHash signature. `new`: the writer checked, under
    the write lock, that no version of it is stored, so no older chunks are looked up."""

    document: Document
    chunks: Sequence[Chunk]
    vectors: Sequence[Sequence[float]]
    story: str = ""
    signature: str = ""
    new: bool = False


def copies_by_story(documents: Iterable[StoredDocument]) -> dict[str, list[StoredDocument]]:
    """Pure: per document id, the other documents of its story (none for a story of one)."""
    stories: dict[str, list[StoredDocument]] = {}
    for document in documents:
        stories.setdefault(document.story or document.doc_id, []).append(document)
    return {
        document.doc_id: [other for other in members if other.doc_id != document.doc_id]
        for members in stories.values()
        for document in members
    }


def document_sources(documents: Iterable[StoredDocument]) -> list[str]:
    """The distinct, non-empty sources of the documents, sorted."""
    return sorted({document.source for document in documents if document.source})


def published_day(published: str) -> int:
    """'2023-01-05' -> 20230105, the form Chroma can compare in a date-range filter; 0 when undated."""
    digits = published[:10].replace("-", "")
    return int(digits) if len(digits) == 8 and digits.isdigit() else 0


def chunk_metadata(document: Document, chunk: Chunk, chunks: int, story: str, signature: str) -> dict[str, str | int]:
    signed = {"minhash": signature} if signature and chunk.index == 0 else {}  # one copy per document
    fetched = {"origin": document.origin} if document.origin else {}  # files and imports keep their old shape
    return {
        **signed,
        **fetched,
        "story": story or document.id,
        "doc_id": chunk.doc_id,
        "doc_hash": document.content_hash,
        "doc_chunks": chunks,  # how many chunks the whole document has: lets a reader tell a complete one
        "index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "title": chunk.title,
        "published": chunk.published,
        "published_day": published_day(chunk.published),
        "published_as_written": document.published_as_written,
        "source": chunk.source,
        "url": chunk.url,
        "path": document.path,
    }


def lexical_row(chunk: Chunk, version: str) -> LexicalRow:
    """What the lexical index keeps of a chunk: the terms of its indexed text (title and date
    included), the fields filters look at, and its document's content hash as its version (a
    document replaced with as many chunks keeps its ids; the version tells the rows apart)."""
    heading_terms = terms(heading(chunk.title, chunk.published))
    terms_of = (*heading_terms, *terms(chunk.text))  # the terms of indexed_text(chunk), heading first
    return LexicalRow(
        chunk.id, terms_of, chunk.source, published_day(chunk.published), version, text_start=len(heading_terms)
    )


def chroma_where(where: SearchFilter | None) -> dict[str, Any] | None:
    """A SearchFilter as a Chroma metadata filter (None when it filters nothing)."""
    if not where:
        return None
    conditions: list[dict[str, Any]] = []
    if where.sources:
        conditions.append({"source": {"$in": list(where.sources)}})
    if where.since:
        conditions.append({"published_day": {"$gte": published_day(where.since)}})
    if where.last_day:
        conditions.append({"published_day": {"$gte": 1}})
        conditions.append({"published_day": {"$lte": published_day(where.last_day)}})
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def row_filter(where: SearchFilter | None) -> RowFilter | None:
    """A SearchFilter as the lexical index's row filter."""
    if not where:
        return None
    return RowFilter(frozenset(where.sources), published_day(where.since), published_day(where.last_day))


def chunk_from_record(
    chunk_id: str, text: str, meta: dict[str, Any], sentence_terms: SentenceTerms | None = None
) -> Chunk:
    """A Chunk from a stored record: metadata with doc_id, index, start, end (and optionally
    title, published, source, url), the shape `_chunk_metadata` writes; with the text's
    sentence terms when the records table kept them."""
    return Chunk(
        id=chunk_id,
        doc_id=str(meta["doc_id"]),
        index=int(meta["index"]),
        text=text,
        start=int(meta["start"]),
        end=int(meta["end"]),
        title=str(meta.get("title", "")),
        published=str(meta.get("published", "")),
        source=str(meta.get("source", "")),
        url=str(meta.get("url", "")),
        story=str(meta.get("story") or meta["doc_id"]),
        sentence_terms=sentence_terms,
    )
