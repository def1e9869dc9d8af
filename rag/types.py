"""Small frozen value types that flow through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One article: its plain text and what is known about where it came from."""

    id: str
    text: str
    title: str
    source: str = ""
    url: str = ""
    published: str = ""  # ISO date (YYYY-MM-DD) when known
    path: str = ""  # the file it was loaded from, if any
    content_hash: str = ""  # sha256 of text and metadata; decides whether re-ingest is needed
    published_as_written: str = ""  # the file's own `published` value when it was not YYYY-MM-DD
    date_warning: str = ""  # why `published` is empty though the file gave a value (names the file)
    # where the text came from when it was fetched: "web page", or "feed entry (...)" when the page
    # could not be fetched and the feed's own text was stored instead ('' for files and imports)
    origin: str = ""


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences of one document, with its character span in the document text."""

    id: str
    doc_id: str
    index: int
    text: str
    start: int
    end: int
    title: str = ""
    published: str = ""
    source: str = ""
    url: str = ""
    story: str = ""  # the id of the story this document copies (its own id when it copies none)
    # The terms of each sentence of `text` (rag.lexical.sentence_terms) as the store keeps them;
    # None when not read with the chunk. Derived from the text, so it takes no part in equality.
    sentence_terms: tuple[tuple[str, ...], ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SearchFilter:
    """Which documents a search may return: from any of `sources` (every source when empty),
    published on or after `since` and on or before `until` (ISO dates, empty for no bound).
    `as_of` asks as a reader on that day would: nothing published after it is visible (a bound
    like `until`, which the answer states). A document without a date fails any date bound."""

    sources: tuple[str, ...] = ()
    since: str = ""
    until: str = ""
    as_of: str = ""

    def __bool__(self) -> bool:
        return bool(self.sources or self.since or self.until or self.as_of)

    @property
    def last_day(self) -> str:
        """The latest publication date visible: the earlier of `until` and `as_of` ('' for none)."""
        return min(day for day in (self.until, self.as_of, "9999-12-31") if day) if self.until or self.as_of else ""

    def shows_published(self, published: str) -> bool:
        """Whether an article published that day (ISO, '' when undated) is within the latest day
        the filter shows: always when it sets none, never for an undated one when it does."""
        return not self.last_day or "" < published[:10] <= self.last_day


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with the retriever's score for it (higher is better; for dense
    retrieval the cosine similarity, at most 1). `copies` are chunks of other documents that
    say the same (another outlet's copy of the story), folded into this one result."""

    chunk: Chunk
    score: float
    copies: tuple[Chunk, ...] = ()
    before: str = ""  # the document's sentence just before the passage (context for the answerer)
    after: str = ""  # and just after it


@dataclass(frozen=True)
class SourceRef:
    """Where else a cited passage appears: another document carrying the same text, or a copy
    of the same story (republished by another outlet, or updated)."""

    doc_id: str
    title: str
    published: str
    source: str
    url: str

    @classmethod
    def of(cls, chunk: Chunk) -> SourceRef:
        return cls(chunk.doc_id, chunk.title, chunk.published, chunk.source, chunk.url)


@dataclass(frozen=True)
class Citation:
    """A numbered source behind an answer, down to the supporting sentence.

    `start`/`end` locate the supporting sentence in the document text; `passage_start` is
    where the passage begins in the document, so the sentence sits at
    `passage[start - passage_start : end - passage_start]`.
    """

    n: int
    doc_id: str
    title: str
    published: str
    source: str
    url: str
    passage: str
    passage_start: int
    start: int
    end: int
    score: float
    copies: tuple[SourceRef, ...] = ()  # other documents carrying the same passage or story

    @classmethod
    def of(cls, n: int, passage: Passage, start: int, end: int, score: float) -> Citation:
        """Citation [n] of the passage, pointing at the sentence at [start, end) of its document."""
        chunk = passage.chunk
        return cls(
            n=n,
            doc_id=chunk.doc_id,
            title=chunk.title,
            published=chunk.published,
            source=chunk.source,
            url=chunk.url,
            passage=chunk.text,
            passage_start=chunk.start,
            start=start,
            end=end,
            score=score,
            copies=tuple(SourceRef.of(copy) for copy in passage.copies),
        )

    @property
    def sentence(self) -> str:
        offset = self.start - self.passage_start
        return self.passage[offset : offset + (self.end - self.start)]


@dataclass(frozen=True)
class Claim:
    """One sentence of a generated answer, the sources it cites, and whether they bear it out
    (its figures and quotations occur in them, and most of its words do)."""

    text: str  # without its [n] markers
    sources: tuple[int, ...]
    verified: bool
    problem: str = ""  # why it is not verified

    @property
    def marked(self) -> str:
        """The sentence with its markers, as the answer text carries it."""
        markers = "".join(f"[{n}]" for n in self.sources)
        return f"{self.text} {markers}" if markers else self.text


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str


