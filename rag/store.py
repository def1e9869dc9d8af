"""The store: chunks with their vectors and metadata in Chroma (rag/chroma.py), and the BM25
index beside them (rag/lexical_index.py), kept in step and safe to share.

Concurrency, by design:
- between processes, writers take a file lock beside the embedded store (`writing`), and every
  change raises the store's generation (rag/chroma.py); a question first compares it with the
  generation this process last saw (`reading`) and, if another process changed anything,
  brings the BM25 index in step row by row, by content hash, before it searches;
- within a process, every change to the store and its index is one exclusive step of a
  readers-writer lock, and every question reads under the shared side, so it sees the store
  before or after a change, never during one. Embedding is done outside that step, so
  questions keep being answered while a batch is embedded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.chroma import ChromaCollection
from rag.chunk_records import ChunkRecords
from rag.concurrency import ProcessWriteLock, ReadWriteLock, StoreBusyError
from rag.config import Settings
from rag.embeddings import Embedder
from rag.exact_search import ExactVectors
from rag.lexical import terms
from rag.lexical_index import LexicalIndex, ScoreLookup
from rag.store_records import (
    DocumentRecords,
    StoredDocument,
    chroma_where,
    chunk_from_record,
    chunk_metadata,
    lexical_row,
    published_day,
    row_filter,
)
from rag.stories import decode
from rag.types import Chunk, Document, Passage, SearchFilter

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import GetResult

PAGE = 5000  # metadata rows fetched per call when scanning the collection
# Chunks read for questions are kept until the store changes: related questions bring back the
# same passages, and Chroma's reads cost about 0.15 ms a record (70 records a hybrid search).
KEPT_CHUNKS = 20_000
FILTER_OVERFETCH = 4  # a filtered dense search first filters this many times k unfiltered results
ORIGINS_AT_ONCE = 500  # documents whose stored versions are read in one call


def _origin(metas: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """(content hash, path) from one document's chunk records; the hash is "" when they are not
    one complete version (stored_origin)."""
    hashes = {str(meta.get("doc_hash", "")) for meta in metas}
    expected = metas[0].get("doc_chunks", len(metas))  # stores made before it was recorded: trust the count
    indexes = sorted(int(meta.get("index", -1)) for meta in metas)
    complete = len(hashes) == 1 and expected == len(metas) and indexes == list(range(len(metas)))
    return (hashes.pop() if complete else "", str(metas[0].get("path", "")))


@dataclass(frozen=True)
class StoredVectors:
    """Some chunks' stored vectors, row by row."""

    ids: list[str]
    vectors: np.ndarray

    def similarities(self, vector: Sequence[float], only: Iterable[str] | None = None) -> dict[str, float]:
        """Cosine similarity of `vector` to each row (to the rows of `only`, when given), as
        the dense search scores them."""
        wanted = None if only is None else set(only)
        rows = [i for i, chunk_id in enumerate(self.ids) if wanted is None or chunk_id in wanted]
        if not rows:
            return {}
        stored = self.vectors[rows]
        query = np.asarray(vector, dtype=np.float32)
        norms = np.linalg.norm(stored, axis=1) * (np.linalg.norm(query) or 1.0)
        scores = stored @ query / np.where(norms > 0, norms, 1.0)
        return dict(zip((self.ids[i] for i in rows), scores.tolist()))


