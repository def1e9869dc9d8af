"""End-to-end answers over the shipped corpus with the real model and store."""

from __future__ import annotations

import pytest

from rag.answering import DIFFERING_FIGURES, REFUSAL, ExtractiveAnswerer, expected_type, typed_spans
from rag.pipeline import Assistant

NIS_SENTENCE = "South Korea’s National Intelligence Service (NIS) announced that North Korea had sent 1,500 soldiers"


def test_nis_question_is_answered_with_1500_and_cites_the_nis_sentence(assistant: Assistant) -> None:
    answer = assistant.ask("How many troops did NIS report?")
    assert not answer.refused
    assert "1,500" in answer.text and "1,500" in answer.short_answer
    assert "[1]" in answer.text
    first = answer.citations[0]
    assert first.n == 1 and first.doc_id == "north-korean-soldiers-russia"
    assert NIS_SENTENCE in first.passage and first.sentence.startswith(NIS_SENTENCE)
    assert first.title.startswith("The Secret Weapon of Russia") and first.published == "2024-10-24"


def test_the_nis_question_also_gives_the_later_3000_figure_each_with_source_and_date(assistant: Assistant) -> None:
    answer = assistant.ask("How many troops did NIS report?")
    lines = answer.text.splitlines()
    assert lines[0] == DIFFERING_FIGURES
    # The capture records no outlet and no URL: the article's title says who, never a placeholder.
    assert lines[1].startswith("- 1,500 soldiers, The Secret Weapon of Russia") and "2024-10-24" in lines[1]
    assert lines[1].endswith("[1]") and lines[2].startswith("- 3,000 soldiers") and lines[2].endswith("[2]")
    first, second = answer.citations
    assert "1,500" in first.sentence and "3,000" in second.sentence
    assert "national intelligence agency" in second.sentence  # the NIS, spelled out in other words
    assert answer.short_answer == "1,500 soldiers"


def test_figures_are_set_side_by_side_only_when_they_answer_the_same_question(assistant: Assistant) -> None:
    # Austin's 10,000 is the answer; South Korea's 3,000 is a close match on words but not Austin's figure.
    answer = assistant.ask("How many North Korean troops did Austin say had been sent to Russia?")
    assert DIFFERING_FIGURES not in answer.text and "10,000" in answer.short_answer
    single = assistant.ask("What is the maximum range of ATACMS?")  # not a "how many" question
    assert DIFFERING_FIGURES not in single.text


def test_citation_span_points_at_the_sentence_in_the_document(assistant: Assistant, corpus_dir) -> None:
    from rag.loaders import load_file

    answer = assistant.ask("What is the maximum range of ATACMS?")
    citation = answer.citations[0]
    document = load_file(corpus_dir / f"{citation.doc_id}.md")
    assert document.text[citation.start : citation.end] == citation.sentence
    assert "190 miles" in citation.sentence


@pytest.mark.parametrize(
    "question", ["Who won the 2018 FIFA World Cup?", "What is the speed of light in a vacuum?", "Best pancake recipe?"]
)
def test_questions_the_corpus_cannot_answer_are_refused(assistant: Assistant, question: str) -> None:
    answer = assistant.ask(question)
    assert answer.refused and answer.text == REFUSAL and answer.citations == ()
    assert answer.passages, "the passages looked at are still returned for inspection"


def test_every_marker_resolves_to_a_citation(assistant: Assistant) -> None:
    from rag.citations import cited_numbers

    for question in (
        "Where are the North Korean troops?",
        "Who is the Kremlin spokesman?",
        "When was the pact signed?",
    ):
        answer = assistant.ask(question)
        assert set(cited_numbers(answer.text)) == {c.n for c in answer.citations}


def test_empty_question_is_a_clear_error(assistant: Assistant) -> None:
    with pytest.raises(ValueError, match="empty"):
        assistant.ask("   ")


@pytest.mark.parametrize(
    ("question", "kind"),
    [("How many troops?", "number"), ("When did it start?", "date"), ("Who said it?", "name"), ("Why?", None)],
)
def test_expected_type(question: str, kind: str | None) -> None:
    assert expected_type(question) == kind


