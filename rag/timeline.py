"""How a figure changed: for "How has the estimate of X changed?", the figures the passages give
for X in date order, each with its source, date and citation, the newest marked as the latest.

The figures are found as for a "how many" question about X (the answerer's own scoring and
short-answer reading); the timeline only adds the order, the dates and the shape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer_types import figures_in
from rag.answering import ExtractiveAnswerer, ScoredSentence, attribution, quoted
from rag.citations import outlet_of
from rag.dates import relative_dates
from rag.types import Answer, Citation, Passage, TimelinePoint

# Words that ask how something moved over time, not what it is now.
_CHANGE = re.compile(
    r"\b(?:chang(?:e|ed|es|ing)|evolv(?:e|ed|ing)|over time|timeline|trend|developed|grown|grew|risen|rose)\b",
    re.IGNORECASE,
)
# What is asked about, once the "how has ... changed" frame is taken away.
_FRAME = re.compile(
    r"^\s*(?:how\s+(?:has|have|did|do|does)\s+)?(?:the\s+)?(?:(?:estimates?|numbers?|figures?|counts?|"
    r"reports?|accounts?)\s+(?:of|for)\s+)?",
    re.IGNORECASE,
)
_TAIL = re.compile(r"\s*\b(?:chang\w*|evolv\w*|develop\w*|gr[eo]wn?|ris\w*|rose)\b.*$", re.IGNORECASE)
TIMELINE_SUPPORT = 0.6  # a figure joins the timeline when its sentence is this well supported
MAX_POINTS = 8
LATEST = "latest"
TIMELINE_HEADING = "How the figure changed, oldest first:"


def is_timeline_question(question: str) -> bool:
    """Pure: whether the question asks how something changed over time."""
    return bool(_CHANGE.search(question))


def count_question(question: str) -> str:
    """Pure: "How has the estimate of North Korean troops in Russia changed?" -> "How many North
    Korean troops in Russia?": the figure the timeline follows, asked as a count."""
    subject = _TAIL.sub("", _FRAME.sub("", question.rstrip("?"))).strip()
    return f"How many {subject}?" if subject else question


_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_COUNTED = re.compile(r"^\s+(?:more\s+|[A-Z][a-z]+\s+[A-Z][a-z]+\s+)?([a-z]+)")


def unit_of(figure: str, sentence: str) -> str:
    """Pure: what the figure counts: its own last word when it has one ("troops" in "10,000
    troops"), else the word after it in the sentence ("troops" in "10,000 North Korean troops")."""
    own = re.search(r"\d\s+([a-z]+)$", figure)
    if own and own.group(1) not in _SCALES:
        return own.group(1)
    at = sentence.find(figure)
    following = _COUNTED.match(sentence[at + len(figure) :]) if at >= 0 else None
    return following.group(1) if following else ""


def figure_value(figure: str) -> float | None:
    """Pure: "about 11,000" -> 11000.0, "1.2 million" -> 1200000.0; None when it holds no number."""
    digits = re.search(r"\d[\d,]*(?:\.\d+)?", figure)
    if not digits:
        return None
    scale = re.match(r"\s*([a-z]+)", figure[digits.end() :])
    return float(digits.group(0).replace(",", "")) * _SCALES.get(scale.group(1) if scale else "", 1.0)


@dataclass(frozen=True)
class _Found:
    sentence: ScoredSentence
    figure: str
    value: float
    published: str


def timeline_answer(answerer: ExtractiveAnswerer, question: str, passages: Sequence[Passage]) -> Answer | None:
    """The answer to a question about change: its figures in date order, or None when the
    passages give fewer than two dated figures (the ordinary answer is then given)."""
    asked = count_question(question)
    scored = answerer.score_sentences(asked, passages)
    if not scored or scored[0].score < answerer.min_score:
        return None
    found: list[_Found] = []
    seen: set[tuple[frozenset[str], str]] = set()
    for sentence in scored:
        if sentence.score < answerer.FIGURE_SUPPORT * scored[0].score or len(found) >= MAX_POINTS:
            break
        published = passages[sentence.passage_rank].chunk.published
        figure = answerer.short_answer_for(asked, sentence.text)
        value = figure_value(figure)
        key = (figures_in([figure]), published)
        if not sentence.has_type or not published or value is None or key in seen:
            continue
        seen.add(key)
        found.append(_Found(sentence, figure, value, published))
    if len({point.value for point in found}) < 2:
        return None
    found.sort(key=lambda point: (point.published, point.sentence.start))
    citations = [answerer.cite(n, point.sentence, passages) for n, point in enumerate(found, start=1)]
    points = tuple(
        TimelinePoint(
            date=point.published,
            value=point.value,
            figure=point.figure,
            unit=unit_of(point.figure, point.sentence.text),
            source=outlet_of(citation.source, citation.url) or citation.title,
            n=citation.n,
            refers_to=next((day for _, day in relative_dates(point.sentence.text, point.published)), ""),
        )
        for point, citation in zip(found, citations)
    )
    return Answer(
        text=_timeline_text(found, citations, points),
        refused=False,
        citations=tuple(citations),
        passages=tuple(passages),
        query=question,
        short_answer=found[-1].figure,
        confidence=scored[0].score,
        timeline=points,
    )


def _timeline_text(found: Sequence[_Found], citations: Sequence[Citation], points: Sequence[TimelinePoint]) -> str:
    lines = [TIMELINE_HEADING]
    for i, (point, citation, dated) in enumerate(zip(found, citations, points)):
        latest = f" ({LATEST})" if i == len(found) - 1 else ""
        said = f" (said of {dated.refers_to})" if dated.refers_to and dated.refers_to != dated.date else ""
        lines.append(
            f"- {point.figure}, {attribution(citation)}{latest}{said}: {quoted(point.sentence.text)} [{citation.n}]"
        )
    return "\n".join(lines)
