"""Retrieval's last steps: each passage with what the answer shows beside it, the sentences
just before and after it in its document and the other documents of its story, so the
retriever returns exactly the passages the app shows and the eval measures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from rag.chunking import sentence_spans
from rag.retrieval import Retriever
from rag.store import ChunkStore
from rag.types import Passage, SearchFilter


def adjacent_chunk_id(chunk_id: str, step: int) -> str:
    """The id of the chunk `step` places away in the same document ('' for ids not ending in
    ':<index>', such as the LangChain recipe's)."""
    stem, _, index = chunk_id.rpartition(":")
    return f"{stem}:{int(index) + step}" if stem and index.isdigit() else ""


def edge_sentence(text: str, last: bool) -> str:
    """The text's last (or first) sentence; '' for no text."""
    spans = sentence_spans(text)
    if not spans:
        return ""
    start, end = spans[-1] if last else spans[0]
    return text[start:end]


def with_neighbours(store: ChunkStore, passages: Sequence[Passage]) -> list[Passage]:
    """The passages with the document's sentence just before and just after each, read from
    the adjacent chunks (one lookup), so a sentence at a chunk's edge keeps its context."""
    wanted = sorted({adjacent_chunk_id(p.chunk.id, step) for p in passages for step in (-1, 1)} - {""})
    if not wanted:
        return list(passages)
    texts = store.texts_of(wanted)
    return [
        replace(
            p,
            before=edge_sentence(texts.get(adjacent_chunk_id(p.chunk.id, -1), ""), last=True),
            after=edge_sentence(texts.get(adjacent_chunk_id(p.chunk.id, 1), ""), last=False),
        )
        for p in passages
    ]


def with_story_copies(
    store: ChunkStore,
    passages: Sequence[Passage],
    has_copies: Callable[[str], bool],
    where: SearchFilter | None = None,
) -> list[Passage]:
    """The passages, each listing in `copies` the other stored documents of its story (one
    lookup, made only when `has_copies` says some passage's story has other documents): an
    answer counts a republished story as one source and shows where it appeared. Under a
    filter's latest day (an as-of or until bound), copies published after it, or undated, are
    left out."""
    members = store.story_documents(p.chunk.story for p in passages if has_copies(p.chunk.story))
    if where is not None and where.last_day:
        members = {
            story: [c for c in chunks if where.shows_published(c.published)] for story, chunks in members.items()
        }
    enriched = []
    for passage in passages:
        known = {passage.chunk.doc_id, *(c.doc_id for c in passage.copies)}
        extra = tuple(c for c in members.get(passage.chunk.story, []) if c.doc_id not in known)
        enriched.append(replace(passage, copies=passage.copies + extra) if extra else passage)
    return enriched


class InContext:
    """A retriever whose passages come with their neighbouring sentences and story copies."""

    def __init__(self, retriever: Retriever, store: ChunkStore, has_copies: Callable[[str], bool]) -> None:
        self.retriever = retriever
        self.store = store
        self.has_copies = has_copies

    def retrieve(self, query: str, k: int | None = None, where: SearchFilter | None = None) -> list[Passage]:
        passages = with_neighbours(self.store, self.retriever.retrieve(query, k, where))
        return with_story_copies(self.store, passages, self.has_copies, where)
