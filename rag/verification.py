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
    missing = [written for number, written in figures.items() if number not in _figures(evidence)]
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