class ChunkStore:
    """Chunks in one Chroma collection and their BM25 index, opened lazily."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.chroma = ChromaCollection(settings, embedder)
        # Embedded stores keep chunk texts in a table of their own (rag/chunk_records.py); a
        # Chroma server, shared by several machines, keeps them itself.
        self.records = (
            None if settings.chroma_url else ChunkRecords(self.path / f"records-{settings.collection}.sqlite3")
        )
        self.guard = ReadWriteLock()
        self._lexical: LexicalIndex | None = None
        self._seen: int | None = None  # the generation the BM25 index reflects
        self._sync_lock = threading.Lock()
        self._write_lock = ProcessWriteLock(settings)
        self._max_batch: int | None = None
        self._state_saved: int | None = None  # the generation the lexical state on disk was saved at
        self._kept: OrderedDict[str, Chunk] = OrderedDict()  # chunks read at generation _kept_at
        self._kept_at: int | None = None
        self._kept_lock = threading.Lock()
        self._exact: ExactVectors | None = None  # set by search_exactly

    @property
    def path(self) -> Path:
        return self.settings.store_dir

    @property
    def collection(self) -> Collection:
        return self.chroma.collection

    def exists(self) -> bool:
        return self.chroma.exists()

    def count(self) -> int:
        return self.collection.count()

    @property
    def generation(self) -> int | None:
        """The store generation this process's caches reflect (None before the first question)."""
        return self._seen

    # ----- the BM25 index, in step -------------------------------------------------------------

    @property
    def lexical(self) -> LexicalIndex:
        """The BM25 index beside the collection, brought in step with it when first used."""
        if self._lexical is None:
            with self._sync_lock:
                if self._lexical is None:
                    generation = self.chroma.generation()
                    index = LexicalIndex(self._lexical_folder)
                    if index.restore_state(generation):
                        self._state_saved = generation
                    else:
                        self._sync(index)
                    self._lexical, self._seen = index, generation
            self._settle_if_free()
        return self._lexical

    @property
    def _lexical_folder(self) -> Path:
        return self.path / f"lexical-{self.settings.collection}"

    def refresh(self) -> bool:
        """Bring the BM25 index in step when another process changed the store since this one
        last looked (one cheap read of the generation); returns whether it had to. Inside a
        question's read section it does nothing: a question keeps the view it started with."""
        if self.guard.is_reading():
            return False
        generation = self.chroma.generation()
        if self._lexical is not None and generation == self._seen:
            return False
        with self.guard.writing():
            index = self.lexical
            if generation != self._seen:
                self.chroma.reopen()
                with self._sync_lock:
                    self._sync(index)
                    self._seen = generation
        self._settle_if_free()
        return True

    def _sync(self, index: LexicalIndex) -> None:
        """Make the index hold exactly the stored chunks as stored: rows whose document's
        content hash differs (replaced, even by as many chunks) or that are missing are indexed
        again from the stored text, rows no longer stored are dropped, in one change."""
        stored = {chunk_id: str(meta.get("doc_hash", "")) for chunk_id, meta in self._metadatas()}
        held = index.versions()
        stale = sorted(chunk_id for chunk_id, version in stored.items() if held.get(chunk_id) != version)
        rows = []
        for first in range(0, len(stale), PAGE):
            part = stale[first : first + PAGE]
            read = self._read_records({chunk_id: stored[chunk_id] for chunk_id in part})
            rows.extend(lexical_row(read[chunk_id], stored[chunk_id]) for chunk_id in part if chunk_id in read)
        index.replace(held.keys() - stored.keys(), rows)

    def _settle_if_free(self) -> None:
        """Compact the index if it needs it, and save its state for the next process, when no
        other process is writing (never waits: a question must not queue behind another
        process's ingest)."""
        if self._lexical is None or (not self._lexical.pending and self._state_saved == self._seen):
            return
        try:
            with self.writing(timeout=0):
                self._lexical.settle()
                self._save_lexical_state()
        except StoreBusyError:
            pass  # the writer compacts when it is done

    def _save_lexical_state(self) -> None:
        """Save the BM25 index's state when it is in step with the store (the caller holds the
        write lock), so the next process to open the store reads no stored record to sync it."""
        generation = self.chroma.generation()
        if self._lexical is not None and generation == self._seen and generation != self._state_saved:
            self._lexical.save_state(generation)
            self._state_saved = generation

    # ----- locks -------------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[None]:
        """A consistent view for one question: in step with other processes' changes, and no
        change of this process's made while it lasts."""
        self.refresh()
        with self.guard.reading():
            yield

    def writing(self, timeout: float | None = None) -> AbstractContextManager[None]:
        """Hold the store's single-writer lock between processes while changing it (see
        ProcessWriteLock); re-entrant."""
        return self._write_lock.held(timeout)

    @contextmanager
    def _changing(self) -> Iterator[LexicalIndex]:
        """One change of the store and its index, exclusive within the process; the generation
        is raised after it. When nothing else changed the store meanwhile, this process's
        index already holds the change and needs no sync."""
        with self.writing(), self.guard.writing():
            index = self.lexical
            try:
                yield index
            finally:
                before, after = self.chroma.raise_generation()
                if before == self._seen:
                    self._seen = after

    # ----- reading records ---------------------------------------------------------------------

    def _pages(self, include: list[str], where: dict[str, Any] | None = None) -> Iterator[GetResult]:
        """The collection's records, PAGE at a time, so large stores are never fetched at once."""
        offset = 0
        while True:
            page = self.collection.get(where=where, include=include, limit=PAGE, offset=offset)  # type: ignore[arg-type]
            yield page
            if len(page["ids"]) < PAGE:
                return
            offset += PAGE

    def _metadatas(self, where: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
        return [
            (chunk_id, dict(meta or {}))
            for page in self._pages(["metadatas"], where)
            for chunk_id, meta in zip(page["ids"], page["metadatas"] or [])
        ]

    def stored_records(self, where: dict[str, Any] | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
        """Every stored chunk's text and metadata (those a Chroma filter allows), for checks."""
        metas = self._metadatas(where)
        read = self._read_records({chunk_id: str(meta.get("doc_hash", "")) for chunk_id, meta in metas})
        return {chunk_id: (read[chunk_id].text, meta) for chunk_id, meta in metas if chunk_id in read}

    def documents(self) -> list[StoredDocument]:
        """Every stored document with its chunk count, sorted by date (newest first), then title."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for _, meta in self._metadatas():
            grouped.setdefault(str(meta["doc_id"]), []).append(meta)
        documents = [
            StoredDocument(
                doc_id=doc_id,
                title=str(metas[0].get("title", "")),
                published=str(metas[0].get("published", "")),
                source=str(metas[0].get("source", "")),
                url=str(metas[0].get("url", "")),
                path=str(metas[0].get("path", "")),
                content_hash=str(metas[0].get("doc_hash", "")),
                chunks=len(metas),
                story=str(metas[0].get("story") or doc_id),
            )
            for doc_id, metas in grouped.items()
        ]
        documents.sort(key=lambda d: d.title)
        documents.sort(key=lambda d: d.published, reverse=True)
        return documents

    def story_signatures(self) -> list[tuple[str, str, np.ndarray]]:
        """(document id, story, MinHash signature) of every stored document that has one
        (documents stored before signatures were kept have none and match nothing)."""
        known = []
        for _, meta in self._metadatas({"index": 0}):
            values = decode(str(meta.get("minhash", "")))
            if values is not None:
                known.append((str(meta["doc_id"]), str(meta.get("story") or meta["doc_id"]), values))
        return known

    def story_documents(self, stories: Iterable[str]) -> dict[str, list[Chunk]]:
        """Per story id, the first chunk of each stored document in it (where it appeared)."""
        wanted = sorted(set(stories))
        if not wanted:
            return {}
        members: dict[str, list[Chunk]] = {}
        for page in self._pages(["metadatas"], {"$and": [{"story": {"$in": wanted}}, {"index": 0}]}):
            for chunk_id, meta in zip(page["ids"], page["metadatas"] or []):
                chunk = chunk_from_record(chunk_id, "", dict(meta or {}))
                members.setdefault(chunk.story, []).append(chunk)
        return members

    def texts_of(self, chunk_ids: Sequence[str]) -> dict[str, str]:
        """The stored text of each of these chunks that exists."""
        return {chunk_id: chunk.text for chunk_id, chunk in self.chunks(chunk_ids).items()}

    def stored_origin(self, doc_id: str) -> tuple[str, str] | None:
        """(content hash, source path) of a stored document, or None when it is not stored.

        A document left half-written by a process that was killed (some chunks of a new version
        stored, or old chunks not yet dropped) has the hash "": it no longer matches its file, so
        the next ingest writes it again and ends as an uninterrupted one would.
        """
        return self.stored_origins([doc_id]).get(doc_id)

    def stored_origins(self, doc_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """stored_origin of each of these documents that is stored, read ORIGINS_AT_ONCE
        documents at a time (one read each, not one per document)."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        unique = sorted(set(doc_ids))
        for first in range(0, len(unique), ORIGINS_AT_ONCE):
            wanted = unique[first : first + ORIGINS_AT_ONCE]
            for _, meta in self._metadatas({"doc_id": {"$in": wanted}}):
                grouped.setdefault(str(meta["doc_id"]), []).append(meta)
        return {doc_id: _origin(metas) for doc_id, metas in grouped.items()}

    # ----- changes -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop the collection and the BM25 index and start both empty (used by --rebuild, also
        when the store was built with other settings, so it does not open the old one)."""
        with self.writing(), self.guard.writing():
            self.chroma.drop()
            if self.records:
                self.records.clear()
            index = self._lexical or LexicalIndex(self._lexical_folder)
            index.clear()
            self._lexical, self._seen = index, self.chroma.raise_generation()[1]

    def set_path(self, doc_id: str, path: str) -> None:
        """Record a new source path for a document's chunks (the file moved, its text did not)."""
        rows = self._metadatas({"doc_id": doc_id})
        if rows:
            with self._changing():
                if self.records:
                    self.records.set_path(doc_id, path)
                self.collection.update(ids=[i for i, _ in rows], metadatas=[{**m, "path": path} for _, m in rows])

    @property
    def max_batch(self) -> int:
        """Most records Chroma takes in one write; larger writes are split."""
        if self._max_batch is None:
            self._max_batch = int(self.collection._client.get_max_batch_size())  # noqa: SLF001 - exposed here only
        return self._max_batch

    def put_document(
        self,
        document: Document,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
        story: str = "",
        signature: str = "",
    ) -> None:
        """Store one document's chunks (put_documents)."""
        self.put_documents([DocumentRecords(document, chunks, vectors, story, signature)])

    def put_documents(self, records: Sequence[DocumentRecords]) -> None:
        """Store several documents' chunks in one write, then drop their older chunks: a failure
        midway loses nothing, and a document left half-written is found by stored_origin and
        written again. One write for many documents costs far less than one each (Chroma's
        upsert, the generation step): an import writes a group of them at a time."""
        new_ids = [chunk.id for record in records for chunk in record.chunks]
        rows = [
            (chunk, vector, chunk_metadata(r.document, chunk, len(r.chunks), r.story, r.signature))
            for r in records
            for chunk, vector in zip(r.chunks, r.vectors)
        ]
        batch = self.max_batch
        versions = {record.document.id: record.document.content_hash for record in records}
        with self._changing() as index:
            if self.records:  # first: the versions Chroma holds keep their rows until it holds these
                self.records.put(
                    (chunk.id, versions[chunk.doc_id], chunk.text, metadata) for chunk, _, metadata in rows
                )
            # Looking up a group's stored chunks costs an import about a twentieth of its time.
            doc_ids = sorted({record.document.id for record in records if not record.new})
            old_ids = {chunk_id for chunk_id, _ in self._metadatas({"doc_id": {"$in": doc_ids}})} if doc_ids else set()
            for first in range(0, len(rows), batch):
                part = rows[first : first + batch]
                self.collection.upsert(
                    ids=[chunk.id for chunk, _, _ in part],
                    embeddings=np.asarray([vector for _, vector, _ in part], dtype=np.float32),
                    documents=None if self.records else [chunk.text for chunk, _, _ in part],
                    metadatas=[metadata for _, _, metadata in part],  # type: ignore[misc]
                )
            stale = sorted(old_ids - set(new_ids))
            for first in range(0, len(stale), batch):
                self.collection.delete(ids=stale[first : first + batch])
            index.replace(
                stale,
                (lexical_row(chunk, record.document.content_hash) for record in records for chunk in record.chunks),
            )
            if self.records:
                self.records.keep_only(sorted(versions), versions, new_ids)

    def without_sentence_terms(self) -> int:
        """How many chunk records lack stored sentence terms (stores made before they were kept)."""
        return self.records.without_sentence_terms() if self.records else 0

    def fill_sentence_terms(self, progress: Callable[[int], None] | None = None) -> int:
        """Store the sentence terms of the records without them; returns how many (chunks read
        later carry them, so a search no longer tokenises them)."""
        return self.records.fill_sentence_terms(progress) if self.records else 0

    def delete_document(self, doc_id: str) -> int:
        """Remove a document's chunks; returns how many there were."""
        with self._changing() as index:
            ids = [chunk_id for chunk_id, _ in self._metadatas({"doc_id": doc_id})]
            for first in range(0, len(ids), self.max_batch):
                self.collection.delete(ids=ids[first : first + self.max_batch])
            index.remove(ids)
            if self.records:
                self.records.keep_only([doc_id], {}, ())
        return len(ids)

    def settle(self) -> None:
        """After a batch of changes: compact the lexical index if they were many."""
        with self.writing():
            self.lexical.settle()
            self._save_lexical_state()

    # ----- searching ---------------------------------------------------------------------------

    def search(self, vector: Sequence[float], k: int, where: SearchFilter | None = None) -> list[Passage]:
        """The k chunks closest to the vector among those the filter allows, best first, scored
        by cosine similarity.

        A filter is first applied to an unfiltered search of FILTER_OVERFETCH × k results: the
        first k of them that it allows are the k best it allows. Only when fewer pass (a narrow
        filter) is Chroma's own filtered search asked, which costs far more (on 70,807 chunks,
        median 0.21 s against 0.004 s unfiltered: it builds the allowed set from every row's
        metadata). An "as of" date, which hides only the newest articles, rarely needs it."""
        if not where:
            return self._nearest(vector, k, None)
        fetch = k * FILTER_OVERFETCH
        nearest = self._nearest(vector, fetch, None)
        allowed = row_filter(where)
        passing = [p for p in nearest if allowed.allows(p.chunk.source, published_day(p.chunk.published))]
        if len(passing) >= k or len(nearest) < fetch:
            return passing[:k]
        return self._nearest(vector, k, where)

    def search_exactly(self) -> None:
        """From now on, answer dense searches exactly, over a snapshot of every stored vector
        taken now, instead of with Chroma's HNSW graph: the same neighbours in every process,
        which a trainer needs to rebuild its model bit for bit (rag/exact_search.py). For
        stores that no longer change; about 1.5 KB of memory a chunk."""
        self._exact = ExactVectors.from_records(
            (chunk_id, vector, dict(meta or {}))
            for page in self._pages(["embeddings", "metadatas"])
            for chunk_id, vector, meta in zip(page["ids"], page["embeddings"], page["metadatas"] or [])
        )

    def _nearest(self, vector: Sequence[float], k: int, where: SearchFilter | None) -> list[Passage]:
        if self._exact is not None:
            found = self._exact.nearest(vector, k, row_filter(where))
            read = self._read_records({i: self._exact.versions[i] for i, _ in found})
            return [Passage(chunk=read[i], score=score) for i, score in found if i in read]
        # Chroma answers an empty collection with no results, so the store's size is not asked
        # for first: that costs as much as the search.
        result = self.collection.query(
            query_embeddings=[list(vector)],  # type: ignore[arg-type]
            n_results=k,
            where=chroma_where(where),
            include=["metadatas", "distances"] if self.records else ["documents", "metadatas", "distances"],
        )
        ids = result["ids"][0]
        metas = [dict(m or {}) for m in (result["metadatas"] or [[]])[0]]
        distances = (result["distances"] or [[]])[0]
        if self.records:
            read = self._read_records({i: str(m.get("doc_hash", "")) for i, m in zip(ids, metas)})
        else:
            texts = (result["documents"] or [[]])[0]
            read = {i: chunk_from_record(i, t, m) for i, t, m in zip(ids, texts, metas)}
        return [Passage(chunk=read[i], score=1.0 - float(d)) for i, d in zip(ids, distances) if i in read]

    def nearest(
        self, vector: Sequence[float], k: int, where: SearchFilter | None = None
    ) -> tuple[list[tuple[str, float]], dict[str, Chunk]]:
        """The ids of the k chunks `search` returns, with their scores, and those of their chunks
        it had to read to apply a filter. Without a filter no record is read: reading them is
        most of a search's cost (on 40 results, about 7 ms of 9), and a caller that reads other
        chunks too reads them all at once (`chunks`)."""
        if where:
            passages = self.search(vector, k, where)
            return [(p.chunk.id, p.score) for p in passages], {p.chunk.id: p.chunk for p in passages}
        if self._exact is not None:
            return self._exact.nearest(vector, k), {}
        result = self.collection.query(query_embeddings=[list(vector)], n_results=k, include=["distances"])  # type: ignore[arg-type]
        distances = (result["distances"] or [[]])[0]
        return [(i, 1.0 - float(d)) for i, d in zip(result["ids"][0], distances)], {}

    def chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """The stored chunks of these ids (ids no longer stored are left out): those read since
        the store last changed from memory (at most KEPT_CHUNKS), the others in one read."""
        with self._kept_lock:
            if self._kept_at != self._seen:
                self._kept.clear()
                self._kept_at = self._seen
            seen = self._seen
            found = {i: self._kept[i] for i in chunk_ids if i in self._kept}
            for chunk_id in found:
                self._kept.move_to_end(chunk_id)
        unread = [i for i in chunk_ids if i not in found]
        if not unread:
            return found
        held = self.lexical.versions_of(unread) if self.records else {}
        read = self._read_records({i: held.get(i, "") for i in unread})
        with self._kept_lock:
            if self._kept_at == seen:  # else the store changed meanwhile: keep nothing read before
                self._kept.update(read)
                while len(self._kept) > KEPT_CHUNKS:
                    self._kept.popitem(last=False)
        return {**found, **read}

    def _read_records(self, versions: dict[str, str]) -> dict[str, Chunk]:
        """The stored chunks of these ids: from the records table at the version given (the one
        Chroma holds), the others from Chroma (stores written before the table, or a version
        the table does not hold), with the table's text where Chroma kept none."""
        exact, other, kept_terms = self.records.get(versions) if self.records else ({}, {}, {})
        read = {
            chunk_id: chunk_from_record(chunk_id, text, meta, kept_terms.get(chunk_id))
            for chunk_id, (text, meta) in exact.items()
        }
        missing = [chunk_id for chunk_id in versions if chunk_id not in read]
        if missing:
            page = self.collection.get(ids=missing, include=["documents", "metadatas"])
            texts = page["documents"] or [None] * len(page["ids"])
            for chunk_id, text, meta in zip(page["ids"], texts, page["metadatas"] or []):
                if not text and chunk_id in other:
                    text = other[chunk_id][0]
                read[chunk_id] = chunk_from_record(chunk_id, text or "", dict(meta or {}))
        return read

    def forget_chunks(self) -> None:
        """Drop the chunks kept in memory (so that timings compare like with like)."""
        with self._kept_lock:
            self._kept.clear()

    def lexical_search(self, query: str, k: int, where: SearchFilter | None = None) -> list[Passage]:
        """The k chunks with the best BM25 score for the query among those the filter allows,
        best first; chunks sharing no term with the query are never returned."""
        found, _ = self.lexical_scoring(query, k, where)
        stored = self.chunks([chunk_id for chunk_id, _ in found])
        return [Passage(chunk=stored[i], score=score) for i, score in found if i in stored]

    def lexical_scoring(
        self, query: str, k: int, where: SearchFilter | None = None, also: Sequence[str] = ()
    ) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """The ids and scores `lexical_search` finds, and the BM25 score of each chunk id in
        `also` (found by another search), from the same pass over the index."""
        found, score_of = self.lexical_ranking(query, k, where)
        return found, score_of(also)

    def lexical_ranking(
        self, query: str, k: int, where: SearchFilter | None = None, refresh: bool = True
    ) -> tuple[list[tuple[str, float]], ScoreLookup]:
        """The ids and scores `lexical_search` finds, and a lookup of other chunks' BM25 scores
        from the same pass (LexicalIndex.scored_search). `refresh=False` when the caller has
        just refreshed and runs a dense search meanwhile, which a reopened client would break."""
        if refresh:
            self.refresh()  # for callers outside a question (eval, benchmarks): see other processes' changes
        return self.lexical.scored_search(terms(query), k, row_filter(where))

    def vectors_of(self, chunk_ids: Sequence[str]) -> StoredVectors:
        """The stored vectors of these chunks (ids no longer stored are left out): read before
        the question's own vector is known, to score chunks another search found."""
        if not chunk_ids:
            return StoredVectors([], np.zeros((0, 0), dtype=np.float32))
        page = self.collection.get(ids=list(chunk_ids), include=["embeddings"])
        return StoredVectors(list(page["ids"]), np.asarray(page["embeddings"], dtype=np.float32))

    def similarities(self, vector: Sequence[float], chunk_ids: Sequence[str]) -> dict[str, float]:
        """Cosine similarity of the vector to each stored chunk of `chunk_ids` (found by another
        search), as `search` scores them."""
        return self.vectors_of(chunk_ids).similarities(vector)
