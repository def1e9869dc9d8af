"""Pure lexical helpers: tokens, light stemming, and corpus term statistics (IDF)."""

from __future__ import annotations

import functools
import hashlib
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


# Raw token -> its term ("" for a stopword). Tokens recur across texts far more than stems
# change, and this lookup is most of a hybrid search's fusion features (each candidate's
# sentences are tokenised per question). Bounded so hostile input cannot grow it forever.
_TOKEN_TERMS: dict[str, str] = {}
_TOKEN_TERMS_LIMIT = 500_000


def _token_term(token: str) -> str:
    term = "" if token.lower() in STOPWORDS else stem(token)
    if len(_TOKEN_TERMS) < _TOKEN_TERMS_LIMIT:
        _TOKEN_TERMS[token] = term
    return term


def terms(text: str) -> list[str]:
    """Stemmed content terms of a text (stopwords dropped), in order."""
    tokens = TOKEN.findall(text)
    found = list(map(_TOKEN_TERMS.get, tokens))  # loops in C: this runs on every candidate's sentences
    if None in found:
        found = [_token_term(token) if term is None else term for term, token in zip(found, tokens)]
    return list(filter(None, found))


# A rough sentence split, enough for "the best sentence's coverage" (cheaper than rag.chunking's).
SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+[\"'”’)]*|$)")
SentenceTerms = tuple[tuple[str, ...], ...]
# Names how sentence_terms splits and stems: stored terms of another recipe are not read. Bump
# the number when `stem` or `_token_term` change; the patterns and stopwords are in it already.
SENTENCE_TERMS_RECIPE = hashlib.sha256(
    repr((1, TOKEN.pattern, SENTENCE.pattern, sorted(STOPWORDS))).encode()
).hexdigest()[:12]


def sentence_terms(text: str) -> SentenceTerms:
    """The terms of each sentence of a passage, in order: what the ranker's text features read
    of a candidate (rag.fusion_features.text_features). The store keeps them with each chunk,
    so a search need not tokenise its ~70 candidates (about a seventh of its time)."""
    return tuple(tuple(terms(sentence)) for sentence in SENTENCE.findall(text))


_DEFINED_ACRONYM = re.compile(r"((?:[A-Z][\w’'-]*\s+(?:(?:of|the|and|for)\s+)*){2,8})\(([A-Z]{2,8})\)")
_ACRONYM_FILLERS = frozenset({"of", "the", "and", "for"})


def acronym_expansions(texts: Iterable[str]) -> dict[str, frozenset[str]]:
    """Acronyms the texts define, as stemmed acronym -> stemmed terms of the spelled-out name:
    "National Intelligence Service (NIS)" gives 'nis' -> {nation, intellig, servic}.

    Only a name whose initials spell the acronym counts ("U.S. officials (NIS)" does not).
    """
    found: dict[str, frozenset[str]] = {}
    for text in texts:
        for match in _DEFINED_ACRONYM.finditer(text):
            acronym = match.group(2)
            words = match.group(1).split()
            content = [w for w in words if w.lower() not in _ACRONYM_FILLERS]
            # Initials with or without the small words: NIS, and DOD for "Department of Defense".
            for name in (content[-len(acronym) :], words[-len(acronym) :]):
                if len(name) == len(acronym) and "".join(w[0] for w in name).upper() == acronym:
                    found.setdefault(stem(acronym), frozenset(terms(" ".join(name))))
                    break
    return found


def present_terms(text: str, expansions: dict[str, frozenset[str]] | None = None) -> set[str]:
    """The text's stemmed terms, plus each acronym whose name the text mostly spells out
    ("its national intelligence agency" contains 'nis' when NIS is the National Intelligence
    Service): two of three name words, or all of a shorter name."""
    present = set(terms(text))
    for acronym, name in (expansions or {}).items():
        if acronym not in present and name and len(name & present) >= max(1, min(len(name), 2 * len(name) // 3)):
            present.add(acronym)
    return present


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
        return text_idf(self.frequency.get(term, 0), self.texts)


def text_idf(df: int, texts: int) -> float:
    """BM25-style IDF of a term in `df` of `texts` texts, floored at a small positive value;
    unseen terms weigh the most. (The answer scorers' weight; rag.lexical_index keeps the counts.)"""
    return max(0.05, math.log((texts - df + 0.5) / (df + 0.5) + 1.0))
