"""The one place that wires loaders, chunking, embeddings, store, retrieval and answering.

The app, the CLI and eval/ all use `Assistant`; none of them touch Chroma or the model directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.answering import ExtractiveAnswerer
from rag.chunking import chunk_document, heading
from rag.citations import strip_invalid_markers
from rag.config import Settings
from rag.conversation import figures_already_given, is_follow_up, standalone_query
from rag.embeddings import Embedder, with_heading
from rag.generation import AnswerStream, GenerativeAnswerer
from rag.lexical import TermStats
from rag.llm import backend_name, chat_model
from rag.loaders import LoadError, load_articles_jsonl, load_documents
from rag.retrieval import DenseRetriever, HybridRetriever, LearnedFusionRetriever, LexicalRetriever, Retriever
from rag.store import ChunkStore, StoredDocument, document_sources
from rag.stories import StoryIndex
from rag.stories import encode as encode_signature
from rag.stories import signature as story_signature
from rag.types import Answer, Chunk, Document, Passage, SearchFilter, Turn

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
    chunks_embedded: int = 0
    seconds: float = 0.0

    @property
    def embedded(self) -> int:
        """Documents whose chunks were embedded in this run (new or changed)."""
        return len(self.added) + len(self.updated)

    def summary(self) -> str:
        rate = f", {self.chunks_embedded / self.seconds:.1f} chunks/s" if self.chunks_embedded and self.seconds else ""
        return (
            f"{self.embedded} documents embedded ({len(self.added)} new, {len(self.updated)} changed; "
            f"{self.chunks_embedded} chunks{rate}), {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.failed)} failed"
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


def _embedding_groups(pending: Sequence[PendingDocument]) -> list[list[PendingDocument]]:
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


def build_retriever(settings: Settings, store: ChunkStore, embedder: Embedder) -> Retriever:
    """The retriever Settings ask for, over the given store."""
    dense = DenseRetriever(store, embedder, settings.top_k)
    lexical = LexicalRetriever(store, settings.top_k)
    if settings.retrieval == "dense":
        return dense
    if settings.retrieval == "lexical":
        return lexical
    if settings.fusion == "learned":
        return LearnedFusionRetriever(store, embedder, settings.top_k, settings.fusion_depth)
    return HybridRetriever(
        dense,
        lexical,
        settings.top_k,
        settings.fusion_depth,
        settings.fusion_dense_weight,
        settings.fusion_lexical_weight,
        settings.fusion_rrf_constant,
        settings.fusion_recency_weight,
    )


class Assistant:
    """Ingest documents and answer questions about them, with citations."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        store: ChunkStore | None = None,
        retriever: Retriever | None = None,
        answerer: ExtractiveAnswerer | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder(settings.embedding_model, settings.embedding_batch_size)
        self.store = store or ChunkStore(settings, self.embedder)
        self.retriever: Retriever = retriever or build_retriever(settings, self.store, self.embedder)
        self.answerer = answerer or ExtractiveAnswerer(
            self.embedder,
            settings.answer_min_score,
            settings.answer_max_sentences,
            idf=self.idf,
            scorer=settings.answer_scorer,
        )
        # None: answers are extractive. The model itself loads on the first question.
        self.generator: GenerativeAnswerer | None = (
            GenerativeAnswerer(chat_model(settings), self.answerer, backend_name(settings))
            if settings.llm != "extractive"
            else None
        )
        self._term_stats: tuple[int, TermStats] | None = None
        self._stories: tuple[int, StoryIndex] | None = None  # (store size it was read at, index)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Assistant:
        """Build with defaults from Settings (read from the environment when not given)."""
        return cls(settings or Settings())

    # ----- corpus -----------------------------------------------------------------------------

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
        self._term_stats = None
        return report

    def ingest_documents(self, documents: Sequence[Document], progress: IngestProgress | None = None) -> IngestReport:
        """Store already-built Documents (for datasets that are not files), skipping unchanged ones."""
        began = time.perf_counter()
        report = IngestReport()
        with self.store.writing():
            self._store_documents(documents, report, progress)
        report.seconds = time.perf_counter() - began
        self._term_stats = None
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
        pending: list[PendingDocument] = []
        for document in documents:
            stored = self.store.stored_origin(document.id)
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
            pending.append((document, chunks, stored is None))
        total = sum(len(chunks) for _, chunks, _ in pending)
        done = 0
        stories = self._story_index() if pending else None
        for group in _embedding_groups(pending):
            vectors = self.chunk_vectors([(document, chunks) for document, chunks, _ in group])
            for (document, chunks, is_new), document_vectors in zip(group, vectors):
                values = story_signature(document.text)
                story = stories.story_for(document.id, values) if stories else document.id
                self.store.put_document(document, chunks, document_vectors, story, encode_signature(values))
                (report.added if is_new else report.updated).append(document.id)
                report.chunks_embedded += len(chunks)
            done += sum(len(chunks) for _, chunks, _ in group)
            if progress:
                progress(done, total)
        self.store.settle()
        if stories is not None:
            self._stories = (self.store.count(), stories)  # it has seen every document just stored

    def _story_index(self, count: int | None = None) -> StoryIndex:
        """The stored documents' signatures, read once and then kept in step with this
        Assistant's own ingests; read again when the store's size (`count`, asked for when not
        given) changed otherwise (a removal, another process), so adding one document does not
        read every document's signature."""
        count = self.store.count() if count is None else count
        if self._stories is None or self._stories[0] != count:
            self._stories = (count, StoryIndex(self.store.story_signatures()))
        return self._stories[1]

    def chunk_vectors(self, documents: Sequence[tuple[Document, Sequence[Chunk]]]) -> list[list[list[float]]]:
        """Per document, the vectors of its chunks: each chunk's text embedded, with a share
        (Settings.heading_weight) of its document's title-and-date vector mixed in. One model
        call for all of them, which is much faster than one per document."""
        texts = [chunk.text for _, chunks in documents for chunk in chunks]
        headings = [heading(document.title, document.published) for document, _ in documents]
        embedded = self.embedder.embed(texts + headings)
        vectors: list[list[list[float]]] = []
        offset = 0
        for (_, chunks), heading_vector in zip(documents, embedded[len(texts) :]):
            own = embedded[offset : offset + len(chunks)]
            offset += len(chunks)
            vectors.append(with_heading(own, heading_vector, self.settings.heading_weight) if own else [])
        return vectors

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
                self.store.delete_document(stored.doc_id)
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

    def warm_up(self) -> None:
        """Load the models (embedding, fusion ranker and answer scorer), the corpus term statistics
        and the stories' signatures now, so the first question and the first upload are not slow."""
        self.embedder.load()
        if isinstance(self.retriever, LearnedFusionRetriever):
            _ = self.retriever.model
        _ = self.answerer.model
        self._refresh_term_stats()
        self._story_index()

    def idf(self, term: str) -> float:
        """IDF of a stemmed term over the stored chunks (as of the last question)."""
        if self._term_stats is None:
            self._refresh_term_stats()
        assert self._term_stats is not None
        return self._term_stats[1].idf(term)

    def _refresh_term_stats(self, count: int | None = None) -> None:
        """Rebuild term statistics when the store changed size (e.g. another process ingested);
        `count` is the store's size when the caller has just asked for it."""
        count = self.store.count() if count is None else count
        if self._term_stats is None or self._term_stats[0] != count:
            self._term_stats = (count, TermStats.from_texts(self.store.texts()))

    def documents(self) -> list[StoredDocument]:
        return self.store.documents()

    def sources(self) -> list[str]:
        """The distinct sources of the stored documents, sorted (what a source filter can name)."""
        return document_sources(self.store.documents())

    def check_filter(self, where: SearchFilter | None = None) -> None:
        """Raise ValueError naming what is wrong with a filter (default: the one in Settings)
        that could only ever match nothing: an unknown source or an empty date range."""
        where = self.settings.search_filter() if where is None else where
        if where.since and where.until and where.since > where.until:
            raise ValueError(f"the date range is empty: --since {where.since} is after --until {where.until}")
        known = self.sources()
        unknown = [source for source in where.sources if source not in known]
        if unknown:
            raise ValueError(
                f"no stored document has the source {', '.join(map(repr, unknown))}; "
                f"the sources are: {', '.join(map(repr, known)) or '(none recorded)'}"
            )

    def chunk_count(self) -> int:
        return self.store.count()

    def remove(self, doc_id: str) -> int:
        """Remove one document from the store; returns how many chunks it had (0: no such id)."""
        self._term_stats = None
        with self.store.writing():
            stories = self._story_index()
            removed = self.store.delete_document(doc_id)
            self.store.settle()
        stories.forget(doc_id)
        self._stories = (self.store.count(), stories)
        return removed

    # ----- questions --------------------------------------------------------------------------

    def ask(self, question: str, history: Sequence[Turn] = (), where: SearchFilter | None = None) -> Answer:
        """Retrieve passages for the question and answer from them, citing what was used.

        `history` holds the conversation's earlier turns, oldest first; a follow-up ("What
        about Zelensky?") is first rewritten into a standalone query, which the answer records
        as `query`, and figures the last answer gave are not offered again for an "and ...?"
        or "what about ...?" follow-up. `where` limits the search to some documents (default:
        the filter in Settings).
        """
        return self.stream(question, history, where).result()

    def stream(self, question: str, history: Sequence[Turn] = (), where: SearchFilter | None = None) -> AnswerStream:
        """As `ask`, but the answer's text can be read as it is generated; the search is done
        before this returns, the checked Answer is `result()` once the text has run out."""
        question = " ".join(question.split())
        if not question:
            raise ValueError("The question is empty: type a question about the documents.")
        began = time.perf_counter()
        size = self.store.count()
        self._refresh_term_stats(size)
        query = self.standalone_query(question, history)
        passages = self.passages(query, where, size)
        retrieved = time.perf_counter()
        avoid = figures_already_given(question, history)
        if self.generator is not None:
            stream = self.generator.stream(query, passages, avoid)
        else:
            stream = AnswerStream.of(self.answerer.answer(query, passages, avoid=avoid))

        def finished(answer: Answer) -> Answer:
            answered = time.perf_counter()
            timings = {
                "retrieve": (retrieved - began) * 1000,
                "answer": (answered - retrieved) * 1000,
                "total": (answered - began) * 1000,
            }
            text = strip_invalid_markers(answer.text, (c.n for c in answer.citations))
            return replace(answer, text=text, timings_ms=timings)

        return stream.then(finished)

    def passages(self, query: str, where: SearchFilter | None = None, size: int | None = None) -> list[Passage]:
        """The passages the answerer reads for a standalone query: the retrieved ones, each with
        its neighbouring sentences and its story's other documents. `size` is the store's size
        when the caller has just asked for it."""
        passages = self.retriever.retrieve(query, where=self.settings.search_filter() if where is None else where)
        passages = self.store.with_neighbours(passages)
        return self.store.with_story_copies(passages, self._story_index(size).has_copies)

    def standalone_query(self, question: str, history: Sequence[Turn]) -> str:
        """The question made to stand on its own: by the LLM when one is configured and the
        question leans on the conversation, otherwise (or when its reply is unusable) by the
        deterministic rewrite."""
        if self.generator is not None and history and is_follow_up(question):
            rewritten = self.generator.rewrite(question, history)
            if rewritten:
                return rewritten
        return standalone_query(question, history)
