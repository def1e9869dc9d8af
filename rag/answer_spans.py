"""Pure: the short answer spans a chosen sentence offers (names, numbers, dates and the noun
phrases between stopwords) and the features the learned span scorer reads for each. As with
rag.answer_features, training and answering use these same functions, and the trained model
records a hash of this file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from rag.answer_types import _DATE, _NUMBER, expected_type
from rag.lexical import STOPWORDS, stem

SPAN_FEATURES = (
    "question_type",  # 0 other, 1 number, 2 date, 3 name
    "wh_word",  # 0 what/which, 1 who, 2 where, 3 when, 4 how, 5 other
    "numeric",  # the span holds a digit
    "date",  # the span is a date
    "capitalised_share",  # share of its words that start with a capital
    "words",
    "asked_share",  # share of its words the question has
    "position",  # where it starts in the sentence (0..1)
    "distance",  # words between it and the nearest question word in the sentence (NaN: none there)
    "asked_nearby",  # question words within four words of it
    "after_asked",  # a question word right before it
    "before_asked",  # a question word right after it
    "preceding",  # the word before it: 1 in/at/on/from, 2 by, 3 of, 4 a/an/the, 5 as/is/was, 0 other
    "maximal",  # a whole run of content words (not a part of one)
    "typed",  # found as a number, date or name of the kind asked for
    "before_speech",  # followed by said/says/told
    "quoted",  # inside quotation marks
    "spans",  # how many spans the sentence offers
)

MAX_SPAN_WORDS = 8
_WORD = re.compile(r"[$£€]?\d[\d,.]*\d%?|[$£€]?\d%?|[A-Za-z][A-Za-z.'’&-]*[A-Za-z]|[A-Za-z]")
_BREAK = re.compile(r"[,;:()\[\]\"“”—–!?]|\s-\s")
_CONNECTORS = frozenset({"of", "and", "de", "the"})
_PRECEDING = {
    **dict.fromkeys(("in", "at", "on", "from", "into", "near"), 1),
    "by": 2,
    "of": 3,
    **dict.fromkeys(("a", "an", "the"), 4),
    **dict.fromkeys(("as", "is", "was", "are", "were", "be", "been"), 5),
}
_WH = {"what": 0, "which": 0, "who": 1, "whom": 1, "whose": 1, "where": 2, "when": 3, "how": 4}
_SPEECH_AFTER = re.compile(r"^[\s,]*(?:said|says|told|added|announced)\b")
_QUESTION_TYPES = {None: 0, "number": 1, "date": 2, "name": 3}


def _words(sentence: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0).rstrip(".")) for m in _WORD.finditer(sentence)]


def _content(word: str) -> bool:
    return word.lower() not in STOPWORDS


def candidate_spans(sentence: str, question: str) -> list[tuple[int, int]]:
    """Spans of the sentence that could answer the question, in order: runs of content words
    (joined over "of"/"and" between two of them, broken at punctuation), their first and last
    one to three words, numbers and dates; never a span whose words the question already has."""
    words = _words(sentence)
    asked = {stem(w) for _, _, w in _words(question)}
    runs: list[list[int]] = []
    current: list[int] = []
    for i, (start, _end, word) in enumerate(words):
        broken = bool(current) and bool(_BREAK.search(sentence[words[current[-1]][1] : start]))
        if broken:
            runs.append(current)
            current = []
        if _content(word):
            current.append(i)
        elif (
            word.lower() in _CONNECTORS
            and current
            and i + 1 < len(words)
            and _content(words[i + 1][2])
            and not _BREAK.search(sentence[words[i][1] : words[i + 1][0]])
        ):
            current.append(i)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    found: dict[tuple[int, int], None] = {}

    def add(first: int, last: int) -> None:
        while first <= last and not _content(words[first][2]):
            first += 1
        while last >= first and not _content(words[last][2]):
            last -= 1
        if first > last or last - first + 1 > MAX_SPAN_WORDS:
            return
        if {stem(w) for _, _, w in words[first : last + 1] if _content(w)} <= asked:
            return
        found[(words[first][0], words[last][0] + len(words[last][2]))] = None

    for run in runs:
        for first, last in [(run[0], run[-1]), *_same_case_parts(words, run)]:
            add(first, last)
            for size in (1, 2, 3):
                if size < last - first + 1:
                    add(first, first + size - 1)
                    add(last - size + 1, last)
    for pattern in (_NUMBER, _DATE):
        for match in pattern.finditer(sentence):
            text = match.group(0)
            start = match.start()
            end = start + len(text.rstrip(" ."))
            if {stem(w) for _, _, w in _words(text) if _content(w)} - asked:
                found[(start, end)] = None
    return sorted(found)


def _same_case_parts(words: list[tuple[int, int, str]], run: list[int]) -> list[tuple[int, int]]:
    """The run's stretches of capitalised words and of lower-case ones ("Denmark's Queen
    Margrethe II" and "announced" in "Denmark's Queen Margrethe II announced"), when it has both."""
    parts: list[tuple[int, int]] = []
    start = run[0]
    for previous, index in pairwise(run):
        if (
            words[index][2][:1].isupper() != words[previous][2][:1].isupper()
            and words[index][2].lower() not in _CONNECTORS
        ):
            parts.append((start, previous))
            start = index
    parts.append((start, run[-1]))
    return parts if len(parts) > 1 else []