@pytest.mark.parametrize(
    ("kind", "sentence", "found"),
    [
        ("number", "NIS said 1,500 soldiers went.", ["1,500 soldiers"]),
        ("date", "They signed a pact in June.", ["in June"]),
        ("name", "It is likely, said Deputy Press Secretary Sabrina Singh.", ["Deputy Press Secretary Sabrina Singh"]),
        ("name", "Troops are in Russia’s Kursk Oblast.", []),
        ("name", "“We will see,” Ryder told reporters.", ["Ryder"]),
    ],
)
def test_typed_spans(kind: str, sentence: str, found: list[str]) -> None:
    assert [sentence[s:e] for s, e in typed_spans(kind, sentence, "Who is in Kursk?")] == found


@pytest.mark.parametrize(
    ("question", "sentence", "short"),
    [
        ("How many bridges were closed?", "Officials said 12 were closed last week.", "12"),
        ("How much did the council spend?", "The council spent $45 million on roads.", "$45 million"),
        ("How many people died?", "In 2023, 40 people died in floods.", "40 people"),
        (
            "How many troops did NIS report?",
            "NIS said 1,500 soldiers, including special forces, went.",
            "1,500 soldiers",
        ),
        ("How many troops are there?", "Officials estimate 11,000 to 12,000 North Korean troops.", "11,000 to 12,000"),
        ("What percentage voted yes?", "About 52% voted yes.", "About 52%"),
        ("In what year was it built?", "It was built in 1889 by Eiffel.", ""),
        (
            "Who said Putin will not prevail?",
            "“Putin will not prevail, even with help from North Korea,” the secretary said.",
            "",
        ),
        ("Who said Putin will not prevail?", "“Putin will not prevail,” Austin said.", "Austin"),
        (
            "Who is the official who said so?",
            "Air Force Maj. Gen. Pat Ryder also said so.",
            "Air Force Maj. Gen. Pat Ryder",
        ),
        ("Who said so?", "Air Force Maj. Gen. Pat Ryder also said so.", "Air Force Maj. Gen. Pat Ryder"),
        ("Who is the spokesman?", "Kremlin spokesman Dmitry Peskov dismissed the claims.", "Dmitry Peskov"),
    ],
)
def test_short_answer(question: str, sentence: str, short: str) -> None:
    assert ExtractiveAnswerer._short_answer(question, sentence) == short


def test_no_passages_means_a_refusal_even_with_the_threshold_at_zero() -> None:
    from rag.embeddings import Embedder

    answerer = ExtractiveAnswerer(Embedder(), min_score=0.0, max_sentences=2)
    answer = answerer.answer("Who is he?", [])
    assert answer.refused and answer.text == REFUSAL and answer.citations == ()


def test_a_what_about_follow_up_finds_the_other_figure(assistant: Assistant) -> None:
    from rag.types import Turn

    first = assistant.ask("How many troops did NIS report?")
    history = [Turn("How many troops did NIS report?", first.text)]
    answer = assistant.ask("What about the later South Korean intelligence briefing?", history)
    assert answer.query == "How many troops did NIS report? the later South Korean intelligence briefing"
    # 1,500 was given already: the other figure is wanted, though the NIS sentence matches the frame best
    assert "3,000" in answer.short_answer and "3,000" in answer.text and "1,500" not in answer.short_answer


def test_sentences_seen_before_are_not_embedded_again(assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    embedded: list[str] = []
    real_embed = assistant.embedder.embed_for_question

    def counting_embed(texts):  # type: ignore[no-untyped-def]
        embedded.extend(texts)
        return real_embed(texts)

    monkeypatch.setattr(assistant.embedder, "embed_for_question", counting_embed)
    first = assistant.ask("How many troops did NIS report?")
    sentences_first = len(embedded)
    embedded.clear()
    again = assistant.ask("How many troops did NIS report?")
    assert sentences_first > 5
    assert embedded == []  # the passages' sentences and the query vector are both remembered
    assert again.text == first.text and again.confidence == pytest.approx(first.confidence)
