"""Pure: fold passages that are copies of one another (syndicated stories) into one result."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from rag.types import Passage

SHINGLE_WORDS = 5
# Share of a later passage's word 5-grams that must already be in an earlier one for it to be a
# copy. High, so that a copy is folded only when it adds next to nothing: chunks of two copies
# rarely start on the same sentence, and the sentences one of them adds may hold the answer
# (folding at half shared lost answers on realtimeqa); a story quoting another must not count.
COPY_CONTAINMENT = 0.8
_WORD = re.compile(r"\w+")


def shingles(text: str) -> frozenset[tuple[str, ...]]:
    """The text's lower-cased word 5-grams (the whole text when shorter)."""
    words = _WORD.findall(text.lower())
    if len(words) <= SHINGLE_WORDS:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1))


def is_copy(later: frozenset[tuple[str, ...]], earlier: frozenset[tuple[str, ...]]) -> bool:
    """Whether the later passage says (almost) nothing the earlier one does not."""
    return bool(later) and len(later & earlier) >= COPY_CONTAINMENT * len(later)


def collapse_copies(passages: Sequence[Passage], limit: int | None = None) -> list[Passage]:
    """The passages in order, each one that copies an earlier passage of another document
    folded into it: the earlier keeps its place and lists the copy's chunk in `copies`.
    Stops once `limit` distinct passages are found."""
    kept: list[Passage] = []
    kept_shingles: list[frozenset[tuple[str, ...]]] = []
    for passage in passages:
        if limit is not None and len(kept) >= limit:
            break
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
