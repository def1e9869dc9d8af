"""Files and articles -> chunks, vectors and stored records, incrementally and safely.

Unchanged documents are skipped by content hash, changed ones replaced whole, a file that
cannot be loaded is reported and never stops the others, and every stored document records
its story (rag/stories.py) so copies of one story count as one source.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rag.chunking import chunk_document, heading
from rag.config import Settings
from rag.embeddings import Embedder, with_heading
from rag.loaders import LoadError, load_articles_jsonl, load_documents
from rag.store import ChunkStore
from rag.store_records import DocumentRecords
from rag.stories import StoryIndex
from rag.stories import encode as encode_signature
from rag.stories import signature as story_signature
from rag.types import Chunk, Document

# progress(done, total) during embedding, counted in chunks
IngestProgress = Callable[[int, int], None]


@dataclass
class IngestReport:
    """What one ingest did, per document id, and which files failed and why."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[LoadError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # stored, but with something to fix (a date)
    chunks_embedded: int = 0
    seconds: float = 0.0  # the whole ingest
    model_load_seconds: float = 0.0  # of which loading the embedding model (once per process)

    @property
    def embedded(self) -> int:
        """Documents whose chunks were embedded in this run (new or changed)."""
        return len(self.added) + len(self.updated)

    def summary(self) -> str:
        working = self.seconds - self.model_load_seconds
        rate = f", {self.chunks_embedded / working:.1f} chunks/s" if self.chunks_embedded and working > 0 else ""
        return (
            f"{self.embedded} documents embedded ({len(self.added)} new, {len(self.updated)} changed; "
            f"{self.chunks_embedded} chunks{rate}), {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.failed)} failed"
            + (f", {len(self.warnings)} warnings" if self.warnings else "")
        )


def _owned_by_another(stored_path: str, new_path: str) -> bool:
    """True when a stored document came from somewhere else that still holds it (an id clash):
    another file that still exists, or an imported article (no file) when this one is a file,
    or the other way round. The same file changed, or a file that was moved, is no clash."""
    if stored_path == new_path:
        return False
    if not stored_path or not new_path:
        return True
    return Path(stored_path).exists()


def _owner(path: str) -> str:
    return path or "imported article (no file)"


PendingDocument = tuple[Document, list[Chunk], bool]  # document, its chunks, whether it is new
EMBEDDING_GROUP_CHUNKS = 256


def documents_of(group: Sequence[PendingDocument]) -> list[tuple[Document, list[Chunk]]]:
    return [(document, chunks) for document, chunks, _ in group]


def embedding_groups(pending: Sequence[PendingDocument]) -> list[list[PendingDocument]]:
    """Consecutive documents gathered until they hold EMBEDDING_GROUP_CHUNKS chunks: the model
    embeds many short documents much faster together than one at a time, and each document is
    still stored whole or not at all."""
    groups: list[list[PendingDocument]] = []
    size = EMBEDDING_GROUP_CHUNKS
    for item in pending:
        if size >= EMBEDDING_GROUP_CHUNKS:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += len(item[1])
    return groups


def chunk_vectors(
    embedder: Embedder, heading_weight: float, documents: Sequence[tuple[Document, Sequence[Chunk]]]
) -> list[list[list[float]]]:
    """Per document, the vectors of its chunks: each chunk's text embedded, with a share
    (Settings.heading_weight) of its document's title-and-date vector mixed in. One model
    call for all of them, which is much faster than one per document."""
    texts = [chunk.text for _, chunks in documents for chunk in chunks]
    headings = [heading(document.title, document.published) for document, _ in documents]
    embedded = embedder.embed(texts + headings)
    vectors: list[list[list[float]]] = []
    offset = 0
    for (_, chunks), heading_vector in zip(documents, embedded[len(texts) :]):
        own = embedded[offset : offset + len(chunks)]
        offset += len(chunks)
        vectors.append(with_heading(own, heading_vector, heading_weight) if own else [])
    return vectors


