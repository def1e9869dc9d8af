"""Pure: turn a follow-up question and the conversation so far into one standalone query.

This is the deterministic rewrite used when no LLM is configured. It recognises three ways a
follow-up leans on the previous turn and repairs each:

- elliptical ("What about Zelensky?", "And the later briefing?"): no question of its own, so the
  previous question supplies the frame ("How many troops did NIS report? Zelensky"), and the
  figures the previous answer gave are not the answer wanted (`figures_already_given`);
- an attribute ("And its maximum range?"): asked of what the previous answer named;
- anaphoric ("When did they arrive?", "And how many did he say?"): a question of its own with a
  pronoun, so the previous turn's names, numbers and key words are carried into it.

A question that stands on its own is returned unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.citations import MARKER
from rag.lexical import STOPWORDS, TOKEN
from rag.types import Turn

_LEAD_IN = re.compile(
    r"^\s*(?:and|but|so|also|ok(?:ay)?|then)?[\s,]*(?:what|how)\s+about\b[\s,]*|^\s*(?:and|but|also)\b[\s,]*",
    re.IGNORECASE,
)
# A question of its own: a wh-word anywhere ("To which region ...?"), or an auxiliary first.
_ASKS = re.compile(
    r"\b(?:who|whom|whose|what|which|when|where|why|how)\b"
    r"|^\s*(?:is|are|was|were|do|does|did|can|could|will|would|has|have|had)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\b\d[\d,.]*\d\b|\b\d\b")
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_POSSESSIVE = re.compile(r"^(?:its|their|his|her)\b", re.IGNORECASE)
# "that"/"this" only as the last word ("When was that?"): elsewhere they are mostly conjunctions.
_PRONOUN = re.compile(
    r"\b(?:he|him|his|she|her|hers|they|them|their|theirs|it|its|these|those|the same)\b|\b(?:that|this)\W*$",
    re.IGNORECASE,
)
# Names (capitalised runs, allowing inner "of"/"the"), acronyms and numbers of the earlier turn.
_ENTITY = re.compile(r"\b(?:[A-Z][\w’'-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w’'-]*)*)|\b\d[\d,.]*\d\b|\b\d\b")
_QUESTION_WORDS = frozenset("how what who whom whose when where which why did does do is are was were and".split())
MAX_CARRIED = 8
ATTRIBUTE_OWNERS = 2


def _entities(text: str) -> list[str]:
    """Names, acronyms and numbers in the text, in order, without question words at its start."""
    found: list[str] = []
    for match in _ENTITY.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower() in _QUESTION_WORDS | STOPWORDS:
            words = words[1:]
        entity = " ".join(words)
        if entity and entity.lower() not in STOPWORDS and entity not in found:
            found.append(entity)
    return found


def _content_words(text: str) -> list[str]:
    """Lower-case words of the text that carry meaning ("troops" in "How many troops did NIS report?")."""
    return [t for t in TOKEN.findall(text) if t.islower() and t not in STOPWORDS and t not in _QUESTION_WORDS]


def is_follow_up(question: str) -> bool:
    """Whether the question leans on an earlier turn (a lead-in like "and"/"what about", or a
    pronoun standing for something named before)."""
    return bool(_LEAD_IN.match(question) or _PRONOUN.search(question))


def standalone_query(question: str, history: Sequence[Turn]) -> str:
    """The question rewritten to stand on its own, given the earlier turns (oldest first)."""
    question = " ".join(question.split())
    if not history or not is_follow_up(question):
        return question
    previous = standalone_query(history[-1].question, history[:-1])
    answer = MARKER.sub(" ", history[-1].answer)
    focus = _focus(question)
    if _POSSESSIVE.match(focus):
        return _with_context(f"What is {focus}?", _named_in_answer(answer, previous) or _entities(previous))
    if _is_elliptical(focus):
        return f"{previous} {focus}"
    asked = _LEAD_IN.sub("", question, count=1).strip() or question
    return _with_context(asked, _entities(answer) + _entities(previous) + _content_words(previous))


def figures_already_given(question: str, history: Sequence[Turn]) -> list[str]:
    """Numbers the last answer led with (up to its first citation), when the question is an
    elliptical follow-up ("What about Zelensky?"): it asks for the figure someone else gave,
    not the same one again. Figures an answer listed after its first are still fair answers
    ("What about the later briefing?" after "1,500 [1] ... later 3,000 [2]")."""
    question = " ".join(question.split())
    if not history or not is_follow_up(question) or not _is_elliptical(_focus(question)):
        return []
    first_claim = MARKER.split(history[-1].answer, maxsplit=1)[0]
    return _NUMBER.findall(_ISO_DATE.sub(" ", first_claim))  # a source's date is not a figure it gave


def _named_in_answer(answer: str, question: str) -> list[str]:
    """What the answer named that its question did not: the last two new names ("Army Tactical
    Missile Systems, or ATACMS" in a sentence that also names the United States and Ukraine)."""
    asked = set(TOKEN.findall(question.lower()))
    new = [e for e in _entities(answer) if not set(TOKEN.findall(e.lower())) <= asked]
    return new[-ATTRIBUTE_OWNERS:]


def _focus(question: str) -> str:
    """The question without its lead-in ("and", "what about") and question mark."""
    return _LEAD_IN.sub("", question, count=1).rstrip("?").strip()


def _is_elliptical(focus: str) -> bool:
    """No question of its own and not an attribute ("its range"): the earlier question is the frame."""
    return bool(focus) and not _ASKS.search(focus) and not _POSSESSIVE.match(focus)


def _with_context(asked: str, context: Sequence[str]) -> str:
    """The question followed by the earlier turn's terms it does not already contain."""
    present = set(TOKEN.findall(asked.lower()))
    carried: list[str] = []
    for term in context:
        if term not in carried and not set(TOKEN.findall(term.lower())) <= present:
            carried.append(term)
    return f"{asked} ({', '.join(carried[:MAX_CARRIED])})" if carried else asked
