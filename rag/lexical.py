"""Pure lexical helpers: tokens, light stemming, and corpus term statistics (IDF)."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import Stemmer

TOKEN = re.compile(r"\d[\d,.]*\d|\d|[A-Za-z]+(?:['’][A-Za-z]+)?")

STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as into about over after before
    between than then so that this these those there here is are was were be been being am do does
    did doing done have has had having will would shall should can could may might must it its
    they them their he him his she her we us our you your i me my what which who whom whose when
    where why how many much not no nor any some all each more most other such only own same too
    very just also up down out off again further once say said says tell told according name""".split()
)


@functools.lru_cache(maxsize=1)
def _english_stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """Snowball (Porter 2) stem of a lower-cased, possessive-free token: 'signed'~'sign', 'armies'~'army'.

    Numbers lose their thousands separators ('1,500' -> '1500').
    """
    term = token.lower().replace("’", "'")
    term = re.sub(r"'s$", "", term)
    if term[:1].isdigit():
        return term.replace(",", "")
    return _english_stemmer().stemWord(term)


def terms(text: str) -> list[str]:
    """Stemmed content terms of a text (stopwords dropped), in order."""
    return [stem(t) for t in TOKEN.findall(text) if t.lower() not in STOPWORDS]


@dataclass
class TermStats:
    """Document frequencies of stemmed terms over a set of texts (chunks), for IDF weights."""

    texts: int = 0
    frequency: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> TermStats:
        stats = cls()
        for text in texts:
            stats.texts += 1
            stats.frequency.update(set(terms(text)))
        return stats

    def idf(self, term: str) -> float:
        """BM25-style IDF, floored at a small positive value; unseen terms weigh the most."""
        df = self.frequency.get(term, 0)
        return max(0.05, math.log((self.texts - df + 0.5) / (df + 0.5) + 1.0))
