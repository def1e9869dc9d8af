"""Query -> ranked Passages: dense (the store's vectors), lexical (its BM25 index), and both
combined, by a learned ranker (the default) or by reciprocal rank with a prior for newer
articles; copies of one story folded into one result."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from rag.dedup import collapse_copies
from rag.embeddings import Embedder
from rag.fusion_features import Candidate, TextRow, candidates, features, query_terms, text_features
from rag.store import ChunkStore
from rag.types import Passage, SearchFilter

if TYPE_CHECKING:
    from rag.fusion_model import FusionModel


@functools.cache
def _side_searches() -> ThreadPoolExecutor:
    """Threads for the dense side of hybrid searches, shared by every retriever of the process
    (questions of several sessions at once wait for the model one at a time anyway)."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="citeline-dense")


class Retriever(Protocol):
    """Anything that ranks passages for a query; the pipeline and eval take any of them.
    `where` limits the search to some documents (applied inside it, so k still come back)."""

    def retrieve(self, query: str, k: int | None = None, where: SearchFilter | None = None) -> list[Passage]: ...


class DenseRetriever:
    """Top-k chunks by cosine similarity between the query and chunk embeddings."""

    def __init__(self, store: ChunkStore, embedder: Embedder, k: int) -> None:
        self.store = store
        self.embedder = embedder
        self.k = k

    def retrieve(self, query: str, k: int | None = None, where: SearchFilter | None = None) -> list[Passage]:
        if not query.strip():
            return []
        return self.store.search(self.embedder.embed_query(query), k or self.k, where)


class LexicalRetriever:
    """Top-k chunks by Okapi BM25 over the store's lexical index (stemmed terms of each chunk,
    its title and date). A query of unknown words gets no passages rather than arbitrary ones."""

    def __init__(self, store: ChunkStore, k: int) -> None:
        self.store = store
        self.k = k

    def retrieve(self, query: str, k: int | None = None, where: SearchFilter | None = None) -> list[Passage]:
        return self.store.lexical_search(query, k or self.k, where)


Ranking = Sequence[tuple[int, Passage]]  # (rank from 1, passage), best first; tied passages share a rank


def ranked(passages: Sequence[Passage]) -> list[tuple[int, Passage]]:
    """Pure: a retriever's list as a Ranking, each passage ranked by its position."""
    return list(enumerate(passages, start=1))


def newest_first(passages: Sequence[Passage]) -> list[tuple[int, Passage]]:
    """Pure: the dated passages ranked by publication date, newest first, one rank per date (a
    passage's rank is how many distinct dates are as new or newer, so a long article's many
    chunks do not push older ones down); undated passages are left out, so they gain nothing."""
    unique = {p.chunk.id: p for p in passages if p.chunk.published}
    dates = sorted({p.chunk.published for p in unique.values()}, reverse=True)  # ISO dates sort as text
    rank = {published: position for position, published in enumerate(dates, start=1)}
    return sorted(((rank[p.chunk.published], p) for p in unique.values()), key=lambda ranked_passage: ranked_passage[0])


def reciprocal_rank_fusion(rankings: Sequence[Ranking], weights: Sequence[float], constant: int) -> list[Passage]:
    """Pure: passages ranked by the sum over rankings of weight / (constant + rank).

    Ranks, not scores, are fused, so cosine similarities and BM25 scores need no common scale.
    Ties keep the order of first appearance (earlier rankings first).
    """
    fused: dict[str, float] = {}
    first: dict[str, Passage] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, passage in ranking:
            key = passage.chunk.id
            fused[key] = fused.get(key, 0.0) + weight / (constant + rank)
            first.setdefault(key, passage)
    order = sorted(fused, key=lambda key: -fused[key])  # sorted() is stable: ties keep first appearance
    return [Passage(chunk=first[key].chunk, score=fused[key]) for key in order]


