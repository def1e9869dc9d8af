"""Passages -> Answer. The default answerer is extractive and offline: it quotes the retrieved
sentences that best answer the question, cites them, and declines when none is good enough."""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rag import answer_features, answer_model, answer_spans
from rag.answer_features import Candidate, CandidateFacts
from rag.answer_model import AnswerModel
from rag.answer_types import expected_type, figures_in, new_typed_spans, typed_spans
from rag.citations import outlet_of
from rag.embeddings import Embedder
from rag.lexical import terms
from rag.questions import asks_for_latest
from rag.types import Answer, Citation, Passage

__all__ = [
    "DIFFERING_FIGURES",
    "REFUSAL",
    "CandidateTable",
    "ExtractiveAnswerer",
    "ScoredSentence",
    "attribution",
    "expected_type",
    "figures_in",
    "quoted",
    "typed_spans",
]

REFUSAL = "I could not find an answer to that in the documents I have."
DIFFERING_FIGURES = "The sources give different figures:"


def quoted(sentence: str) -> str:
    """A source's sentence made safe to quote before a citation marker: its own bracketed
    footnote numbers ("[2]") become "(2)", so they cannot read as citations."""
    return re.sub(r"\[(\d+)\]", r"(\1)", sentence)


def attribution(citation: Citation) -> str:
    """Who said it and when, for an answer that sets sources side by side: "DOD News, 2024-11-04"."""
    who = outlet_of(citation.source, citation.url) or citation.title or citation.doc_id
    return f"{who}, {citation.published or 'undated'}"


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
    score: float  # the scorer's: the learned probability that it answers, or the hand-set score
    named: frozenset[str] = frozenset()  # the question's names found in the sentence or around it


def _uniform_idf(term: str) -> float:
    return 1.0


@dataclass(frozen=True)
class CandidateTable:
    """The candidate sentences of one question's passages and their features, as the scorer
    reads them (also what eval.train_answerer fits the scorer on)."""

    found: list[Candidate]
    rows: np.ndarray
    facts: list[CandidateFacts]


ModelSource = Callable[[], AnswerModel]
# The hand-set score's refusal threshold, calibrated on the seed set by earlier versions.
HAND_MIN_SCORE = 0.466


class ExtractiveAnswerer:
    """Quotes the best-supported sentences from the passages, with [n] citations.

    Each sentence of the passages is scored (rag.answer_features computes what both scorers
    read): with scorer "hand", by the hand-set score (similarity to the question and the
    IDF-weighted share of its terms in and around the sentence, discounted when the kind of
    answer asked for is missing); with "learned", by the probability from the LightGBM answer
    scorer (rag.answer_model). The best score decides between answering and declining. The
    short answer comes from the learned span scorer in both cases.
    """

    SENTENCE_CACHE = 20_000  # sentence vectors kept between questions (about 30 MB)
    FIGURE_SUPPORT = 0.8  # another figure is listed when its sentence is this well supported
    MAX_FIGURES = 4

    def __init__(
        self,
        embedder: Embedder,
        min_score: float | None,
        max_sentences: int,
        idf: Callable[[str], float] = _uniform_idf,
        model: ModelSource | None = None,
        scorer: Literal["learned", "hand"] = "learned",
    ) -> None:
        """`min_score` None takes the scorer's own refusal threshold (for "learned", the one
        chosen with the model); `model` gives the trained models (default: the shipped ones,
        loaded on first use)."""
        self.embedder = embedder
        self._min_score = min_score
        self.scorer = scorer
        self.max_sentences = max_sentences
        self.idf = idf
        self._model_source = model or functools.partial(answer_model.load, embedder.model_name)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def model(self) -> AnswerModel:
        return self._model_source()

    @property
    def min_score(self) -> float:
        if self._min_score is not None:
            return self._min_score
        return self.model.threshold if self.scorer == "learned" else HAND_MIN_SCORE

    def _sentence_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of the sentences, embedding only those not seen in recent questions: the
        same passages come back for related questions, and embedding them is most of the
        answering time. Shared by the chat's sessions, hence the lock (held while embedding:
        two sessions embedding at once on a small CPU are no faster than one after the other)."""
        with self._cache_lock:
            missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
            if missing:
                for text, vector in zip(missing, self.embedder.embed_for_question(missing)):
                    self._cache[text] = np.asarray(vector, dtype=np.float32)
            found = {text: self._cache[text] for text in texts}
            for text in texts:
                self._cache.move_to_end(text)
            while len(self._cache) > self.SENTENCE_CACHE:
                self._cache.popitem(last=False)
        return found

    def candidate_table(self, question: str, passages: Sequence[Passage], avoid: Sequence[str] = ()) -> CandidateTable:
        """Every distinct sentence of the passages with its features (rag.answer_features)."""
        found = answer_features.candidates(passages)
        if not found:
            return CandidateTable([], np.zeros((0, len(answer_features.FEATURES))), [])
        question_vector = np.asarray(self.embedder.embed_query(question))
        vectors = self._sentence_vectors(answer_features.texts_to_embed(found))
        seen = answer_features.view(question, passages, self.idf, figures_in(avoid))
        rows, facts = answer_features.features(seen, found, passages, question_vector, vectors)
        return CandidateTable(found, rows, facts)

    def score_sentences(
        self, question: str, passages: Sequence[Passage], avoid: Sequence[str] = ()
    ) -> list[ScoredSentence]:
        """Every distinct sentence of the passages, scored against the question, best first.

        Figures in `avoid` (already given earlier in the conversation) do not count as answers.
        """
        table = self.candidate_table(question, passages, avoid)
        if not table.found:
            return []
        if self.scorer == "learned":
            probabilities = self.model.probabilities(table.rows)
        else:
            probabilities = np.array([f.hand_score for f in table.facts])
        scored = [
            ScoredSentence(
                c.passage_rank, c.doc_id, c.start, c.end, c.text, f.semantic, f.lexical, f.has_type, float(p), f.named
            )
            for c, f, p in zip(table.found, table.facts, probabilities)
        ]
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
            heading = DIFFERING_FIGURES
            if asks_for_latest(question):  # newest first, and said as of when
                figures.sort(key=lambda found: passages[found[0].passage_rank].chunk.published, reverse=True)
                newest = passages[figures[0][0].passage_rank].chunk.published or "an undated article"
                heading = f"The latest figure, as of {newest}, is {figures[0][1]}. {DIFFERING_FIGURES}"
            citations = [self.cite(n, sentence, passages) for n, (sentence, _) in enumerate(figures, start=1)]
            lines = [heading] + [
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
        short = short or self.best_span(question, chosen[0].text)
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

    def best_span(self, question: str, sentence: str) -> str:
        """The span of the sentence the span scorer rates most likely to be the answer (a name,
        a figure, a noun phrase), or "" when none is likely enough."""
        spans = answer_spans.candidate_spans(sentence, question)
        if not spans:
            return ""
        probabilities = self.model.span_probabilities(answer_spans.span_features(question, sentence, spans))
        best = int(np.argmax(probabilities))
        if probabilities[best] < self.model.span_threshold:
            return ""
        start, end = spans[best]
        return sentence[start:end]

    def short_answer_for(self, question: str, sentence: str) -> str:
        """The figure, date or name in the sentence that answers the question ('' for none)."""
        return self._short_answer(question, sentence)

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
        spans = new_typed_spans(kind, sentence, question, avoided)
        if not spans:
            return ""
        start, end = max(spans, key=lambda span: len(set(terms(sentence[span[0] : span[1]])) - asked))
        return sentence[start:end].strip()
