"""Pure: check a generated answer's claims against the sources they cite.

A claim is one sentence of the answer with the [n] markers that follow it. It is verified when
it cites at least one source and every figure and quoted phrase in it occurs in one of the
sources it cites, and most of its words do. Whatever fails is shown as unverified, never as fact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rag.chunking import sentence_spans
from rag.citations import MARKER
from rag.lexical import TOKEN, terms
from rag.types import Claim

MIN_WORD_SUPPORT = 0.5  # share of a claim's content words that its sources must contain
MIN_ADDED_SUPPORT = 0.75  # the same, for a source Citeline attaches to a claim the model left uncited
_QUOTED = re.compile(r"[\"“]([^\"”]{3,}?)[\"”]")
_LEADING_MARKERS = re.compile(r"^\s*((?:\[\d+\]\s*)+)")
_ISO_DATE = re.compile(r"\b(\d{4})-\d{2}-\d{2}\b")
# "[1, 2]", "[1; 3]" and "[1-3]" as models write them -> "[1][2]", "[1][3]", "[1][2][3]"
_MARKER_LIST = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)+)\]")
_MARKER_RANGE = re.compile(r"\[(\d+)\s*[-–]\s*(\d+)\]")


def normalise_markers(text: str) -> str:
    """Citation lists and ranges written as one bracket, split into one [n] per source."""
    text = _MARKER_LIST.sub(lambda m: "".join(f"[{n.strip()}]" for n in re.split(r"[,;]", m.group(1))), text)

    def expand(match: re.Match[str]) -> str:
        first, last = int(match.group(1)), int(match.group(2))
        return "".join(f"[{n}]" for n in range(first, last + 1)) if 0 < last - first < 10 else match.group(0)

    return _MARKER_RANGE.sub(expand, text)


def claims(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """The answer split into sentences, each with the marker numbers attached to it; markers
    written after a full stop ("... troops. [1]") belong to the sentence before them."""
    pieces: list[list[str]] = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        leading = _LEADING_MARKERS.match(sentence)
        if leading and pieces:
            pieces[-1][0] += " " + leading.group(1)
            sentence = sentence[leading.end() :]
        if sentence.strip():
            pieces.append([sentence])
    found = []
    for (sentence,) in pieces:
        numbers = tuple(dict.fromkeys(int(n) for n in MARKER.findall(sentence)))
        plain = " ".join(MARKER.sub(" ", sentence).split())
        plain = re.sub(r"\s+([.,;:!?])", r"\1", plain)
        if plain:
            found.append((plain, numbers))
    return found


def _figures(text: str) -> dict[str, str]:
    """The numbers in the text, normalised ('1,500' -> '1500') and as written."""
    return {token.replace(",", "").rstrip("."): token for token in TOKEN.findall(text) if token[:1].isdigit()}


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[“”\"’‘']", "'", text).lower().split())


def check_claim(
    text: str, cited: tuple[int, ...], sources: Mapping[int, str], min_support: float = MIN_WORD_SUPPORT
) -> Claim:
    """Verify one claim (its text without markers) against the texts of the sources it cites."""
    known = tuple(n for n in cited if n in sources)
    if not known:
        return Claim(text, known, False, "cites no source")
    evidence = "\n".join(sources[n] for n in known)
    figures = _figures(text)
    # An ISO date in the evidence (a source's publication date) vouches for its year only, so
    # that "11 troops" is not taken as sourced from a story dated 2024-11-04.
    vouched = _figures(_ISO_DATE.sub(r"\1", evidence))
    missing = [written for number, written in figures.items() if number not in vouched]
    if missing:
        return Claim(text, known, False, f"{', '.join(missing)} not found in {_names(known)}")
    for quote in _QUOTED.findall(text):
        if _normalised(quote) not in _normalised(evidence):
            return Claim(text, known, False, f"the quotation “{quote}” is not in {_names(known)}")
    words = set(terms(text)) - set(figures)
    if words:
        supported = len(words & set(terms(evidence))) / len(words)
        if supported < min_support:
            return Claim(text, known, False, f"most of its words are not in {_names(known)}")
    return Claim(text, known, True)


def verify(text: str, sources: Mapping[int, str]) -> list[Claim]:
    """Every claim of the answer, checked against the sources (number -> text) it cites.

    A claim that cites nothing gets the first source that bears it out closely (small models
    often state a sourced fact without its marker); a wrong citation is never replaced.
    """
    checked = []
    for sentence, cited in claims(text):
        claim = check_claim(sentence, cited, sources)
        if not cited:
            claim = next(
                (
                    c
                    for c in (check_claim(sentence, (n,), sources, MIN_ADDED_SUPPORT) for n in sorted(sources))
                    if c.verified
                ),
                claim,
            )
        checked.append(claim)
    return checked


def _names(numbers: tuple[int, ...]) -> str:
    return "source " + ", ".join(f"[{n}]" for n in numbers)
