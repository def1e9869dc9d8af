from __future__ import annotations

import pytest

from rag.chunking import chunk_document, chunk_spans, sentence_spans
from rag.loaders import make_document


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two.", ["One.", "Two."]),
        ("Air Force Maj. Gen. Pat Ryder spoke. He left.", ["Air Force Maj. Gen. Pat Ryder spoke.", "He left."]),
        ("Lloyd J. Austin III said so. Then more.", ["Lloyd J. Austin III said so.", "Then more."]),
        (
            "The U.S. will not deplete its reserve. Singh said.",
            ["The U.S. will not deplete its reserve.", "Singh said."],
        ),
        ("It grew 3.5 percent. Why? Nobody knows!", ["It grew 3.5 percent.", "Why?", "Nobody knows!"]),
        ("“It is over.” The end.", ["“It is over.”", "The end."]),
        ("Title Line Here\nBody starts here. Next one.", ["Title Line Here", "Body starts here.", "Next one."]),
        ("# heading\nbody text.", ["# heading", "body text."]),
        ("- item one\n- item two", ["- item one", "- item two"]),
        (
            "a road budget of 4.2 million\ndollars, the mayor said.",
            ["a road budget of 4.2 million\ndollars, the mayor said."],
        ),
        ("The\ninspector general said so.", ["The\ninspector general said so."]),
        ("World\nThe Secret Weapon", ["World", "The Secret Weapon"]),
        ("approved by the\nCity Council on Monday.", ["approved by the\nCity Council on Monday."]),
        ("First para.\n\nSecond para.", ["First para.", "Second para."]),
        ("no capital after. lower case continues", ["no capital after. lower case continues"]),
        ("   ", []),
    ],
)
def test_sentence_spans(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_spans_point_into_the_text() -> None:
    text = "  Alpha beta.  Gamma delta!\n\nEpsilon?  "
    for start, end in sentence_spans(text):
        assert text[start:end] == text[start:end].strip()
        assert text[start:end]


def test_chunks_respect_size_and_overlap() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    spans = chunk_spans(text, max_chars=120, overlap_sentences=1)
    assert len(spans) > 5
    assert all(end - start <= 120 for start, end in spans)
    for (_, prev_end), (next_start, _) in zip(spans, spans[1:]):
        assert next_start < prev_end, "consecutive chunks share one sentence"
    assert spans[0][0] == 0 and spans[-1][1] == len(text)


def test_chunks_without_overlap_tile_the_text() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(20))
    spans = chunk_spans(text, max_chars=100, overlap_sentences=0)
    for (_, prev_end), (next_start, _) in zip(spans, spans[1:]):
        assert text[prev_end:next_start].strip() == ""


def test_overlong_sentence_is_cut_at_words() -> None:
    text = "word " * 100 + "end."
    spans = chunk_spans(text.strip(), max_chars=50, overlap_sentences=1)
    assert all(e - s <= 50 for s, e in spans)
    assert all(not text[s:e].startswith(" ") for s, e in spans)


def test_chunk_document_records_offsets_and_metadata() -> None:
    doc = make_document(
        doc_id="doc",
        text="First sentence here. Second one follows. Third ends it.",
        title="T",
        source="S",
        published="2024-10-30",
    )
    chunks = chunk_document(doc, max_chars=45, overlap_sentences=1)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert (chunk.doc_id, chunk.title, chunk.source, chunk.published) == ("doc", "T", "S", "2024-10-30")
    again = chunk_document(doc, max_chars=45, overlap_sentences=1)
    assert [c.id for c in chunks] == [c.id for c in again], "ids are deterministic"
    changed = chunk_document(
        make_document(doc_id="doc", text=doc.text + " More.", title="T"), max_chars=45, overlap_sentences=1
    )
    assert chunks[0].id != changed[0].id, "changed content gives new ids"


def test_no_chunk_lies_inside_the_previous_one() -> None:
    text = "A" * 90 + ". " + "B" * 398 + ". " + "C" * 448 + "."
    spans = chunk_spans(text, max_chars=500, overlap_sentences=1)
    for (prev_start, prev_end), (start, end) in zip(spans, spans[1:]):
        assert end > prev_end and start > prev_start