def span_features(question: str, sentence: str, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """One row per span, columns as SPAN_FEATURES."""
    rows = np.full((len(spans), len(SPAN_FEATURES)), np.nan, dtype=np.float64)
    if not spans:
        return rows
    words = _words(sentence)
    asked = {stem(w) for _, _, w in _words(question) if _content(w)}
    asked_at = [i for i, (_, _, w) in enumerate(words) if _content(w) and stem(w) in asked]
    wh = next((_WH[w] for w in re.findall(r"[a-z]+", question.lower()) if w in _WH), 5)
    kind = expected_type(question)
    dates = {(m.start(), m.end()) for m in _DATE.finditer(sentence)}
    typed = _typed(kind, sentence)
    length = max(len(sentence), 1)
    for row, (start, end) in enumerate(spans):
        inside = [i for i, (s, e, _) in enumerate(words) if s >= start and e <= end + 1]
        first = inside[0] if inside else 0
        last = inside[-1] if inside else 0
        span_words = [words[i][2] for i in inside]
        distances = [min(abs(i - first), abs(i - last)) for i in asked_at if i < first or i > last]
        before = words[first - 1][2].lower() if first > 0 else ""
        quote_before = sentence[:start].count('"') + sentence[:start].count("“")
        rows[row] = [
            _QUESTION_TYPES[kind],
            wh,
            float(any(ch.isdigit() for ch in sentence[start:end])),
            float((start, end) in dates or any(s <= start and end <= e for s, e in dates)),
            sum(w[:1].isupper() for w in span_words) / (len(span_words) or 1),
            len(span_words),
            sum(stem(w) in asked for w in span_words) / (len(span_words) or 1),
            start / length,
            min(distances) if distances else np.nan,
            sum(1 for i in asked_at if (first - 4 <= i < first) or (last < i <= last + 4)),
            float(first - 1 in asked_at),
            float(last + 1 in asked_at),
            _PRECEDING.get(before, 0),
            float(end - start == _run_length(words, first, last, sentence)),
            float((start, end) in typed),
            float(bool(_SPEECH_AFTER.search(sentence[end:]))),
            float(quote_before % 2 == 1),
            len(spans),
        ]
    return rows


def _typed(kind: str | None, sentence: str) -> set[tuple[int, int]]:
    if kind == "number":
        return {(m.start(), m.start() + len(m.group(0).rstrip(" ."))) for m in _NUMBER.finditer(sentence)}
    if kind == "date":
        return {(m.start(), m.end()) for m in _DATE.finditer(sentence)}
    return set()


def _run_length(words: list[tuple[int, int, str]], first: int, last: int, sentence: str) -> int:
    """Characters of the whole content-word run that holds words first..last."""
    lo, hi = first, last
    while lo > 0 and _content(words[lo - 1][2]) and not _BREAK.search(sentence[words[lo - 1][1] : words[lo][0]]):
        lo -= 1
    while (
        hi + 1 < len(words)
        and _content(words[hi + 1][2])
        and not _BREAK.search(sentence[words[hi][1] : words[hi + 1][0]])
    ):
        hi += 1
    return words[hi][0] + len(words[hi][2]) - words[lo][0]