@dataclass(frozen=True)
class TimelinePoint:
    """One dated figure of a timeline: what a source said on a day, and its citation [n]."""

    date: str
    value: float
    figure: str  # as written ("about 11,000")
    unit: str  # the word after it ("troops"), '' when none
    source: str
    n: int
    refers_to: str = ""  # the day a relative date in its sentence points at ("last week"), if any


@dataclass(frozen=True)
class Answer:
    """What the assistant says, the sources it cites, and what it looked at."""

    text: str
    refused: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    query: str = ""
    short_answer: str = ""  # the number, date or name that answers the question, when one stands out
    # What a relative short answer ("last month") meant on its cited article's day ("October 2024").
    short_answer_date: str = ""
    confidence: float = 0.0  # support score of the best sentence; refusals fall below the threshold
    timings_ms: dict[str, float] = field(default_factory=dict)
    backend: str = "extractive"  # what wrote the answer (rag.llm.backend_name)
    claims: tuple[Claim, ...] = ()  # a generated answer's sentences as checked against the sources
    notice: str = ""  # said to the user about how the answer came about (e.g. a fallback)
    # How many of `passages`, in rank order, the LLM's prompt held (the rest did not fit its
    # context; the model's answer cites none of them); None when no LLM is configured.
    passages_sent: int | None = None
    as_of: str = ""  # the day the question was asked as of: nothing published later was searched
    timeline: tuple[TimelinePoint, ...] = ()  # for a question about change: its figures, oldest first

    @property
    def short_answer_shown(self) -> str:
        """The short answer as shown: a relative date with what it meant ("last month (October 2024)")."""
        if self.short_answer and self.short_answer_date:
            return f"{self.short_answer} ({self.short_answer_date})"
        return self.short_answer

    @property
    def passages_read(self) -> tuple[Passage, ...]:
        """The passages the answer was written from: those the LLM's prompt held, or all."""
        return self.passages if self.passages_sent is None else self.passages[: self.passages_sent]

    @property
    def unverified(self) -> tuple[Claim, ...]:
        return tuple(claim for claim in self.claims if not claim.verified)

    def to_json(self) -> dict[str, object]:
        """The `ask --json` shape: answer, refused, and one object per citation."""
        return {
            "answer": self.text,
            "short_answer": self.short_answer,
            "short_answer_date": self.short_answer_date,
            "refused": self.refused,
            "confidence": round(self.confidence, 4),
            "backend": self.backend,
            "notice": self.notice,
            "as_of": self.as_of,
            "query": self.query,
            "timeline": [
                {
                    "date": p.date,
                    "value": p.value,
                    "figure": p.figure,
                    "unit": p.unit,
                    "source": p.source,
                    "n": p.n,
                    "refers_to": p.refers_to,
                }
                for p in self.timeline
            ],
            "passages_retrieved": len(self.passages),
            "passages_sent": self.passages_sent,
            "claims": [
                {"text": c.text, "sources": list(c.sources), "verified": c.verified, "problem": c.problem}
                for c in self.claims
            ],
            "unverified": [c.text for c in self.unverified],
            "citations": [
                {
                    "n": c.n,
                    "doc_id": c.doc_id,
                    "title": c.title,
                    "published": c.published,
                    "source": c.source,
                    "url": c.url,
                    "passage": c.passage,
                    "passage_start": c.passage_start,
                    "start": c.start,
                    "end": c.end,
                    "sentence": c.sentence,
                    "score": round(c.score, 4),
                    "copies": [
                        {
                            "doc_id": o.doc_id,
                            "title": o.title,
                            "published": o.published,
                            "source": o.source,
                            "url": o.url,
                        }
                        for o in c.copies
                    ],
                }
                for c in self.citations
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Answer:
        """The answer as `to_json` gave it, for showing again (a saved conversation): its text,
        citations, timeline and claims; the passages behind it are not kept."""
        return cls(
            text=data["answer"],
            refused=data["refused"],
            citations=tuple(
                Citation(
                    **{k: v for k, v in c.items() if k not in ("sentence", "copies")},
                    copies=tuple(SourceRef(**copy) for copy in c.get("copies", ())),
                )
                for c in data.get("citations", ())
            ),
            query=data.get("query", ""),
            short_answer=data.get("short_answer", ""),
            short_answer_date=data.get("short_answer_date", ""),
            confidence=data.get("confidence", 0.0),
            backend=data.get("backend", "extractive"),
            claims=tuple(
                Claim(c["text"], tuple(c["sources"]), c["verified"], c.get("problem", ""))
                for c in data.get("claims", ())
            ),
            notice=data.get("notice", ""),
            passages_sent=data.get("passages_sent"),
            as_of=data.get("as_of", ""),
            timeline=tuple(TimelinePoint(**point) for point in data.get("timeline", ())),
        )
