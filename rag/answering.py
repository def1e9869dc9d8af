"""Passages -> Answer. The default answerer is extractive and offline: it quotes the retrieved
sentences that best answer the question, cites them, and declines when none is good enough."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.chunking import sentence_spans
from rag.embeddings import Embedder
from rag.lexical import STOPWORDS, TOKEN, acronym_expansions, present_terms, stem, terms
from rag.safety import looks_like_instructions
from rag.types import Answer, Citation, Passage

REFUSAL = "I could not find an answer to that in the documents I have."
DIFFERING_FIGURES = "The sources give different figures:"

_AMOUNT = r"\$?\d(?:[\d,.]*\d)?"
_SCALE = r"(?:\s?%|\s?(?:percent|million|billion|trillion|thousand|hundred)\b)"
# A quantity: optional hedge, a number with optional scale, an optional range, and the next word
# as a possible unit ("1,500 soldiers"); a unit that is a stopword ("12 were") is trimmed later.
_NUMBER = re.compile(
    r"(?<![\w.-])(?:(?i:about|around|approximately|nearly|almost|some|over|under|more than|fewer than|"
    r"less than|up to|at least) )?"
    rf"(?P<value>{_AMOUNT})(?P<scale>{_SCALE})?(?:\s(?:to|and|or|-)\s{_AMOUNT}{_SCALE}?)?"
    r"(?:\s(?P<unit>[a-z][a-z-]+))?"
)
_YEAR = re.compile(r"(?:19|20)\d\d")
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(
    rf"\b(?:(?:{_MONTHS})\s+\d{{1,2}}(?:,\s*\d{{4}})?|\d{{1,2}}\s+(?:{_MONTHS})(?:\s+\d{{4}})?|(?:{_MONTHS})\s+\d{{4}}"
    rf"|(?:in |since |by )?(?:19|20)\d{{2}}|(?:in |since |by |last |next |this )(?:{_MONTHS})|(?:last|next|this) (?:week|month|year)|today|yesterday"
    rf"|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday))\b"
)
# Runs of capitalised words; a possessive ends a run ("Russia’s Kursk" is not one name).
_CAPITALISED = re.compile(r"\b[A-Z][a-zA-Z.-]+(?:\s+[A-Z][a-zA-Z.-]+)*")
_SPEECH_VERBS = r"(?:said|says|told|stated|announced|added|wrote|warned|claimed)"
_SPEECH = re.compile(rf"^[,\s]*(?:also\s+|\w+ly\s+)?{_SPEECH_VERBS}\b")
_SPEECH_BEFORE = re.compile(rf"\b{_SPEECH_VERBS},?\s*$")
# "Who said ...?" asks for the speaker; "Who is the official who said ...?" does not.
_WHO_SAID = re.compile(rf"^\s*who\s+(?:has\s+|had\s+)?{_SPEECH_VERBS}\b", re.IGNORECASE)
# Words that follow a number without being its unit.
_NOT_UNITS = frozenset("including while because since until like per than".split())


def quoted(sentence: str) -> str:
    """A source's sentence made safe to quote before a citation marker: its own bracketed
    footnote numbers ("[2]") become "(2)", so they cannot read as citations."""
    return re.sub(r"\[(\d+)\]", r"(\1)", sentence)


def attribution(citation: Citation) -> str:
    """Who said it and when, for an answer that sets sources side by side: "DOD News, 2024-11-04"."""
    return f"{citation.source or citation.title or citation.doc_id}, {citation.published or 'undated'}"


def named_terms(question: str) -> set[str]:
    """Stemmed names in the question (capitalised words after its first: "NIS", "Austin"):
    who said a figure, or what it is about."""
    words = TOKEN.findall(question)[1:]
    return {stem(w) for w in words if w[:1].isupper() and w.lower() not in STOPWORDS}


def question_weights(question: str, idf: Callable[[str], float]) -> dict[str, float]:
    """Content terms of the question with IDF weights: rare terms ('NIS', 'killed') decide."""
    return {term: idf(term) for term in terms(question)}


def lexical_coverage(
    weights: dict[str, float], text: str, expansions: dict[str, frozenset[str]] | None = None
) -> float:
    """IDF-weighted share of the question's terms that occur in the text (0..1); an acronym
    also counts where its spelled-out name does (see rag.lexical.present_terms)."""
    total = sum(weights.values())
    if not total:
        return 0.0
    present = present_terms(text, expansions)
    return sum(w for t, w in weights.items() if t in present) / total


def expected_type(question: str) -> str | None:
    """What kind of answer the question wants: 'number', 'date', 'name', or None."""
    q = question.lower()
    if re.search(r"\bhow (many|much)\b|\bwhat (number|percentage|share|amount)\b|\bhow (large|big|far|long|old)\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (year|date|day|month)\b|\bwhich (year|date|day|month)\b", q):
        return "date"
    if re.search(r"\bwho(m|se)?\b", q):
        return "name"
    return None


def typed_spans(kind: str, sentence: str, question: str) -> list[tuple[int, int]]:
    """Spans in the sentence that could be an answer of the given kind (and are not in the question)."""
    asked = {stem(t) for t in TOKEN.findall(question)}
    if kind == "number":
        return _number_spans(sentence, asked, wants_year=bool(re.search(r"\byears?\b", question, re.IGNORECASE)))
    pattern = _DATE if kind == "date" else _CAPITALISED
    speaker_asked = kind == "name" and bool(_WHO_SAID.search(question))
    spans = []
    for match in pattern.finditer(sentence):
        new_words = {stem(t) for t in TOKEN.findall(match.group(0))} - asked
        if kind == "name" and not _looks_like_a_name(sentence, match, len(new_words), speaker_asked):
            continue
        if new_words:
            end = match.end()
            if kind == "name" and sentence[end - 1] == "." and not sentence[end:].strip():
                end -= 1  # the sentence's full stop, not part of the name
            spans.append((match.start(), end))
    return spans


def _number_spans(sentence: str, asked: set[str], wants_year: bool) -> list[tuple[int, int]]:
    spans = []
    for match in _NUMBER.finditer(sentence):
        if not wants_year and not match.group("scale") and _YEAR.fullmatch(match.group("value")):
            continue  # "In 2023, 40 people died": 2023 is not the count
        end = match.end()
        unit = match.group("unit")
        if unit and (match.group("scale") or unit in STOPWORDS or unit in _NOT_UNITS):
            end = match.start("unit") - 1
        if {stem(t) for t in TOKEN.findall(sentence[match.start() : end])} - asked:
            spans.append((match.start(), end))
    return spans


def figures_in(texts: Iterable[str]) -> frozenset[str]:
    """The numbers in the texts, normalised as the answerer compares them ('1,500' -> '1500')."""
    return frozenset(stem(t) for text in texts for t in TOKEN.findall(text) if t[:1].isdigit())


def _new_typed_spans(kind: str, sentence: str, question: str, avoided: frozenset[str]) -> list[tuple[int, int]]:
    """typed_spans without those that give a figure in `avoided` (already given in the conversation)."""
    spans = typed_spans(kind, sentence, question)
    if not avoided:
        return spans
    return [(s, e) for s, e in spans if not figures_in([sentence[s:e]]) & avoided]


def _looks_like_a_name(sentence: str, match: re.Match[str], new_words: int, speaker_asked: bool) -> bool:
    """A person or organisation: two or more new capitalised words ("Sabrina Singh"), or one
    new word right before or after a speech verb ("Ryder said", "said Singh"). When the
    question asks who said something, only a name next to a speech verb will do."""
    before = sentence[max(0, match.start() - 12) : match.start()]
    after = sentence[match.end() : match.end() + 24]
    next_to_speech = bool(_SPEECH.search(after) or _SPEECH_BEFORE.search(before))
    if speaker_asked:
        return new_words >= 1 and next_to_speech
    return new_words >= 2 or (new_words == 1 and next_to_speech)


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate supporting sentence, located in its document, with how it was scored."""

    passage_rank: int
    doc_id: str
    start: int  # in the document
    end: int
    text: str
    semantic: float
    lexical: float
    has_type: bool
    score: float
    named: frozenset[str] = frozenset()  # the question's names found in the sentence or around it


