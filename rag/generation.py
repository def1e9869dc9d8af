"""Answers written by an LLM from the retrieved passages, checked in code before they are shown.

The model sees the grounded prompt (rag.prompts) with the passages, in rank order, that fit its
context with room left for the reply; the rest are left out, so its answer cannot cite them, and
when not even one fits the model is not asked and the extractive answer stands in, saying why.
What the model writes streams to the caller as it comes; then markers that point at no source
are dropped, every sentence is checked against the sources it cites (rag.verification), figures
the sources give that the answer left out are added with their source and date, and an answer
with no sentence that checks out is replaced by the extractive answer, saying so. A model or
server that fails mid-answer is treated the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace

from langchain_core.language_models.chat_models import BaseChatModel

from rag.answering import REFUSAL, ExtractiveAnswerer, attribution, figures_in, quoted
from rag.chunking import heading, sentence_spans
from rag.citations import cited_numbers, strip_invalid_markers
from rag.lexical import terms
from rag.llm import prompt_budget
from rag.prompts import grounded_messages, passages_that_fit, rewrite_messages
from rag.types import Answer, Citation, Claim, Passage, Turn
from rag.verification import normalise_markers, verify

OTHER_FIGURES = "The sources also give:"
UNCHECKED = "The model's answer had no sentence that checks out against the sources it cites; this is the extractive answer instead."
_REFUSED = re.compile(
    r"could not find an answer|cannot find an answer|do not (?:answer|say|mention)|no information", re.IGNORECASE
)
MAX_REWRITE_CHARS = 300


class AnswerStream:
    """The answer's text as it is produced, then the finished, checked Answer (`result()`).

    Iterating yields text pieces (for a chat to show as they come); when they run out, the
    finished Answer is made from all of them. `result()` finishes the stream if nobody read it.
    """

    def __init__(self, pieces: Iterable[str], finish: Callable[[str], Answer]) -> None:
        self._source = pieces
        self._pieces = iter(pieces)
        self._finish = finish
        self._parts: list[str] = []  # kept here, so a reader that stops and resumes loses nothing
        self._answer: Answer | None = None

    @classmethod
    def of(cls, answer: Answer) -> AnswerStream:
        """A stream of an answer that is already complete (the extractive answerer's)."""
        return cls([answer.text], lambda _text: answer)

    def __iter__(self) -> Iterator[str]:
        if self._answer is not None:
            yield self._answer.text
            return
        for piece in self._pieces:
            self._parts.append(piece)
            yield piece
        self._answer = self._finish("".join(self._parts))

    def result(self) -> Answer:
        if self._answer is None:
            for _ in self:
                pass
        assert self._answer is not None
        return self._answer

    def close(self) -> None:
        """Stop generating (a reader that gives up mid-answer): frees the model for others."""
        for source in (self._pieces, self._source):
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def then(self, change: Callable[[Answer], Answer]) -> AnswerStream:
        """The same stream, with `change` applied to the finished answer."""
        return AnswerStream(self, lambda _text: change(self.result()))


def source_texts(passages: Sequence[Passage]) -> dict[int, str]:
    """What each numbered source says, with its title, date and outlet (which an answer may cite)."""
    return {
        n: f"{heading(p.chunk.title, p.chunk.published)}\n{p.chunk.source}\n{p.chunk.text}"
        for n, p in enumerate(passages, start=1)
    }


def supporting_span(passage: Passage, claims: Sequence[Claim]) -> tuple[int, int]:
    """The passage sentence (offsets in the document) that shares most words with the claims
    citing it: what the citation highlights."""
    chunk = passage.chunk
    wanted = set(terms(" ".join(claim.text for claim in claims)))
    spans = sentence_spans(chunk.text) or [(0, len(chunk.text))]
    start, end = max(spans, key=lambda span: len(wanted & set(terms(chunk.text[span[0] : span[1]]))))
    return chunk.start + start, chunk.start + end


def usable_rewrite(reply: str, question: str) -> str | None:
    """The model's standalone question, or None when the reply is not one question of reasonable
    length (small models often answer instead of rewriting) or is the question unchanged."""
    lines = [line.strip().strip('"“”') for line in reply.strip().splitlines() if line.strip()]
    if not lines or len(lines[0]) > MAX_REWRITE_CHARS or not lines[0].endswith("?"):
        return None
    unchanged = " ".join(lines[0].split()).lower() == " ".join(question.split()).lower()
    return None if unchanged else lines[0]


class GenerativeAnswerer:
    """Answers with a LangChain chat model; falls back to the extractive answerer."""

    def __init__(self, model: BaseChatModel, extractive: ExtractiveAnswerer, backend: str) -> None:
        self.model = model
        self.extractive = extractive
        self.backend = backend
        self.prompt_tokens = prompt_budget(model)  # None: the prompt is not trimmed

    def passages_sent(self, question: str, passages: Sequence[Passage]) -> int:
        """How many of the passages, in rank order, the prompt holds within the model's context."""
        if self.prompt_tokens is None:
            return len(passages)
        return passages_that_fit(question, passages, self.prompt_tokens)

    def stream(self, question: str, passages: Sequence[Passage], avoid: Sequence[str] = ()) -> AnswerStream:
        """Stream the model's answer to the question from the passages that fit its context
        (numbered in rank order); the Answer keeps every passage and says how many were sent."""
        sent = self.passages_sent(question, passages)
        if not sent:
            notice = "" if not passages else self._too_small()
            return AnswerStream.of(self._extractive(question, passages, avoid, notice, sent))
        failures: list[str] = []

        def pieces() -> Iterator[str]:
            try:
                for chunk in self.model.stream(grounded_messages(question, passages[:sent])):
                    if chunk.text:
                        yield chunk.text
            except Exception as error:  # noqa: BLE001 - any model or server failure falls back, never loses the question
                failures.append(f"{type(error).__name__}: {error}")

        def finish(text: str) -> Answer:
            if failures:
                notice = f"The {self.backend} model failed ({failures[0]}); this is the extractive answer instead."
                return self._extractive(question, passages, avoid, notice, sent)
            return self.check(question, passages, text, avoid, sent)

        return AnswerStream(pieces(), finish)

    def check(
        self,
        question: str,
        passages: Sequence[Passage],
        generated: str,
        avoid: Sequence[str] = (),
        sent: int | None = None,
    ) -> Answer:
        """The generated text made into an Answer whose every claim is checked (module docstring)
        against the first `sent` passages, the ones the model was given (default: all)."""
        sent = len(passages) if sent is None else sent
        shown = passages[:sent]
        text = strip_invalid_markers(normalise_markers(generated), range(1, sent + 1))
        claims = verify(text, source_texts(shown))
        if not any(claim.verified for claim in claims):
            if _REFUSED.search(text) and not cited_numbers(text):
                return Answer(
                    REFUSAL,
                    refused=True,
                    passages=tuple(passages),
                    query=question,
                    backend=self.backend,
                    passages_sent=sent,
                )
            return self._extractive(question, passages, avoid, UNCHECKED, sent)
        added = self._figures_left_out(question, shown, claims, avoid)
        claims += added
        citations = tuple(
            self._citation(n, shown[n - 1], [c for c in claims if n in c.sources])
            for n in sorted({n for claim in claims for n in claim.sources})
        )
        return Answer(
            text=_joined(claims[: len(claims) - len(added)], added),
            refused=False,
            citations=citations,
            passages=tuple(passages),
            query=question,
            backend=self.backend,
            claims=tuple(claims),
            passages_sent=sent,
        )

    def rewrite(self, question: str, history: Sequence[Turn]) -> str | None:
        """The follow-up made standalone by the model, or None when its reply is unusable."""
        try:
            reply = self.model.invoke(rewrite_messages(question, history)).text
        except Exception:  # noqa: BLE001 - the deterministic rewrite takes over
            return None
        return usable_rewrite(reply, question)

    def _figures_left_out(
        self, question: str, passages: Sequence[Passage], claims: Sequence[Claim], avoid: Sequence[str]
    ) -> list[Claim]:
        """Figures the sources give for a "how many" question that the answer does not mention,
        each as a claim with its source and date (the model may have picked one of several)."""
        said = set(figures_in(claim.text for claim in claims))
        added = []
        for sentence, figure in self.extractive.differing_figures(question, passages, avoid):
            numbers = figures_in([figure])
            if numbers and not numbers <= said:
                n = sentence.passage_rank + 1
                citation = self.extractive.cite(n, sentence, passages)
                added.append(Claim(f"{figure}, {attribution(citation)}: {quoted(sentence.text)}", (n,), True))
                said |= numbers
        return added

    def _too_small(self) -> str:
        """Why the model was not asked: its context holds the rules and question but no passage."""
        return (
            f"The {self.backend} model's context leaves {self.prompt_tokens} tokens for the prompt "
            "(CITELINE_LLM_CONTEXT_TOKENS less CITELINE_LLM_MAX_TOKENS), too few for even one source; "
            "this is the extractive answer instead."
        )

    def _extractive(
        self, question: str, passages: Sequence[Passage], avoid: Sequence[str], notice: str, sent: int
    ) -> Answer:
        """The extractive answer from every passage (it has no context to fit), standing in for the model's."""
        answer = self.extractive.answer(question, passages, avoid)
        return replace(
            answer,
            backend=f"extractive (fallback from {self.backend})",
            notice=notice if not answer.refused else "",
            passages_sent=sent,
        )

    @staticmethod
    def _citation(n: int, passage: Passage, claims: Sequence[Claim]) -> Citation:
        return Citation.of(n, passage, *supporting_span(passage, claims), passage.score)


def _joined(claims: Sequence[Claim], added: Sequence[Claim]) -> str:
    """The answer text: the model's sentences, then the figures it left out, one per line."""
    text = " ".join(claim.marked for claim in claims)
    if added:
        text += "\n" + "\n".join([OTHER_FIGURES] + [f"- {claim.marked}" for claim in added])
    return text