class Stories:
    """The stored documents' story signatures, read once and then kept in step with this
    process's own changes; read again when the store's generation shows another change (a
    removal by another Assistant, another process), so adding one document does not read
    every document's signature. Thread-safe: ingest changes it while questions read it."""

    def __init__(self, store: ChunkStore) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._index: StoryIndex | None = None
        self._generation: int | None = None  # the store generation the index reflects

    def _current(self) -> StoryIndex:
        if self._index is None or self._generation != self.store.generation:
            generation = self.store.generation
            self._index, self._generation = StoryIndex(self.store.story_signatures()), generation
        return self._index

    def has_copies(self, story: str) -> bool:
        """Whether the story has other stored documents; True while the signatures are unread
        or stale, so the caller looks the story up (one query) rather than a question waiting
        for every document's signature to be read and indexed (seconds on a large store). They
        are read by `warm_up` and by the first change."""
        with self._lock:
            if self._index is None or self._generation != self.store.generation:
                return True
            return self._index.has_copies(story)

    @property
    def loaded(self) -> bool:
        return self._index is not None

    def warm_up(self) -> None:
        with self._lock:
            self._current()

    def put(
        self,
        documents: Sequence[tuple[Document, Sequence[Chunk], Sequence[Sequence[float]]]],
        new: Collection[str] = (),
    ) -> None:
        """Store documents (ChunkStore.put_documents, one write), each as a member of the story
        it copies: an earlier one of the same call included. `new`: ids known not to be stored."""
        signatures = [story_signature(document.text) for document, _, _ in documents]
        with self.store.guard.writing(), self._lock:  # the store's lock first, as questions take them
            index = self._current()
            before = self.store.generation
            records = [
                DocumentRecords(
                    document,
                    chunks,
                    vectors,
                    index.story_for(document.id, values),
                    encode_signature(values),
                    new=document.id in new,
                )
                for (document, chunks, vectors), values in zip(documents, signatures)
            ]
            self.store.put_documents(records)
            self._advance(before)

    def delete(self, doc_id: str) -> int:
        """Remove a document (ChunkStore.delete_document); returns how many chunks it had."""
        with self.store.guard.writing(), self._lock:
            index = self._current()
            before = self.store.generation
            removed = self.store.delete_document(doc_id)
            index.forget(doc_id)
            self._advance(before)
            return removed

    def _advance(self, before: int | None) -> None:
        """After one change of ours: still current when it was the only change since."""
        if before is not None and self.store.generation == before + 1:
            self._generation = self.store.generation


