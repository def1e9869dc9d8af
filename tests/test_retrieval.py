"""Hybrid retrieval over a real store: the learned fusion and reciprocal rank fusion, copies
folded together, the BM25 index kept in step with Chroma, and filters applied inside the search."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from rag.config import Settings
from rag.dedup import collapse_copies
from rag.embeddings import with_heading
from rag.errors import InputError
from rag.passage_context import with_neighbours
from rag.pipeline import Assistant
from rag.retrieval import (
    DenseRetriever,
    LearnedFusionRetriever,
    LexicalRetriever,
    newest_first,
    ranked,
    reciprocal_rank_fusion,
)
from rag.store import FILTER_OVERFETCH
from rag.types import Chunk, Document, Passage, SearchFilter

STORY = (
    "North Korea has sent about 1,500 special forces soldiers to Russia for training, South Korea's "
    "spy agency said on Friday. The soldiers were flown from Chongjin to Vladivostok aboard Russian "
    "navy transport ships, the agency said in a briefing to lawmakers."
)


def _passage(doc_id: str, text: str, index: int = 0, score: float = 1.0) -> Passage:
    return Passage(Chunk(f"{doc_id}:{index}", doc_id, index, text, 0, len(text), title=doc_id), score)


# ----- pure parts -----------------------------------------------------------------------------


def test_reciprocal_rank_fusion_adds_weighted_inverse_ranks() -> None:
    a, b, c = (_passage(name, name) for name in "abc")
    fused = reciprocal_rank_fusion([ranked([a, b]), ranked([c, a])], weights=[1.0, 0.5], constant=60)
    assert [p.chunk.doc_id for p in fused] == ["a", "b", "c"]
    assert fused[0].score == pytest.approx(1 / 61 + 0.5 / 62)
    assert fused[1].score == pytest.approx(1 / 62) and fused[2].score == pytest.approx(0.5 / 61)


def test_reciprocal_rank_fusion_ties_keep_first_appearance() -> None:
    a, b = _passage("a", "a"), _passage("b", "b")
    fused = reciprocal_rank_fusion([ranked([a, b]), ranked([b, a])], [1.0, 1.0], 60)
    assert [p.chunk.doc_id for p in fused] == ["a", "b"]


def _dated(doc_id: str, published: str) -> Passage:
    chunk = Chunk(f"{doc_id}:0", doc_id, 0, doc_id, 0, len(doc_id), title=doc_id, published=published)
    return Passage(chunk, 1.0)


def test_newest_first_gives_one_rank_per_date_and_leaves_out_undated_passages() -> None:
    old, new, same_day, newer, undated = (
        _dated("old", "2023-01-02"),
        _dated("new", "2023-03-01"),
        _dated("same-day", "2023-01-02"),
        _dated("newer", "2023-03-02"),
        _dated("undated", ""),
    )
    other_new_chunk = Passage(replace(new.chunk, id="new:1", index=1), 1.0)  # a second chunk of that article
    ranking = newest_first([old, undated, new, other_new_chunk, same_day, newer, old])  # old twice: both sides
    assert [(rank, p.chunk.id) for rank, p in ranking] == [
        (1, "newer:0"),
        (2, "new:0"),
        (2, "new:1"),
        (3, "old:0"),  # the third date: the newer article's two chunks do not push it to 4
        (3, "same-day:0"),
    ]


def test_the_recency_ranking_breaks_a_near_tie_towards_the_newer_report_but_not_a_clear_lead() -> None:
    old, new = _dated("old", "2023-01-02"), _dated("new", "2023-03-01")
    split = [ranked([old, new]), ranked([new, old])]  # dense prefers one, BM25 the other
    assert [p.chunk.doc_id for p in reciprocal_rank_fusion(split, [1.0, 1.0], 60)] == ["old", "new"]
    with_recency = [*split, newest_first([old, new])]
    assert [p.chunk.doc_id for p in reciprocal_rank_fusion(with_recency, [1.0, 1.0, 1.5], 60)] == ["new", "old"]
    lead = [ranked([old, new]), ranked([old, new]), newest_first([old, new])]  # both sides prefer the old one
    assert [p.chunk.doc_id for p in reciprocal_rank_fusion(lead, [1.0, 2.0, 1.5], 60)] == ["old", "new"]


def test_copies_of_a_story_take_one_slot_and_list_every_source() -> None:
    shifted = "Seoul, Oct 18 (wire). " + STORY  # another outlet's copy, starting differently
    other = "The weather in Seoul was mild on Friday, and markets were calm after the holiday."
    passages = [_passage("outlet-a", STORY), _passage("outlet-b", other), _passage("outlet-c", shifted)]
    collapsed = collapse_copies(passages)
    assert [p.chunk.doc_id for p in collapsed] == ["outlet-a", "outlet-b"]
    assert [c.doc_id for c in collapsed[0].copies] == ["outlet-c"]


def test_a_shared_quote_or_the_same_documents_next_chunk_is_not_a_copy() -> None:
    quoting = (
        "Analysts in Washington doubted the figure on Saturday and asked for satellite images. "
        + STORY.split(". ")[0]
        + ". Others said it was far too low for a real deployment, and that the training camps near "
        "Ussuriysk could hold several times as many soldiers before the winter."
    )
    same_doc_next = _passage("outlet-a", STORY, index=1)
    collapsed = collapse_copies([_passage("outlet-a", STORY), _passage("outlet-d", quoting), same_doc_next])
    assert len(collapsed) == 3 and all(not p.copies for p in collapsed)


def test_with_heading_mixes_a_share_of_the_heading_and_renormalises() -> None:
    [mixed] = with_heading([[1.0, 0.0]], [0.0, 1.0], 0.1)
    assert mixed == pytest.approx([1 / math.hypot(1, 0.1), 0.1 / math.hypot(1, 0.1)])
    assert with_heading([[0.6, 0.8]], [1.0, 0.0], 0.0) == [pytest.approx([0.6, 0.8])]


# ----- over a real store ------------------------------------------------------------------------


def _document(doc_id: str, text: str, source: str, published: str) -> Document:
    return Document(
        id=doc_id,
        text=text,
        title=doc_id.replace("-", " "),
        source=source,
        published=published,
        content_hash=f"{doc_id}-{hash(text)}",
    )


NEWS = [
    _document("wire-nk-troops", STORY, "Wire", "2024-10-18"),
    _document("paper-nk-troops", "Seoul, Oct 18. " + STORY, "Paper", "2024-10-19"),
    _document(
        "paper-kursk",
        "Ukrainian forces said North Korean troops had reached the Kursk region. Officials in Kyiv said "
        "the soldiers would be in combat within days.",
        "Paper",
        "2024-11-04",
    ),
    _document("wire-markets", "Seoul's stock market rose on Friday as chip makers gained.", "Wire", "2024-11-05"),
]


@pytest.fixture
def news(tmp_path: Path) -> Assistant:
    assistant = Assistant.from_settings(Settings(corpus_dir=tmp_path / "corpus", store_dir=tmp_path / "store"))
    assistant.ingest_documents(NEWS)
    return assistant


def test_the_learned_fusion_is_the_default_and_folds_the_wire_copy_into_one_cited_result(news: Assistant) -> None:
    assert isinstance(news.retriever, LearnedFusionRetriever)
    answer = news.ask("How many soldiers did North Korea send to Russia for training?")
    top = [p.chunk.doc_id for p in answer.passages]
    assert len(set(top) & {"wire-nk-troops", "paper-nk-troops"}) == 1  # one slot for the story
    assert "1,500" in answer.short_answer
    cited = answer.citations[0]
    assert {cited.doc_id, *(c.doc_id for c in cited.copies)} == {"wire-nk-troops", "paper-nk-troops"}
    assert answer.to_json()["citations"][0]["copies"][0]["doc_id"] in {"wire-nk-troops", "paper-nk-troops"}


def test_the_bm25_index_is_saved_beside_chroma_and_reopened_without_rebuilding(news: Assistant, tmp_path: Path) -> None:
    before = LexicalRetriever(news.store, 3).retrieve("Vladivostok navy ships")
    assert before and before[0].chunk.doc_id in {"wire-nk-troops", "paper-nk-troops"}
    saved = list((tmp_path / "store").glob("lexical-citeline/base-*"))
    assert len(saved) == 1  # compacted once, at the end of the ingest
    reopened = Assistant.from_settings(news.settings)
    assert reopened.store.lexical.base_size == news.store.count() and reopened.store.lexical.pending == 0
    after = LexicalRetriever(reopened.store, 3).retrieve("Vladivostok navy ships")
    assert [(p.chunk.id, round(p.score, 5)) for p in after] == [(p.chunk.id, round(p.score, 5)) for p in before]


def test_the_bm25_index_follows_incremental_ingest_and_removal_without_a_rebuild(news: Assistant) -> None:
    lexical = news.store.lexical
    base = lexical.base_size
    news.ingest_documents(
        [_document("wire-zaporizhzhia", "Inspectors visited the Zaporizhzhia plant.", "Wire", "2024-11-06")]
    )
    assert lexical.base_size == base and lexical.pending == 1  # indexed on its own, not rebuilt
    hits = LexicalRetriever(news.store, 3).retrieve("Zaporizhzhia inspectors")
    assert [p.chunk.doc_id for p in hits] == ["wire-zaporizhzhia"]
    news.remove("wire-zaporizhzhia")
    assert LexicalRetriever(news.store, 3).retrieve("Zaporizhzhia inspectors") == []
    assert len(lexical) == news.store.count()


def test_a_change_made_by_another_process_reaches_the_bm25_index(news: Assistant) -> None:
    LexicalRetriever(news.store, 3).retrieve("troops")  # this process has its index loaded
    other = Assistant.from_settings(news.settings)
    other.ingest_documents([_document("wire-grain", "Grain exports through Odesa resumed.", "Wire", "2024-11-07")])
    hits = LexicalRetriever(news.store, 3).retrieve("Odesa grain exports")
    assert [p.chunk.doc_id for p in hits] == ["wire-grain"]


def test_a_store_without_a_bm25_index_gets_one_built_from_its_chunks(news: Assistant, tmp_path: Path) -> None:
    import shutil

    shutil.rmtree(tmp_path / "store" / "lexical-citeline")  # e.g. a store made before the index existed
    reopened = Assistant.from_settings(news.settings)
    hits = LexicalRetriever(reopened.store, 3).retrieve("chip makers stock market")
    assert hits and hits[0].chunk.doc_id == "wire-markets"


def test_rebuild_empties_the_bm25_index_too(news: Assistant, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "only.md").write_text("---\ntitle: Only\n---\nA lone article about lighthouses.\n", encoding="utf-8")
    report = news.ingest([corpus], rebuild=True)
    assert not report.failed
    assert len(news.store.lexical) == news.store.count()
    assert LexicalRetriever(news.store, 5).retrieve("North Korea troops") == []


def test_the_recency_weight_in_settings_reaches_the_real_search(news: Assistant) -> None:
    def search(weight: float) -> list[Passage]:
        settings = news.settings.model_copy(update={"fusion": "rrf", "fusion_recency_weight": weight})
        return Assistant(settings, embedder=news.embedder, store=news.store).retriever.retrieve(
            "How many soldiers did North Korea send to Russia for training?", 3
        )

    relevant_first = search(0.0)[0].chunk
    assert relevant_first.doc_id in {"wire-nk-troops", "paper-nk-troops"}
    assert search(50.0)[0].chunk.published > relevant_first.published  # a November article leads


@pytest.mark.parametrize(
    "mode",
    [
        {"retrieval": "hybrid"},
        {"retrieval": "hybrid", "fusion": "rrf"},
        {"retrieval": "dense"},
        {"retrieval": "lexical"},
    ],
)
def test_filters_apply_inside_the_search_and_still_return_k(news: Assistant, mode: dict[str, str]) -> None:
    assistant = Assistant(news.settings.model_copy(update=mode), embedder=news.embedder, store=news.store)
    paper_only = assistant.retriever.retrieve("North Korean troops", 2, SearchFilter(sources=("Paper",)))
    assert len(paper_only) == 2 and {p.chunk.source for p in paper_only} == {"Paper"}
    november = assistant.retriever.retrieve(
        "Seoul troops market", 2, SearchFilter(since="2024-11-01", until="2024-11-30")
    )
    assert len(november) == 2 and all(p.chunk.published.startswith("2024-11") for p in november)


@pytest.mark.parametrize(
    "mode",
    [
        {"retrieval": "hybrid"},
        {"retrieval": "hybrid", "fusion": "rrf"},
        {"retrieval": "dense"},
        {"retrieval": "lexical"},
    ],
)
def test_as_of_hides_later_and_undated_articles_on_both_sides(news: Assistant, mode: dict[str, str]) -> None:
    news.ingest_documents([_document("undated-kursk", "North Korean troops in Kursk, an undated note.", "Wire", "")])
    assistant = Assistant(news.settings.model_copy(update=mode), embedder=news.embedder, store=news.store)
    everything = {p.chunk.doc_id for p in assistant.retriever.retrieve("North Korean troops Kursk", 10)}
    assert {"paper-kursk", "undated-kursk"} <= everything
    as_of = assistant.retriever.retrieve("North Korean troops Kursk", 10, SearchFilter(as_of="2024-10-31"))
    assert as_of and all("" < p.chunk.published <= "2024-10-31" for p in as_of)
    tighter = SearchFilter(until="2024-11-30", as_of="2024-10-18")  # the earlier bound wins
    assert {p.chunk.published for p in assistant.retriever.retrieve("North Korean troops", 10, tighter)} == {
        "2024-10-18"
    }


def test_a_filter_too_narrow_for_the_overfetched_results_is_left_to_chromas_filtered_search(news: Assistant) -> None:
    news.ingest_documents(
        [
            _document(
                f"paper-training-{i}", f"North Korean soldiers train in Russia, report number {i} says.", "Paper", ""
            )
            for i in range(4)
        ]
    )
    vector = news.embedder.embed_query("North Korean troops sent to Russia for training")
    markets_only = SearchFilter(sources=("Wire",), since="2024-11-05")  # the markets story alone
    unfiltered = news.store.search(vector, 1 * FILTER_OVERFETCH)
    assert len(unfiltered) == FILTER_OVERFETCH and "wire-markets" not in {p.chunk.doc_id for p in unfiltered}
    [found] = news.store.search(vector, 1, markets_only)  # so the store asks Chroma to filter
    assert found.chunk.doc_id == "wire-markets"
    # When enough of the over-fetched results pass, they are the filtered search's answer.
    paper = SearchFilter(sources=("Paper",))
    assert [p.chunk.id for p in news.store.search(vector, 2, paper)] == [
        p.chunk.id
        for p in news.store._nearest(vector, 2, paper)  # noqa: SLF001 - Chroma's own filter
    ]


def test_nearest_gives_the_searchs_ids_and_reads_records_only_to_filter(news: Assistant) -> None:
    vector = news.embedder.embed_query("North Korean troops sent to Russia for training")
    searched = news.store.search(vector, 6)
    ids, read = news.store.nearest(vector, 6)
    assert [i for i, _ in ids] == [p.chunk.id for p in searched] and read == {}
    assert [score for _, score in ids] == pytest.approx([p.score for p in searched])
    assert news.store.chunks([i for i, _ in ids]) == {p.chunk.id: p.chunk for p in searched}
    paper = SearchFilter(sources=("Paper",))
    filtered, read = news.store.nearest(vector, 2, paper)
    assert [i for i, _ in filtered] == [p.chunk.id for p in news.store.search(vector, 2, paper)]
    assert set(read) == {i for i, _ in filtered} and {c.source for c in read.values()} == {"Paper"}
    assert news.store.chunks(["no-such-chunk"]) == {}


def test_an_exact_search_finds_what_chromas_search_finds_on_a_small_store(news: Assistant) -> None:
    """The trainers' exact search (ChunkStore.search_exactly) agrees with Chroma's where HNSW is
    exact, filtered or not, and reads the same chunks."""
    vector = news.embedder.embed_query("North Korean troops sent to Russia for training")
    paper = SearchFilter(sources=("Paper",))
    chroma_ids, _ = news.store.nearest(vector, 6)
    chroma_passages = news.store.search(vector, 3, paper)
    news.store.search_exactly()
    exact_ids, read = news.store.nearest(vector, 6)
    assert [i for i, _ in exact_ids] == [i for i, _ in chroma_ids] and read == {}
    assert [score for _, score in exact_ids] == pytest.approx([score for _, score in chroma_ids], abs=1e-5)
    exact_passages = news.store._nearest(vector, 3, paper)  # noqa: SLF001 - the filtered path itself
    assert [p.chunk for p in exact_passages] == [p.chunk for p in chroma_passages]
    assert [p.score for p in exact_passages] == pytest.approx([p.score for p in chroma_passages], abs=1e-5)


def test_chunks_kept_in_memory_never_outlive_a_change_here_or_in_another_process(news: Assistant) -> None:
    vector = news.embedder.embed_query("North Korean troops sent to Russia for training")
    ids = [i for i, _ in news.store.nearest(vector, 8)[0]]
    first = news.store.chunks(ids)
    assert news.store.chunks(ids) == first and len(first) == len(ids)
    gone = first[ids[0]].doc_id
    news.remove(gone)  # this process's change
    assert gone not in {c.doc_id for c in news.store.chunks(ids).values()}
    other_process = Assistant(news.settings, embedder=news.embedder)
    also_gone = next(c.doc_id for c in news.store.chunks(ids).values())
    other_process.remove(also_gone)
    news.store.refresh()  # as every question does first
    assert also_gone not in {c.doc_id for c in news.store.chunks(ids).values()}


def test_an_answer_as_of_a_day_says_so_and_when_that_leaves_nothing_says_why(news: Assistant) -> None:
    answer = news.ask("Had North Korean troops reached the Kursk region?", where=SearchFilter(as_of="2024-11-10"))
    assert answer.as_of == "2024-11-10" and answer.notice.startswith("As of 2024-11-10: only articles published")
    assert answer.to_json()["as_of"] == "2024-11-10"
    nothing = news.ask("Had North Korean troops reached the Kursk region?", where=SearchFilter(as_of="2024-01-01"))
    assert nothing.refused and not nothing.passages
    assert "As of 2024-01-01: no article published by then answers this" in nothing.notice
    with pytest.raises(InputError, match="--since 2024-11-01 is after --as-of 2024-10-01"):
        news.check_filter(SearchFilter(since="2024-11-01", as_of="2024-10-01"))


def test_the_learned_fusion_ranks_the_answering_passage_first_with_the_shipped_model(news: Assistant) -> None:
    news.ingest_documents(
        [
            _document(
                "paper-nk-casualties",
                "Ukraine said North Korean soldiers in Kursk had suffered heavy casualties. Troops from "
                "Pyongyang were fighting alongside Russian units, officials in Kyiv said.",
                "Paper",
                "2024-12-20",
            )
        ]
    )
    fused = news.retriever.retrieve("How many special forces soldiers did North Korea send to Russia for training?", 3)
    assert fused[0].chunk.doc_id in {"wire-nk-troops", "paper-nk-troops"} and "1,500" in fused[0].chunk.text
    assert [p.score for p in fused] == sorted((p.score for p in fused), reverse=True)


def test_each_side_scores_what_only_the_other_found_as_it_would_itself(news: Assistant) -> None:
    query = "Seoul stock market chip makers"
    vector = news.embedder.embed_query(query)
    dense = {p.chunk.id: p.score for p in DenseRetriever(news.store, news.embedder, 10).retrieve(query)}
    assert news.store.similarities(vector, list(dense)) == pytest.approx(dense, abs=1e-4)
    read_first = news.store.vectors_of([*dense, "no-such-chunk"])  # read before the vector is known
    some = list(dense)[:2]
    assert read_first.similarities(vector, only=some) == pytest.approx({i: dense[i] for i in some}, abs=1e-4)
    lexical = {p.chunk.id: p.score for p in LexicalRetriever(news.store, 10).retrieve(query)}
    unmatched = next(i for i in dense if i not in lexical)  # found by meaning, shares no term
    found, scored = news.store.lexical_scoring(query, 10, also=[*lexical, unmatched])
    assert [chunk_id for chunk_id, _ in found] == list(lexical)
    assert scored == pytest.approx({**lexical, unmatched: 0.0})
    retriever = LearnedFusionRetriever(news.store, news.embedder, 3, 10)
    candidates = retriever.candidates(query, 10)
    assert {c.passage.chunk.id for c in candidates} == set(dense) | set(lexical)
    assert all(c.dense_score is not None and c.lexical_score is not None for c in candidates)


def test_the_settings_filter_is_the_default_and_a_given_one_overrides_it(news: Assistant) -> None:
    settings = news.settings.model_copy(update={"filter_sources": ("Wire",)})
    assistant = Assistant(settings, embedder=news.embedder, store=news.store)
    assert {p.chunk.source for p in assistant.ask("Where did the troops go?").passages} == {"Wire"}
    overridden = assistant.ask("Where did the troops go?", where=SearchFilter(sources=("Paper",)))
    assert {p.chunk.source for p in overridden.passages} == {"Paper"}


def test_passages_get_the_documents_neighbouring_sentences_as_context(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=tmp_path / "corpus", store_dir=tmp_path / "store", chunk_max_chars=100)
    assistant = Assistant.from_settings(settings)
    sentences = [f"Sentence number {word} is about the harbour." for word in ("one", "two", "three", "four", "five")]
    assistant.ingest_documents([_document("harbour", " ".join(sentences), "Wire", "2024-11-01")])
    chunks = sorted(
        (p.chunk for p in LexicalRetriever(assistant.store, 10).retrieve("harbour sentence")), key=lambda c: c.index
    )
    assert len(chunks) >= 3
    middle, first = Passage(chunks[1], 1.0), Passage(chunks[0], 1.0)
    foreign = Passage(Chunk("other@12", "other", 0, "No neighbours here.", 0, 19), 1.0)
    with_context = with_neighbours(assistant.store, [middle, first, foreign])
    assert with_context[0].before == chunks[0].text.split(". ")[-1] and with_context[0].after.startswith(
        "Sentence number"
    )
    assert with_context[0].after in chunks[2].text
    assert with_context[1].before == "" and with_context[1].after == with_context[0].chunk.text.split(". ")[0] + "."
    assert with_context[2] == foreign  # ids of another shape (the LangChain recipe's) have no neighbours
