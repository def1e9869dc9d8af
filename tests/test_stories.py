"""Duplicate stories: the same story republished with small edits is found at ingest, grouped in
the corpus list, and counted as one source in answers that list where each copy appeared."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from rag.config import PROJECT_ROOT, Settings
from rag.loaders import make_document
from rag.pipeline import Assistant
from rag.store_records import StoredDocument, copies_by_story
from rag.stories import STORY_SIMILARITY, StoryIndex, decode, encode, signature
from rag.types import SearchFilter

STORY = (
    "North Korea has sent about 1,500 special forces soldiers to Russia for training and "
    "acclimatisation, South Korea's National Intelligence Service said on Friday. The soldiers "
    "were flown from Chongjin, Hamhung and Musudan to Vladivostok aboard Russian navy transport "
    "ships between October 8 and October 13, the agency said in a briefing to lawmakers. They "
    "were issued Russian military uniforms and identity documents, and are expected to be "
    "deployed to the front once their training ends. The agency said more troops could follow, "
    "bringing the total to as many as 12,000. Seoul summoned the Russian ambassador and called "
    "for the immediate withdrawal of the troops. The Kremlin dismissed the report as fake news, "
    "and Pyongyang did not comment."
)
# Another outlet's edition: a new first line, one figure updated, a sentence dropped.
REPUBLISHED = "SEOUL (Wire) — " + STORY.replace("as many as 12,000", "as many as 10,000").replace(
    " Seoul summoned the Russian ambassador and called for the immediate withdrawal of the troops.", ""
)
OTHER = (
    "Seoul's stock market rose on Friday as chip makers gained after strong export figures. The "
    "benchmark index closed 1.2% higher, its best day in a month, while the won strengthened "
    "against the dollar. Analysts said foreign investors had returned to technology shares after "
    "weeks of selling, and that the central bank's next rate decision would set the tone."
)


def _similarity(a: str, b: str) -> float:
    return float(np.mean(signature(a) == signature(b)))


# ----- pure parts -----------------------------------------------------------------------------


def test_a_republished_copy_is_similar_enough_and_another_story_is_not() -> None:
    assert _similarity(STORY, REPUBLISHED) >= STORY_SIMILARITY
    assert _similarity(STORY, OTHER) < 0.1
    assert np.array_equal(signature(STORY), signature(STORY))  # the same in every process: fixed seed


def test_a_signature_is_datasketchs_own_for_the_recipe_so_stored_ones_still_compare() -> None:
    from datasketch import MinHash

    from rag.dedup import shingles
    from rag.stories import PERMUTATIONS, SCHEME, SEED

    drawn_afresh = MinHash(num_perm=PERMUTATIONS, seed=SEED, scheme=SCHEME)  # permutations drawn for it alone
    drawn_afresh.update_batch([" ".join(gram).encode() for gram in shingles(STORY)])
    assert np.array_equal(signature(STORY), drawn_afresh.hashvalues)
    assert not np.array_equal(signature(STORY), signature(OTHER))


def test_a_signature_survives_the_store_and_anything_else_reads_as_none() -> None:
    values = signature(STORY)
    assert np.array_equal(decode(encode(values)), values)
    assert decode("") is None and decode("not hex") is None and decode("00ff") is None


def test_the_story_index_joins_copies_and_keeps_other_stories_apart() -> None:
    index = StoryIndex()
    assert index.story_for("original", signature(STORY)) == "original"
    assert index.story_for("other", signature(OTHER)) == "other"
    assert index.story_for("copy", signature(REPUBLISHED)) == "original"
    # A document rewritten into another story does not match its own earlier version.
    assert index.story_for("original", signature(OTHER + " A new paragraph.")) == "other"


def test_copies_by_story_lists_the_other_members_only() -> None:
    def stored(doc_id: str, story: str) -> StoredDocument:
        return StoredDocument(doc_id, doc_id, "", "", "", "", "", 1, story)

    groups = copies_by_story([stored("a", "a"), stored("b", "a"), stored("c", "c"), stored("d", "")])
    assert [d.doc_id for d in groups["a"]] == ["b"] and [d.doc_id for d in groups["b"]] == ["a"]
    assert groups["c"] == [] and groups["d"] == []


# ----- a real store ---------------------------------------------------------------------------


WIRE = make_document(
    doc_id="wire",
    text=REPUBLISHED,
    title="N. Korean troops in Russia, Seoul says",
    source="Wire",
    published="2024-10-19",
)


@pytest.fixture(params=["embedded", "server"])
def corpus(request: pytest.FixtureRequest, tmp_path: Path) -> Assistant:
    """A store (once per store mode) holding a story, an unrelated article, and a later copy."""
    settings = Settings(corpus_dir=tmp_path / "corpus", store_dir=tmp_path / "store")
    if request.param == "server":
        url = request.getfixturevalue("chroma_server")
        settings = settings.model_copy(update={"chroma_url": url, "collection": f"t{uuid.uuid4().hex}"})
    Assistant.from_settings(settings).ingest_documents(
        [
            make_document(
                doc_id="agency",
                text=STORY,
                title="North Korea sends troops to Russia",
                source="Agency",
                published="2024-10-18",
            ),
            make_document(
                doc_id="markets", text=OTHER, title="Seoul stocks rise", source="Wire", published="2024-10-18"
            ),
        ]
    )
    # The copy arrives later, in another process's ingest: the stored signatures find it.
    later = Assistant.from_settings(settings)
    later.ingest_documents([WIRE])
    return later


def test_a_republished_story_is_grouped_at_ingest_and_the_list_shows_it(corpus: Assistant) -> None:
    stories = {d.doc_id: d.story for d in corpus.documents()}
    assert stories == {"agency": "agency", "markets": "markets", "wire": "agency"}
    listed = subprocess.run(
        [sys.executable, "-m", "rag", "list"],
        cwd=PROJECT_ROOT,
        env=_environment(corpus.settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = {line.split("\t")[0]: line for line in listed.stdout.splitlines()}
    assert rows["wire"].endswith("same story: agency") and rows["agency"].endswith("same story: wire")
    assert rows["markets"].endswith("same story: -")
    assert "3 documents (2 stories)" in listed.stderr


def test_an_answer_counts_the_copies_as_one_source_and_lists_where_each_appeared(corpus: Assistant) -> None:
    answer = corpus.ask("How many special forces soldiers did North Korea send to Russia?")
    assert "1,500" in answer.text
    cited_docs = {c.doc_id for c in answer.citations}
    assert len(cited_docs & {"agency", "wire"}) == 1  # one source for the story
    citation = next(c for c in answer.citations if c.doc_id in {"agency", "wire"})
    assert {citation.doc_id, *(copy.doc_id for copy in citation.copies)} == {"agency", "wire"}
    assert {copy.source for copy in citation.copies} <= {"Agency", "Wire"}
    # Searching the agency's documents only, the copy's passage is never retrieved; the
    # citation still lists where else the story appeared.
    agency_only = corpus.ask(
        "How many special forces soldiers did North Korea send to Russia?", where=SearchFilter(sources=("Agency",))
    )
    first = agency_only.citations[0]
    assert (first.doc_id, [o.doc_id for o in first.copies]) == ("agency", ["wire"])


def test_a_new_process_answers_with_the_copies_before_reading_any_signature(corpus: Assistant) -> None:
    fresh = Assistant(corpus.settings, embedder=corpus.embedder)
    answer = fresh.ask("How many special forces soldiers did North Korea send to Russia?")
    citation = next(c for c in answer.citations if c.doc_id in {"agency", "wire"})
    assert {citation.doc_id, *(copy.doc_id for copy in citation.copies)} == {"agency", "wire"}
    assert not fresh.stories.loaded  # the story was looked up, not every signature read
    fresh.warm_up()
    assert fresh.stories.loaded and fresh.stories.has_copies("agency") and not fresh.stories.has_copies("markets")


def test_a_story_stays_grouped_when_unchanged_and_a_rewrite_leaves_the_group(corpus: Assistant) -> None:
    again = corpus.ingest_documents([WIRE])
    assert again.unchanged == ["wire"]
    rewritten = "Officials in Kyiv said North Korean troops had reached the Kursk region and would fight soon."
    corpus.ingest_documents([make_document(doc_id="wire", text=rewritten, title="Kursk", source="Wire")])
    assert {d.doc_id: d.story for d in corpus.documents()}["wire"] == "wire"


def _environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "CITELINE_STORE_DIR": str(settings.store_dir),
        "CITELINE_CORPUS_DIR": str(settings.corpus_dir),
        "CITELINE_CHROMA_URL": settings.chroma_url,
        "CITELINE_COLLECTION": settings.collection,
    }


def test_signatures_read_once_are_read_again_after_another_process_wrote(corpus: Assistant) -> None:
    weather = (
        "A winter storm brought heavy snow to the Korean peninsula on Sunday, closing schools and "
        "cancelling more than two hundred flights at Incheon airport. Forecasters said up to thirty "
        "centimetres could fall in mountain areas by Monday morning, and the government urged drivers "
        "to stay off the roads. Power was cut to several thousand homes east of Seoul overnight."
    )
    other_process = Assistant(corpus.settings, embedder=corpus.embedder)  # its own store handle
    other_process.ingest_documents([make_document(doc_id="storm", text=weather, title="Storm", source="Paper")])
    # `corpus` read the signatures before that write; its next ingest must see the new story.
    corpus.ingest_documents(
        [make_document(doc_id="storm-copy", text="SEOUL (Wire) — " + weather, title="Snow in Korea", source="Wire")]
    )
    assert {d.doc_id: d.story for d in corpus.documents()}["storm-copy"] == "storm"


def test_a_removed_document_no_longer_gathers_copies() -> None:
    index = StoryIndex()
    index.story_for("original", signature(STORY))
    index.forget("original")
    assert index.story_for("copy", signature(REPUBLISHED)) == "copy"