class Ingestor:
    """Brings files and articles into the store; one per Assistant."""

    def __init__(self, settings: Settings, store: ChunkStore, embedder: Embedder, stories: Stories) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.stories = stories

    def ingest(
        self, paths: Sequence[Path] | None = None, *, rebuild: bool = False, progress: IngestProgress | None = None
    ) -> IngestReport:
        """Sync files and folders into the store (default: the corpus folder).

        Unchanged documents are skipped by content hash, changed ones replaced, and documents
        that were ingested from a given folder but whose file is gone are removed. A file that
        cannot be loaded is reported in `failed`; it never stops the others or touches what is
        already stored. `rebuild` empties the store first, but only when every file loaded.
        Raises StoreBusyError when another process keeps writing to the embedded store.
        """
        began = time.perf_counter()
        paths = list(paths) if paths else [self.settings.corpus_dir]
        documents, failed = load_documents(paths)
        report = IngestReport(failed=failed)
        if rebuild:
            if failed or not documents:
                report.failed.append(
                    LoadError(
                        ", ".join(map(str, paths)),
                        "--rebuild needs every file to load and at least one document; "
                        "the store was left as it was. Fix or remove the files above and run it again",
                    )
                )
                return report
        with self.store.writing():
            if rebuild:
                self.store.reset()
            else:
                report.removed = self._remove_deleted(paths)
            self._store_documents(documents, report, progress)
        report.seconds = time.perf_counter() - began
        return report

    def ingest_documents(self, documents: Sequence[Document], progress: IngestProgress | None = None) -> IngestReport:
        """Store already-built Documents (for datasets that are not files), skipping unchanged ones."""
        began = time.perf_counter()
        report = IngestReport()
        with self.store.writing():
            self._store_documents(documents, report, progress)
        report.seconds = time.perf_counter() - began
        return report

    def import_articles(self, path: Path, progress: IngestProgress | None = None) -> IngestReport:
        """Store the articles of a .jsonl file (`id, title, url, published, source, text` per
        line). Articles already stored unchanged are skipped, so an interrupted import resumes
        where it stopped; bad lines are reported in `failed` and never stop the others."""
        documents, failed = load_articles_jsonl(path)
        report = self.ingest_documents(documents, progress)
        report.failed = failed + report.failed
        return report

    def _store_documents(
        self, documents: Sequence[Document], report: IngestReport, progress: IngestProgress | None
    ) -> None:
        report.warnings.extend(document.date_warning for document in documents if document.date_warning)
        if documents and not self.store.exists():
            # A store not created yet holds nothing to compare with. Creating it (importing
            # Chroma: a second of one core) runs beside the chunking and the model's loading,
            # which leave the other core idle, rather than beside the embedding, which does not.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="citeline-open") as background:
                opening = background.submit(self.stories.warm_up)
                self._embed_and_write(self._pending(documents, {}, report), report, progress, opening)
        elif documents:
            origins = self.store.stored_origins([document.id for document in documents])
            self._embed_and_write(self._pending(documents, origins, report), report, progress)
        self.store.settle()

    def _pending(
        self, documents: Sequence[Document], origins: dict[str, tuple[str, str]], report: IngestReport
    ) -> list[PendingDocument]:
        """The documents to embed, chunked: those not stored (per `origins`: id -> content hash
        and path) or stored in another version. The others are reported unchanged or failed."""
        pending: list[PendingDocument] = []
        pending_ids: set[str] = set()  # an id given twice is new only the first time
        for document in documents:
            stored = origins.get(document.id)
            if stored and stored[0] == document.content_hash:
                if document.path and stored[1] != document.path and not Path(stored[1]).exists():
                    self.store.set_path(document.id, document.path)  # moved: remember where it lives now
                report.unchanged.append(document.id)
                continue
            if stored and _owned_by_another(stored[1], document.path):
                report.failed.append(
                    LoadError(
                        _owner(document.path),
                        f"has the same document id '{document.id}' as the stored {_owner(stored[1])}; "
                        "give one of them another id (a file's `id:` in its front matter, or the article's "
                        "`id` field), or `python -m rag remove` the stored one first",
                    )
                )
                continue
            chunks = chunk_document(document, self.settings.chunk_max_chars, self.settings.chunk_overlap_sentences)
            pending.append((document, chunks, stored is None and document.id not in pending_ids))
            pending_ids.add(document.id)
        return pending

    def _embed_and_write(
        self,
        pending: Sequence[PendingDocument],
        report: IngestReport,
        progress: IngestProgress | None,
        opening: Future[None] | None = None,
    ) -> None:
        """Embed the pending documents a group at a time and store each group. `opening`: the
        store's opening in the background (a new store, so every document is pending), awaited
        before the first write and its error raised."""
        if not pending:
            return
        total = sum(len(chunks) for _, chunks, _ in pending)
        began = time.perf_counter()
        self.embedder.load()
        report.model_load_seconds = time.perf_counter() - began
        done = 0
        groups = embedding_groups(pending)
        # The next group is embedded in a second thread while this one writes the last (Chroma,
        # BM25, story signatures): the encoder releases the GIL while it runs, so the writes
        # cost the import only the CPU they take. Writes stay in this thread, which holds the
        # store's write lock.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="citeline-embedding") as embedding:
            upcoming = embedding.submit(self.chunk_vectors, documents_of(groups[0]))
            if opening:
                opening.result()
            for number, group in enumerate(groups):
                vectors = upcoming.result()
                if number + 1 < len(groups):
                    upcoming = embedding.submit(self.chunk_vectors, documents_of(groups[number + 1]))
                self.stories.put(
                    [(document, chunks, own) for (document, chunks, _), own in zip(group, vectors)],
                    new={document.id for document, _, is_new in group if is_new},
                )
                for document, chunks, is_new in group:
                    (report.added if is_new else report.updated).append(document.id)
                    report.chunks_embedded += len(chunks)
                done += sum(len(chunks) for _, chunks, _ in group)
                if progress:
                    progress(done, total)
                if number == len(groups) - 2:
                    # Compact the BM25 index while the last group embeds: the import's end then
                    # waits only for that group's write, and the last `settle` has little to fold.
                    self.store.settle()

    def chunk_vectors(self, documents: Sequence[tuple[Document, Sequence[Chunk]]]) -> list[list[list[float]]]:
        return chunk_vectors(self.embedder, self.settings.heading_weight, documents)

    def _remove_deleted(self, paths: Sequence[Path]) -> list[str]:
        """Remove stored documents that came from one of these folders and whose file is gone."""
        folders = [p.resolve() for p in paths if p.is_dir()]
        if not folders:
            return []
        removed = []
        for stored in self.store.documents():
            if not stored.path:
                continue
            origin = Path(stored.path)
            if any(origin.is_relative_to(folder) for folder in folders) and not origin.exists():
                self.stories.delete(stored.doc_id)
                removed.append(stored.doc_id)
        return removed

    def check(self, paths: Sequence[Path] | None = None) -> list[str]:
        """What is off between the files (default: the corpus folder) and the store, one line each:
        files not stored, stored copies that differ from their file or were left half-written,
        and stored documents whose file is gone. `ingest` of the same paths repairs all of it.
        Writes nothing. (The BM25 index needs no check: it is brought in step with the store
        whenever the store is opened.)"""
        paths = list(paths) if paths else [self.settings.corpus_dir]
        documents, failed = load_documents(paths)
        problems = [f"cannot be loaded: {error}" for error in failed]
        for document in documents:
            stored = self.store.stored_origin(document.id)
            if stored is None:
                problems.append(f"not in the store: {document.id} ({document.path})")
            elif stored[0] == "":
                problems.append(f"half-written in the store (an interrupted write): {document.id}")
            elif stored[0] != document.content_hash:
                problems.append(f"the stored copy differs from its file: {document.id} ({document.path})")
        folders = [p.resolve() for p in paths if p.is_dir()]
        for stored_document in self.store.documents():
            origin = Path(stored_document.path) if stored_document.path else None
            if origin and any(origin.is_relative_to(f) for f in folders) and not origin.exists():
                problems.append(f"stored, but its file is gone: {stored_document.doc_id} ({origin})")
        return problems

    def remove(self, doc_id: str) -> int:
        """Remove one document from the store; returns how many chunks it had (0: no such id)."""
        with self.store.writing():
            removed = self.stories.delete(doc_id)
            self.store.settle()
        return removed
