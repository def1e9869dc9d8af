"""Pure: what a question must be before any work is done on it, and what it asks about time."""

from __future__ import annotations

import re

from rag.errors import InputError

_LATEST = re.compile(r"\b(?:latest|most recent|newest|now|currently|current|today|so far)\b", re.IGNORECASE)


def asks_for_latest(question: str) -> bool:
    """Whether the question asks for the state of things now ("latest", "currently", ...)."""
    return bool(_LATEST.search(question))


def checked_question(question: str, limit: int) -> str:
    """Pure: the question with its whitespace collapsed, or InputError when it is empty or
    longer than `limit` characters (checked before any work, so a pasted article is refused at
    once rather than searched for seconds)."""
    if len(question) > 4 * limit:  # far over: do not even collapse it
        raise InputError(too_long(len(question), limit))
    question = " ".join(question.split())
    if not question:
        raise InputError("The question is empty: type a question about the documents.")
    if len(question) > limit:
        raise InputError(too_long(len(question), limit))
    return question


def too_long(length: int, limit: int) -> str:
    return (
        f"The question is {length:,} characters long; questions are limited to {limit:,} "
        "(CITELINE_QUESTION_MAX_CHARS). Ask about one thing at a time, or add a long text to the "
        "corpus as a document and ask about it."
    )
