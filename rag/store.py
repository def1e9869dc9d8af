"""The Chroma store: chunks, their vectors and metadata, with deterministic ids.

Chunk metadata is the single record of what is stored: each chunk carries its document's id
and content hash, so incremental ingest and the document list need no second database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import numpy as np

from rag.chunking import indexed_text, sentence_spans
from rag.config import Settings
from rag.embeddings import Embedder
from rag.lexical import terms
from rag.lexical_index import LexicalIndex, LexicalRow, RowFilter
from rag.stories import decode
from rag.types import Chunk, Document, Passage, SearchFilter

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import GetResult
    from filelock import BaseFileLock

PAGE = 5000  # metadata rows fetched per call when scanning the collection


class StoreMismatchError(RuntimeError):
    """The store on disk was built with another model or other chunking than Settings ask for."""


class StoreBusyError(RuntimeError):
    """Another process held the embedded store's write lock for longer than we would wait."""


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


class _ChromaEmbeddingFunction:
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
        return {"model": self._embedder.model_name}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> _ChromaEmbeddingFunction:
        return _ChromaEmbeddingFunction(Embedder(config["model"]))

    def is_legacy(self) -> bool:
        return False

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]


def document_sources(documents: Iterable[StoredDocument]) -> list[str]:
    """The distinct, non-empty sources of the documents, sorted."""
    return sorted({document.source for document in documents if document.source})


def published_day(published: str) -> int:
    """'2023-01-05' -> 20230105, the form Chroma can compare in a date-range filter; 0 when undated."""
    digits = published[:10].replace("-", "")
    return int(digits) if len(digits) == 8 and digits.isdigit() else 0


def _chunk_metadata(document: Document, chunk: Chunk, chunks: int, story: str, signature: str) -> dict[str, str | int]:
    signed = {"minhash": signature} if signature and chunk.index == 0 else {}  # one copy per document
    return {
        **signed,
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
        "source": chunk.source,
        "url": chunk.url,
        "path": document.path,
    }


def lexical_row(chunk: Chunk) -> LexicalRow:
    """What the lexical index keeps of a chunk: the terms of its indexed text (title and date
    included) and the fields filters look at."""
    return LexicalRow(chunk.id, tuple(terms(indexed_text(chunk))), chunk.source, published_day(chunk.published))


def chroma_where(where: SearchFilter | None) -> dict[str, Any] | None:
    """A SearchFilter as a Chroma metadata filter (None when it filters nothing)."""
    if not where:
        return None
    conditions: list[dict[str, Any]] = []
    if where.sources:
        conditions.append({"source": {"$in": list(where.sources)}})
    if where.since:
        conditions.append({"published_day": {"$gte": published_day(where.since)}})
    if where.until:
        conditions.append({"published_day": {"$gte": 1}})
        conditions.append({"published_day": {"$lte": published_day(where.until)}})
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def row_filter(where: SearchFilter | None) -> RowFilter | None:
    """A SearchFilter as the lexical index's row filter."""
    if not where:
        return None
    return RowFilter(frozenset(where.sources), published_day(where.since), published_day(where.until))


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


def chunk_from_record(chunk_id: str, text: str, meta: dict[str, Any]) -> Chunk:
    """A Chunk from a stored record: metadata with doc_id, index, start, end (and optionally
    title, published, source, url), the shape `_chunk_metadata` writes."""
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
    )