class HybridRetriever:
    """Dense and lexical candidates fused by reciprocal rank, then copies folded together.

    Each side is searched `depth` deep (at least k), so a chunk ranked well by one side only
    still makes the cut, and folding copies still leaves k distinct passages. A third ranking,
    the same candidates newest first, leans the fusion towards recent reporting: news is
    updated, and a question asked without a date is most often about the latest events.
    """

    def __init__(
        self,
        dense: Retriever,
        lexical: Retriever,
        k: int,
        depth: int,
        dense_weight: float = 1.0,
        lexical_weight: float = 1.0,
        constant: int = 60,
        recency_weight: float = 0.0,
    ) -> None:
        self.dense = dense
        self.lexical = lexical
        self.k = k
        self.depth = depth
        self.weights = (dense_weight, lexical_weight, recency_weight)
        self.constant = constant

    def retrieve(self, query: str, k: int | None = None, where: SearchFilter | None = None) -> list[Passage]:
        k = k or self.k
        depth = max(self.depth, 2 * k)
        dense = self.dense.retrieve(query, depth, where)
        lexical = self.lexical.retrieve(query, depth, where)
        rankings = [ranked(dense), ranked(lexical), newest_first([*dense, *lexical])]
        return collapse_copies(reciprocal_rank_fusion(rankings, self.weights, self.constant), limit=k)


class LearnedFusionRetriever:
    """Dense and BM25 candidates ordered by a ranker learned on realtimeqa-2024 (rag/fusion_model.py),
    then copies folded together.

    Each side is searched `depth` deep (at least 2k); the candidates found by one side only get
    the other side's score too (their stored vectors, their BM25 score from the same pass), so
    the ranker sees both. Its features (rag/fusion_features.py) let it learn when to trust which
    side, where fixed weights suit one year's questions and not another's.
    """

    def __init__(self, store: ChunkStore, embedder: Embedder, k: int, depth: int) -> None:
        self.store = store
        self.embedder = embedder
        self.k = k
        self.depth = depth

    @property
    def model(self) -> FusionModel:
        from rag.fusion_model import load

        return load(self.embedder.model_name)

    def candidates(self, query: str, depth: int, where: SearchFilter | None = None) -> list[Candidate]:
        """Both sides' top `depth` passages, each scored by both."""
        return self._search(query, depth, where)[0]

    def _search(self, query: str, depth: int, where: SearchFilter | None) -> tuple[list[Candidate], dict[str, TextRow]]:
        """The candidates, and the text columns of their features (fusion_features.text_features).

        The question is embedded and the dense search run in a second thread while this one
        brings the store in step, searches BM25, reads those passages, works out their text
        columns and reads their stored vectors (to score them by similarity once the question's
        vector is known): the model and Chroma release the GIL, so the two sides cost about
        the slower one rather than their sum."""
        if not query.strip():
            return [], {}
        sides = _side_searches()
        embedding = sides.submit(self.embedder.embed_query, query)
        self.store.refresh()  # before searching: bringing the store in step may reopen it
        # Waits for the embedding, which was queued first: the pool takes tasks in order, so it
        # is running or done by then.
        dense_side = sides.submit(lambda: self.store.nearest(embedding.result(), depth, where))
        lexical, bm25_score_of = self.store.lexical_ranking(query, depth, where, refresh=False)
        stored = self.store.chunks([chunk_id for chunk_id, _ in lexical])
        question = query_terms(query, self.store.lexical.idf)
        text_rows = {chunk_id: text_features(question, chunk) for chunk_id, chunk in stored.items()}
        lexical_vectors = self.store.vectors_of(list(stored))
        dense, known = dense_side.result()
        bm25_of = bm25_score_of(chunk_id for chunk_id, _ in dense)
        dense_ids = {chunk_id for chunk_id, _ in dense}
        stored.update(known)
        stored.update(self.store.chunks([chunk_id for chunk_id, _ in dense if chunk_id not in stored]))
        similarity_of = lexical_vectors.similarities(embedding.result(), only=stored.keys() - dense_ids)

        def passages(found: Sequence[tuple[str, float]]) -> list[Passage]:
            return [Passage(chunk=stored[i], score=score) for i, score in found if i in stored]

        found = candidates(passages(dense), passages(lexical), similarity_of, bm25_of)
        for candidate in found:
            chunk = candidate.passage.chunk
            if chunk.id not in text_rows:
                text_rows[chunk.id] = text_features(question, chunk)
        return found, text_rows

    def retrieve(self, query: str, k: int | None = None, where: SearchFilter | None = None) -> list[Passage]:
        k = k or self.k
        found, text_rows = self._search(query, max(self.depth, 2 * k), where)
        if not found:
            return []
        scores = self.model.scores(features(query, found, self.store.lexical.idf, text_rows))
        order = sorted(range(len(found)), key=lambda i: -scores[i])  # stable: ties keep candidate order
        return collapse_copies([replace(found[i].passage, score=float(scores[i])) for i in order], limit=k)