@dataclass(frozen=True)
class _Candidate:
    passage_rank: int
    doc_id: str
    start: int
    end: int
    text: str
    context: str  # the document title and the neighbouring sentences in the passage
    following: str  # the next sentence in the passage, if any


def _candidates(passages: Sequence[Passage]) -> list[_Candidate]:
    """Every distinct sentence of the passages (overlapping chunks repeat some), best passage
    first, each with its neighbouring sentences as context."""
    found: dict[tuple[str, int], _Candidate] = {}
    for rank, passage in enumerate(passages):
        chunk = passage.chunk
        spans = sentence_spans(chunk.text)
        for i, (s, e) in enumerate(spans):
            if looks_like_instructions(chunk.text[s:e]):
                continue  # text addressed to an AI assistant is never quoted as an answer
            # At the passage's edges the neighbour comes from the adjacent chunk, when known.
            before = chunk.text[spans[i - 1][0] : spans[i - 1][1]] if i > 0 else passage.before
            after = chunk.text[spans[i + 1][0] : spans[i + 1][1]] if i + 1 < len(spans) else passage.after
            found.setdefault(
                (chunk.doc_id, chunk.start + s),
                _Candidate(
                    rank,
                    chunk.doc_id,
                    chunk.start + s,
                    chunk.start + e,
                    chunk.text[s:e],
                    f"{chunk.title}\n{before}\n{after}",
                    after,
                ),
            )
    return list(found.values())


