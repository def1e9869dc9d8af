"""Pure: fold passages that are copies of one another (syndicated stories) into one result."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from rag.types import Passage

SHINGLE_WORDS = 5
# Share of the shorter passage's word 5-grams that must recur in the other for the two to be
# copies: chunks of two copies rarely start on the same sentence, and a story quoting one
# sentence of another must not count.
COPY_CONTAINMENT = 0.5
_WORD = re.compile(r"\w+")


def shingles(text: str) -> frozenset[tuple[str, ...]]:
    """The text's lower-cased word 5-grams (the whole text when shorter)."""
    words = _WORD.findall(text.lower())
    if len(words) <= SHINGLE_WORDS:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1))


def is_copy(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> bool:
    smaller = min(len(a), len(b))
    return smaller > 0 and len(a & b) >= COPY_CONTAINMENT * smaller


def collapse_copies(passages: Sequence[Passage]) -> list[Passage]:
    """The passages in order, each one that copies an earlier passage of another document
    folded into it: the earlier keeps its place and lists the copy's chunk in `copies`."""
    kept: list[Passage] = []
    kept_shingles: list[frozenset[tuple[str, ...]]] = []
    for passage in passages:
        own = shingles(passage.chunk.text)
        for i, earlier in enumerate(kept):
            if earlier.chunk.doc_id != passage.chunk.doc_id and is_copy(own, kept_shingles[i]):
                known = {earlier.chunk.doc_id, *(c.doc_id for c in earlier.copies)}
                extra = tuple(c for c in (passage.chunk, *passage.copies) if c.doc_id not in known)
                kept[i] = replace(earlier, copies=earlier.copies + extra)
                break
        else:
            kept.append(passage)
            kept_shingles.append(own)
    return kept
