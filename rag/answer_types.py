"""Pure: what kind of answer a question asks for, and the spans of a sentence that could be it
(a number for "how many", a date for "when", a name for "who"), plus the lexical measures the
answerer and its features share."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from rag.lexical import STOPWORDS, TOKEN, present_terms, stem, terms

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


def new_typed_spans(kind: str, sentence: str, question: str, avoided: frozenset[str]) -> list[tuple[int, int]]:
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