def _uniform_idf(term: str) -> float:
    return 1.0


class ExtractiveAnswerer:
    """Quotes the best-supported sentences from the passages, with [n] citations.

    A sentence's support mixes its embedding similarity to the question with the IDF-weighted
    share of the question's terms found in it (and, at a lower weight, in its neighbours and the
    document title), and is discounted when it lacks the kind of answer asked for (a number for
    "how many", a date for "when"). The best support decides between answering and declining.
    """

    SEMANTIC_WEIGHT = 0.4
    CONTEXT_WEIGHT = 0.35
    SENTENCE_CACHE = 20_000  # sentence vectors kept between questions (about 30 MB)
    MISSING_TYPE_PENALTY = 0.6
    COMPLETED_BY_NEXT_PENALTY = 0.9
    FIGURE_SUPPORT = 0.8  # another figure is listed when its sentence is this well supported
    MAX_FIGURES = 4

    def __init__(
        self,
        embedder: Embedder,
        min_score: float,
        max_sentences: int,
        idf: Callable[[str], float] = _uniform_idf,
    ) -> None:
        self.embedder = embedder
        self.min_score = min_score
        self.max_sentences = max_sentences
        self.idf = idf
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def _sentence_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of the sentences, embedding only those not seen in recent questions: the
        same passages come back for related questions, and embedding them is most of the
        answering time. Shared by the chat's sessions, hence the lock (held while embedding:
        two sessions embedding at once on a small CPU are no faster than one after the other)."""
        with self._cache_lock:
            missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
            if missing:
                for text, vector in zip(missing, self.embedder.embed(missing)):
                    self._cache[text] = np.asarray(vector, dtype=np.float32)
            rows = [self._cache[text] for text in texts]
            for text in texts:
                self._cache.move_to_end(text)
            while len(self._cache) > self.SENTENCE_CACHE:
                self._cache.popitem(last=False)
        return np.stack(rows)

    def score_sentences(
        self, question: str, passages: Sequence[Passage], avoid: Sequence[str] = ()
    ) -> list[ScoredSentence]:
        """Every distinct sentence of the passages, scored against the question, best first.

        Figures in `avoid` (already given earlier in the conversation) do not count as answers.
        """
        avoided = figures_in(avoid)
        candidates = _candidates(passages)
        if not candidates:
            return []
        question_vector = np.asarray(self.embedder.embed_query(question))
        similarities = self._sentence_vectors([c.text for c in candidates]) @ question_vector
        weights = question_weights(question, self.idf)
        # Acronyms the passages spell out: "NIS" also matches "its national intelligence agency".
        expansions = acronym_expansions(p.chunk.text for p in passages)
        kind = expected_type(question)
        names = named_terms(question)
        scored = []
        for candidate, similarity in zip(candidates, similarities):
            own = lexical_coverage(weights, candidate.text, expansions)
            around = lexical_coverage(weights, f"{candidate.text}\n{candidate.context}", expansions)
            lexical = (1 - self.CONTEXT_WEIGHT) * own + self.CONTEXT_WEIGHT * around
            has_type = kind is None or bool(_new_typed_spans(kind, candidate.text, question, avoided))
            score = self.SEMANTIC_WEIGHT * float(similarity) + (1 - self.SEMANTIC_WEIGHT) * lexical
            if not has_type:
                # Answers often take two sentences: "...the press secretary said." "Ryder added..."
                completed = kind is not None and bool(_new_typed_spans(kind, candidate.following, question, avoided))
                score *= self.COMPLETED_BY_NEXT_PENALTY if completed else self.MISSING_TYPE_PENALTY
            scored.append(
                ScoredSentence(
                    candidate.passage_rank,
                    candidate.doc_id,
                    candidate.start,
                    candidate.end,
                    candidate.text,
                    float(similarity),
                    lexical,
                    has_type,
                    score,
                    frozenset(names & present_terms(f"{candidate.text}\n{candidate.context}", expansions)),
                )
            )
        scored.sort(key=lambda s: (-s.score, s.passage_rank, s.start))
        return scored

    def answer(self, question: str, passages: Sequence[Passage], avoid: Sequence[str] = ()) -> Answer:
        """Quote and cite the best-supported sentences, or decline; `avoid` as in score_sentences.

        When the question asks for a number and nearly as well supported sentences give other
        figures for it (1,500 soldiers per the NIS, later 3,000), each figure is listed with
        its source and date instead of one being picked.
        """
        scored = self.score_sentences(question, passages, avoid)
        best = scored[0].score if scored else 0.0
        if not scored or best < self.min_score:
            return Answer(text=REFUSAL, refused=True, passages=tuple(passages), query=question, confidence=best)
        avoided = figures_in(avoid)
        figures = self._differing_figures(question, scored, avoided)
        if figures:
            citations = [self.cite(n, sentence, passages) for n, (sentence, _) in enumerate(figures, start=1)]
            lines = [DIFFERING_FIGURES] + [
                f"- {figure}, {attribution(c)}: {quoted(sentence.text)} [{c.n}]"
                for (sentence, figure), c in zip(figures, citations)
            ]
            return Answer(
                text="\n".join(lines),
                refused=False,
                citations=tuple(citations),
                passages=tuple(passages),
                query=question,
                short_answer=figures[0][1],
                confidence=best,
            )
        chosen = [scored[0]]
        follower = self._follower(scored[0], scored)
        if follower is not None:
            # "...the Pentagon press secretary said." then "Ryder also said...": the name is next door.
            chosen.append(follower)
        # Another sentence only for a question that asks for a figure, date or name, and only
        # when nearly as good: a second source's figure is worth showing, while for an open
        # question ("why", "what gear") the runner-up is more often noise than support.
        # (Relative to the best only, so that the refusal threshold decides nothing else and
        # can be calibrated on answers produced without it.)
        typed = expected_type(question) is not None
        for candidate in scored[1:]:
            if len(chosen) >= self.max_sentences or not typed:
                break
            if candidate not in chosen and candidate.score >= 0.9 * best and candidate.has_type:
                chosen.append(candidate)
        short = next((a for a in (self._short_answer(question, c.text, avoided) for c in chosen) if a), "")
        chosen.sort(key=lambda s: (s.passage_rank, s.start))
        citations = [self.cite(n, sentence, passages) for n, sentence in enumerate(chosen, start=1)]
        return Answer(
            text=" ".join(f"{quoted(sentence.text)} [{c.n}]" for sentence, c in zip(chosen, citations)),
            refused=False,
            citations=tuple(citations),
            passages=tuple(passages),
            query=question,
            short_answer=short,
            confidence=best,
        )

    def differing_figures(
        self, question: str, passages: Sequence[Passage], avoid: Sequence[str] = ()
    ) -> list[tuple[ScoredSentence, str]]:
        """The different figures the passages give for a "how many" question (see answer)."""
        scored = self.score_sentences(question, passages, avoid)
        return self._differing_figures(question, scored, figures_in(avoid)) if scored else []

    def _differing_figures(
        self, question: str, scored: Sequence[ScoredSentence], avoided: frozenset[str]
    ) -> list[tuple[ScoredSentence, str]]:
        """For a "how many" question: the best-supported sentence and those nearly as well
        supported (FIGURE_SUPPORT of the best) that give a different figure and match every name
        of the question the best one matches ("How many did Austin say?" lists no figure that
        South Korea gave), each with its figure, best first; empty when the sources agree or the
        question is not about a number."""
        if expected_type(question) != "number" or not scored[0].has_type:
            return []
        found: list[tuple[ScoredSentence, str]] = []
        seen: list[frozenset[str]] = []
        for sentence in scored:
            if sentence.score < self.FIGURE_SUPPORT * scored[0].score or len(found) >= self.MAX_FIGURES:
                break
            figure = self._short_answer(question, sentence.text, avoided)
            numbers = figures_in([figure])
            if sentence.has_type and numbers and numbers not in seen and sentence.named >= scored[0].named:
                found.append((sentence, figure))
                seen.append(numbers)
        return found if len(found) > 1 else []

    @staticmethod
    def cite(n: int, sentence: ScoredSentence, passages: Sequence[Passage]) -> Citation:
        """Citation [n] of a supporting sentence, with the passage it was found in."""
        return Citation.of(n, passages[sentence.passage_rank], sentence.start, sentence.end, sentence.score)

    def _follower(self, best: ScoredSentence, scored: Sequence[ScoredSentence]) -> ScoredSentence | None:
        """The sentence right after the best one, when the best lacks the kind of answer asked
        for and the next sentence of the same document has it."""
        if best.has_type or self.max_sentences < 2:
            return None
        after = [s for s in scored if s.doc_id == best.doc_id and s.start > best.end]
        following = min(after, key=lambda s: s.start, default=None)
        return following if following is not None and following.has_type else None

    @staticmethod
    def _short_answer(question: str, sentence: str, avoided: frozenset[str] = frozenset()) -> str:
        """The number, date or name in the sentence that answers the question, when one stands out.

        Among several candidates the one with the most words not already in the question wins
        ("Deputy Pentagon Press Secretary Sabrina Singh" over "Pentagon"); ties go to the first.
        """
        kind = expected_type(question)
        if kind is None:
            return ""
        asked = set(terms(question))
        spans = _new_typed_spans(kind, sentence, question, avoided)
        if not spans:
            return ""
        start, end = max(spans, key=lambda span: len(set(terms(sentence[span[0] : span[1]])) - asked))
        return sentence[start:end].strip()