class _ReopeningCollection:
    """Stands in for the store's Collection: a call that finds the collection gone (another
    process rebuilt the store) opens it again by name and is made once more."""

    def __init__(self, store: ChunkStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store._current_collection(), name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            from chromadb.errors import NotFoundError

            try:
                return attribute(*args, **kwargs)
            except NotFoundError:
                self._store._collection = None
                return getattr(self._store._current_collection(), name)(*args, **kwargs)

        return call


class ChunkStore:
    """Chunks in one Chroma collection, opened lazily; checks the model and chunking on open."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self._collection: Collection | None = None
        self._lexical: LexicalIndex | None = None
        self._write_lock: BaseFileLock | None = None
        self._max_batch: int | None = None

    @property
    def path(self) -> Path:
        return self.settings.store_dir

    @property
    def lexical(self) -> LexicalIndex:
        """The BM25 index beside the collection, brought in step with it when first used."""
        if self._lexical is None:
            self._lexical = LexicalIndex(self._lexical_folder)
            self.sync_lexical()
        return self._lexical

    @property
    def _lexical_folder(self) -> Path:
        return self.path / f"lexical-{self.settings.collection}"

    def sync_lexical(self) -> None:
        """Make the lexical index hold exactly the stored chunks: index the ones it lacks (from
        their stored text), drop the ones no longer stored, and compact if that was many."""
        index = self.lexical
        stored = {chunk_id for page in self._pages([]) for chunk_id in page["ids"]}
        held = index.ids()
        index.remove(held - stored)
        missing = sorted(stored - held)
        for first in range(0, len(missing), PAGE):
            page = self.collection.get(ids=missing[first : first + PAGE], include=["documents", "metadatas"])  # type: ignore[list-item]
            index.add(
                lexical_row(chunk_from_record(i, t, dict(m or {})))
                for i, t, m in zip(page["ids"], page["documents"] or [], page["metadatas"] or [])
            )
        index.settle()

    def exists(self) -> bool:
        """Whether the store has been created (without creating one): the embedded folder, or
        the collection on the Chroma server."""
        if self.settings.chroma_url:
            return self._has_collection(self._client())
        return (self.path / "chroma.sqlite3").exists()

    @property
    def collection(self) -> Collection:
        """The Chroma collection, reopened when another process has rebuilt it (deleted and
        created it again), so a running app keeps answering after `ingest --rebuild`."""
        return cast("Collection", _ReopeningCollection(self))

    def _current_collection(self) -> Collection:
        if self._collection is None:
            self._collection = self._open()
        return self._collection

    def _client(self) -> ClientAPI:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from chromadb.utils.embedding_functions import register_embedding_function

        # Chroma rebuilds a stored collection's embedding function by name when it reads the
        # collection's schema (on every write to a store another process created); unregistered,
        # it warned "Could not reconstruct embedding function" on stderr.
        register_embedding_function(_ChromaEmbeddingFunction)

        if self.settings.chroma_url:
            url = urlsplit(self.settings.chroma_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError(
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

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the embedded store's single-writer lock while changing it.

        Chroma's embedded store has one writer per folder; a second process writing at the same
        time can hang on its lock or damage the index. So writers take a file lock beside it and
        a second writer waits at most Settings.write_lock_timeout_seconds, then fails with a
        message. A Chroma server orders writes itself, so server mode takes no lock. Re-entrant.
        """
        if self.settings.chroma_url:
            yield
            return
        if self._write_lock is None:
            from filelock import FileLock

            self.path.mkdir(parents=True, exist_ok=True)
            self._write_lock = FileLock(self.path / "write.lock")
        from filelock import Timeout

        timeout = self.settings.write_lock_timeout_seconds
        try:
            self._write_lock.acquire(timeout=timeout)
        except Timeout:
            raise StoreBusyError(
                f"another process is writing to the store at {self.path} and has not finished after "
                f"{timeout:g} s (CITELINE_WRITE_LOCK_TIMEOUT_SECONDS). Try again when it is done, or, for "
                "several processes writing at once, run a Chroma server (`make chroma`) and set "
                "CITELINE_CHROMA_URL=http://127.0.0.1:8000"
            ) from None
        try:
            yield
        finally:
            self._write_lock.release()

    def _has_collection(self, client: ClientAPI) -> bool:
        return self.settings.collection in {c.name for c in client.list_collections()}

    def _open(self) -> Collection:
        client = self._client()
        embedding_function = _ChromaEmbeddingFunction(self.embedder)
        expected: dict[str, str | int | float] = dict(self.settings.index_shape())
        if self._has_collection(client):
            collection = client.get_collection(self.settings.collection, embedding_function=embedding_function)  # type: ignore[arg-type]
            self._check_shape(collection.metadata or {}, expected)
            return collection
        return client.create_collection(
            name=self.settings.collection,
            metadata={**expected, "embedding_dim": self.embedder.dimension},
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=embedding_function,  # type: ignore[arg-type]
        )

    def _check_shape(self, stored: dict[str, Any], expected: dict[str, str | int | float]) -> None:
        """Refuse a store built differently: its vectors would give silently wrong results.

        Names and chunking are compared first, so a wrong model is reported without loading it.
        """
        differences = [
            f"{key} is {stored.get(key)!r} in the store but {value!r} in Settings"
            for key, value in expected.items()
            if stored.get(key) != value
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
                + ". Rebuild it with `python -m rag ingest --rebuild`, or point CITELINE_STORE_DIR at another folder."
            )

    def reset(self) -> None:
        """Drop the collection (used by --rebuild); the next access recreates it empty."""
        client = self._client()
        if self._has_collection(client):
            client.delete_collection(self.settings.collection)
        self._collection = None
        self._lexical = self._lexical or LexicalIndex(self._lexical_folder)
        self._lexical.clear()

    def count(self) -> int:
        return self.collection.count()

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

    def texts(self) -> list[str]:
        """Every stored chunk's text (for corpus term statistics)."""
        return [text for page in self._pages(["documents"]) for text in page["documents"] or []]

    def stored_origin(self, doc_id: str) -> tuple[str, str] | None:
        """(content hash, source path) of a stored document, or None when it is not stored.

        A document left half-written by a process that was killed (some chunks of a new version
        stored, or old chunks not yet dropped) has the hash "": it no longer matches its file, so
        the next ingest writes it again and ends as an uninterrupted one would.
        """
        metas = [meta for _, meta in self._metadatas({"doc_id": doc_id})]
        if not metas:
            return None
        hashes = {str(meta.get("doc_hash", "")) for meta in metas}
        expected = metas[0].get("doc_chunks", len(metas))  # stores made before it was recorded: trust the count
        indexes = sorted(int(meta.get("index", -1)) for meta in metas)
        complete = len(hashes) == 1 and expected == len(metas) and indexes == list(range(len(metas)))
        return (hashes.pop() if complete else "", str(metas[0].get("path", "")))

    def set_path(self, doc_id: str, path: str) -> None:
        """Record a new source path for a document's chunks (the file moved, its text did not)."""
        rows = self._metadatas({"doc_id": doc_id})
        if rows:
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
        """Store a document's chunks, then drop its older chunks: a failure midway loses nothing.
        `story` is the story it copies (default: its own id), `signature` its encoded MinHash."""
        lexical = self.lexical  # brought in step before this change, so that it sees the change once
        old_ids = {chunk_id for chunk_id, _ in self._metadatas({"doc_id": document.id})}
        new_ids = [chunk.id for chunk in chunks]
        batch = self.max_batch
        for first in range(0, len(chunks), batch):
            part = slice(first, first + batch)
            self.collection.upsert(
                ids=new_ids[part],
                embeddings=[list(v) for v in vectors[part]],  # type: ignore[arg-type]
                documents=[chunk.text for chunk in chunks[part]],
                metadatas=[_chunk_metadata(document, chunk, len(chunks), story, signature) for chunk in chunks[part]],  # type: ignore[misc]
            )
        stale = sorted(old_ids - set(new_ids))
        for first in range(0, len(stale), batch):
            self.collection.delete(ids=stale[first : first + batch])
        lexical.add(lexical_row(chunk) for chunk in chunks)
        lexical.remove(stale)

    def delete_document(self, doc_id: str) -> int:
        """Remove a document's chunks; returns how many there were."""
        lexical = self.lexical
        ids = [chunk_id for chunk_id, _ in self._metadatas({"doc_id": doc_id})]
        for first in range(0, len(ids), self.max_batch):
            self.collection.delete(ids=ids[first : first + self.max_batch])
        lexical.remove(ids)
        return len(ids)

    def settle(self) -> None:
        """After a batch of changes: compact the lexical index if they were many."""
        self.lexical.settle()

    def search(self, vector: Sequence[float], k: int, where: SearchFilter | None = None) -> list[Passage]:
        """The k chunks closest to the vector among those the filter allows, best first, scored
        by cosine similarity. (Chroma answers an empty collection with no results, so the store's
        size is not asked for first: that costs as much as the search.)"""
        result = self.collection.query(
            query_embeddings=[list(vector)],  # type: ignore[arg-type]
            n_results=k,
            where=chroma_where(where),
            include=["documents", "metadatas", "distances"],
        )
        ids = result["ids"][0]
        texts = (result["documents"] or [[]])[0]
        metas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        return [
            Passage(chunk=chunk_from_record(i, t, dict(m or {})), score=1.0 - float(d))
            for i, t, m, d in zip(ids, texts, metas, distances)
        ]

    def with_neighbours(self, passages: Sequence[Passage]) -> list[Passage]:
        """The passages with the document's sentence just before and just after each, read from
        the adjacent chunks (one lookup), so a sentence at a chunk's edge keeps its context."""
        wanted = sorted({adjacent_chunk_id(p.chunk.id, step) for p in passages for step in (-1, 1)} - {""})
        if not wanted:
            return list(passages)
        page = self.collection.get(ids=wanted, include=["documents"])
        texts = dict(zip(page["ids"], page["documents"] or []))
        return [
            replace(
                p,
                before=edge_sentence(texts.get(adjacent_chunk_id(p.chunk.id, -1), ""), last=True),
                after=edge_sentence(texts.get(adjacent_chunk_id(p.chunk.id, 1), ""), last=False),
            )
            for p in passages
        ]

    def with_story_copies(self, passages: Sequence[Passage], has_copies: Callable[[str], bool]) -> list[Passage]:
        """The passages, each listing in `copies` the other stored documents of its story (one
        lookup, made only when `has_copies` says some passage's story has other documents): an
        answer counts a republished story as one source and shows where it appeared."""
        members = self.story_documents(p.chunk.story for p in passages if has_copies(p.chunk.story))
        enriched = []
        for passage in passages:
            known = {passage.chunk.doc_id, *(c.doc_id for c in passage.copies)}
            extra = tuple(c for c in members.get(passage.chunk.story, []) if c.doc_id not in known)
            enriched.append(replace(passage, copies=passage.copies + extra) if extra else passage)
        return enriched

    def lexical_search(self, query: str, k: int, where: SearchFilter | None = None) -> list[Passage]:
        """The k chunks with the best BM25 score for the query among those the filter allows,
        best first; chunks sharing no term with the query are never returned."""
        return self.lexical_search_scoring(query, k, where)[0]

    def lexical_search_scoring(
        self, query: str, k: int, where: SearchFilter | None = None, also: Sequence[str] = ()
    ) -> tuple[list[Passage], dict[str, float]]:
        """What `lexical_search` returns, and the BM25 score of each chunk id in `also` (found
        by another search), from the same pass over the index."""
        index = self.lexical
        if len(index) != self.count():
            self.sync_lexical()  # another process changed the store
        found, scored = index.search_scoring(terms(query), k, row_filter(where), also)
        if not found:
            return [], scored
        page = self.collection.get(ids=[chunk_id for chunk_id, _ in found], include=["documents", "metadatas"])
        records = {
            i: (t, dict(m or {})) for i, t, m in zip(page["ids"], page["documents"] or [], page["metadatas"] or [])
        }
        passages = [
            Passage(chunk=chunk_from_record(chunk_id, *records[chunk_id]), score=score)
            for chunk_id, score in found
            if chunk_id in records
        ]
        return passages, scored

    def similarities(self, vector: Sequence[float], chunk_ids: Sequence[str]) -> dict[str, float]:
        """Cosine similarity of the vector to each stored chunk of `chunk_ids` (found by another
        search), as `search` scores them."""
        if not chunk_ids:
            return {}
        page = self.collection.get(ids=list(chunk_ids), include=["embeddings"])
        stored = np.asarray(page["embeddings"], dtype=np.float32)
        if len(stored) == 0:
            return {}
        query = np.asarray(vector, dtype=np.float32)
        norms = np.linalg.norm(stored, axis=1) * (np.linalg.norm(query) or 1.0)
        return dict(zip(page["ids"], (stored @ query / np.where(norms > 0, norms, 1.0)).tolist()))
