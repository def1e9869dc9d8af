"""The one place that wires loaders, chunking, embeddings, store, retrieval and answering.

The app, the CLI and eval/ all use `Assistant`; none of them touch Chroma or the model directly.
One Assistant serves many threads at once (the chat's sessions): questions read the store under
its shared lock, changes take it exclusively one document at a time (rag/store.py), and the
model is called under its own lock (rag/embeddings.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rag.answering import ExtractiveAnswerer
from rag.citations import short_answer_date, strip_invalid_markers
from rag.config import Settings
from rag.conversation import figures_already_given, is_follow_up, standalone_query
from rag.embeddings import Embedder
from rag.errors import InputError
from rag.generation import AnswerStream, GenerativeAnswerer
from rag.ingest import Ingestor, IngestProgress, IngestReport, Stories
from rag.llm import backend_name, chat_model
from rag.passage_context import InContext
from rag.questions import checked_question
from rag.retrieval import DenseRetriever, HybridRetriever, LearnedFusionRetriever, LexicalRetriever, Retriever
from rag.store import ChunkStore
from rag.store_records import StoredDocument, document_sources
from rag.timeline import is_timeline_question, timeline_answer
from rag.types import Answer, Document, Passage, SearchFilter, Turn

if TYPE_CHECKING:
    from rag.feeds import FeedRefresher
    from rag.fetch import Fetcher

__all__ = ["Assistant", "IngestProgress", "IngestReport", "build_retriever"]


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


def as_of_notice(as_of: str, refused: bool) -> str:
    """Pure: what an answer asked as of a day says about it ('' when it was not)."""
    if not as_of:
        return ""
    if refused:
        return (
            f"As of {as_of}: no article published by then answers this; later and undated articles were not searched."
        )
    return f"As of {as_of}: only articles published by then were searched."


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
        self.embedder = embedder or Embedder.from_settings(settings)
        self.store = store or ChunkStore(settings, self.embedder)
        self.retriever: Retriever = retriever or build_retriever(settings, self.store, self.embedder)
        self.stories = Stories(self.store)
        self.ingestor = Ingestor(settings, self.store, self.embedder, self.stories)
        self._in_context = InContext(self.retriever, self.store, self.stories.has_copies)
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

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Assistant:
        """Build with defaults from Settings (read from the environment when not given)."""
        return cls(settings or Settings())

    # ----- corpus -----------------------------------------------------------------------------

    def ingest(
        self, paths: Sequence[Path] | None = None, *, rebuild: bool = False, progress: IngestProgress | None = None
    ) -> IngestReport:
        """Sync files and folders into the store (default: the corpus folder); see Ingestor.ingest."""
        return self.ingestor.ingest(paths, rebuild=rebuild, progress=progress)

    def ingest_documents(self, documents: Sequence[Document], progress: IngestProgress | None = None) -> IngestReport:
        """Store already-built Documents (for datasets that are not files), skipping unchanged ones."""
        return self.ingestor.ingest_documents(documents, progress)

    def ingest_urls(
        self, urls: Sequence[str], fetcher: Fetcher | None = None, progress: IngestProgress | None = None
    ) -> IngestReport:
        """Fetch each URL's article (rag.fetch, rag.web_articles) and store it keyed by its canonical
        URL, replacing the stored one when it changed. A URL that is refused, fails or holds no
        article is reported in `failed`, naming it; it never stops the others."""
        from rag.fetch import Fetcher
        from rag.web_articles import fetch_articles, merged

        own = fetcher is None
        fetcher = fetcher or Fetcher(self.settings)
        try:
            fetched = fetch_articles(fetcher, urls)
        finally:
            if own:
                fetcher.close()
        return merged(fetched, self.ingest_documents(fetched.documents, progress))

    def feed_refresher(self, fetcher: Fetcher | None = None) -> FeedRefresher:
        """Refreshes the followed feeds (Settings.feeds_file) into this store; see rag/feeds.py."""
        from rag.feeds import FeedList, FeedRefresher
        from rag.fetch import Fetcher

        return FeedRefresher(
            self, fetcher or Fetcher(self.settings), FeedList(self.settings.feeds_file), self.settings.feed_batch_size
        )

    def import_articles(self, path: Path, progress: IngestProgress | None = None) -> IngestReport:
        """Store the articles of a .jsonl file; see Ingestor.import_articles."""
        return self.ingestor.import_articles(path, progress)

    def check(self, paths: Sequence[Path] | None = None) -> list[str]:
        """What is off between the files (default: the corpus folder) and the store, one line each."""
        return self.ingestor.check(paths)

    def remove(self, doc_id: str) -> int:
        """Remove one document from the store; returns how many chunks it had (0: no such id)."""
        return self.ingestor.remove(doc_id)

    def warm_up(self, step: Callable[[str], None] | None = None) -> None:
        """Load the models (embedding, fusion ranker and answer scorer), the BM25 index and the
        stories' signatures now, so the first question and the first upload are not slow.
        `step` is told what is loading next."""
        say = step or (lambda _: None)
        say("Loading the embedding model")
        self.embedder.load()
        say("Loading the ranker and the answer scorer")
        if isinstance(self.retriever, LearnedFusionRetriever):
            _ = self.retriever.model
        _ = self.answerer.model
        say("Loading the BM25 index and the stories")
        self.store.refresh()
        self.stories.warm_up()
        self.idf("")

    def idf(self, term: str) -> float:
        """IDF of a stemmed term over the stored chunks' text (LexicalIndex.text_idf).

        Not the BM25 index's own IDF, which counts each chunk's title and date too: the answer
        scorers were tuned and trained on text-only statistics, and on the seed set the BM25
        index's cost 3.5 points of answer_contains (.825 -> .789). The BM25 index keeps both
        counts row by row: reading every stored text for them took most of a new process's
        first answer on a large store.
        """
        return self.store.lexical.text_idf(term)

    def documents(self) -> list[StoredDocument]:
        return self.store.documents()

    def sources(self) -> list[str]:
        """The distinct sources of the stored documents, sorted (what a source filter can name)."""
        return document_sources(self.store.documents())

    def check_filter(self, where: SearchFilter | None = None) -> None:
        """Raise InputError naming what is wrong with a filter (default: the one in Settings)
        that could only ever match nothing: an unknown source or an empty date range."""
        where = self.settings.search_filter() if where is None else where
        if where.since and where.last_day and where.since > where.last_day:
            bound = f"--as-of {where.as_of}" if where.last_day == where.as_of else f"--until {where.until}"
            raise InputError(f"the date range is empty: --since {where.since} is after {bound}")
        known = self.sources()
        unknown = [source for source in where.sources if source not in known]
        if unknown:
            raise InputError(
                f"no stored document has the source {', '.join(map(repr, unknown))}; "
                f"the sources are: {', '.join(map(repr, known)) or '(none recorded)'}"
            )

    def chunk_count(self) -> int:
        return self.store.count()

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
        before this returns, the checked Answer is `result()` once the text has run out.
        Raises InputError for an empty question or one over Settings.question_max_chars."""
        question = checked_question(question, self.settings.question_max_chars)
        where = self.settings.search_filter() if where is None else where
        began = time.perf_counter()
        with self.store.reading():
            query = self.standalone_query(question, history)
            passages = self.passages(query, where)
            retrieved = time.perf_counter()
            avoid = figures_already_given(question, history)
            # A timeline is quoted figures in date order, each cited: it is given as it is even
            # when an LLM is configured, which could only paraphrase it and lose the chart's data.
            timeline = timeline_answer(self.answerer, query, passages) if is_timeline_question(query) else None
            if timeline is not None:
                stream = AnswerStream.of(timeline)
            elif self.generator is not None:
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
            notice = " ".join(part for part in (as_of_notice(where.as_of, answer.refused), answer.notice) if part)
            return replace(
                answer,
                text=text,
                timings_ms=timings,
                as_of=where.as_of,
                notice=notice,
                short_answer_date=short_answer_date(answer.short_answer, answer.citations),
            )

        return stream.then(finished)

    def passages(self, query: str, where: SearchFilter | None = None) -> list[Passage]:
        """The passages the answerer reads for a standalone query: the retrieved ones, each with
        its neighbouring sentences and its story's other documents."""
        return self._in_context.retrieve(query, where=self.settings.search_filter() if where is None else where)

    def standalone_query(self, question: str, history: Sequence[Turn]) -> str:
        """The question made to stand on its own: by the LLM when one is configured and the
        question leans on the conversation, otherwise (or when its reply is unusable) by the
        deterministic rewrite."""
        if self.generator is not None and history and is_follow_up(question):
            rewritten = self.generator.rewrite(question, history)
            if rewritten:
                return rewritten
        return standalone_query(question, history)
