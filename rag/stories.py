"""Near-duplicate documents: the same story republished (by another outlet, or updated with
small edits) is found at ingest by MinHash over word 5-grams and given the story id of the
document it copies, so the corpus list can show the copies and an answer can count them as one
source."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from rag.dedup import shingles

if TYPE_CHECKING:
    from datasketch import MinHash, MinHashLSH

PERMUTATIONS = 128
SEED = 1  # fixed: the same text always gets the same signature, in every process
SCHEME = "affine32"  # datasketch 2's 32-bit permutations; stored signatures are of this scheme
# Estimated Jaccard similarity of two documents' word 5-gram sets at which the later one is a
# copy of the earlier. On realtimeqa's 2,225 articles, pairs at 0.7 or more are one story
# republished or updated (a timeline re-run months later, a mayoral race story edited
# overnight); pairs around 0.6 are different stories sharing boilerplate (two lottery stories,
# two updates of a space mission that each add half their text).
STORY_SIMILARITY = 0.7
# LSH finds candidates from this lower similarity, so that few copies just above
# STORY_SIMILARITY slip through its banding; each candidate is then checked against it.
CANDIDATE_SIMILARITY = 0.5


@cache
def _permutations() -> np.ndarray:
    """The permutations of SEED, drawn once: datasketch draws them again for every MinHash made
    (about 0.1 ms each, and an import makes three per document)."""
    from datasketch import MinHash

    return MinHash(num_perm=PERMUTATIONS, seed=SEED, scheme=SCHEME).permutations


def _minhash(values: np.ndarray | None = None) -> MinHash:
    """A MinHash of this module's recipe: empty, or holding a signature's values."""
    from datasketch import MinHash

    return MinHash(num_perm=PERMUTATIONS, seed=SEED, scheme=SCHEME, hashvalues=values, permutations=_permutations())


def signature(text: str) -> np.ndarray:
    """The MinHash signature of a text's word 5-grams (PERMUTATIONS unsigned 32-bit values)."""
    minhash = _minhash()
    minhash.update_batch([" ".join(gram).encode() for gram in shingles(text)])
    return np.asarray(minhash.hashvalues, dtype=np.uint64)


def encode(values: np.ndarray) -> str:
    """A signature as text, for a store's metadata."""
    return values.astype(">u4").tobytes().hex()


def decode(text: str) -> np.ndarray | None:
    """A signature back from `encode`; None when the text is not one (a store made before)."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    if len(raw) != 4 * PERMUTATIONS:
        return None
    return np.frombuffer(raw, dtype=">u4").astype(np.uint64)


class StoryIndex:
    """The stored documents' signatures in an LSH index: which story a new document belongs to.

    A document that copies a known one (estimated similarity at least STORY_SIMILARITY) joins
    that document's story; otherwise it starts its own, named by its own id.
    """

    def __init__(self, known: Iterable[tuple[str, str, np.ndarray]] = ()) -> None:
        from datasketch import MinHashLSH

        self._lsh: MinHashLSH = MinHashLSH(threshold=CANDIDATE_SIMILARITY, num_perm=PERMUTATIONS)
        self._entries: dict[str, tuple[str, MinHash]] = {}
        self._sizes: Counter[str] = Counter()  # documents per story
        for doc_id, story, values in known:
            self._insert(doc_id, story, values)

    def _insert(self, doc_id: str, story: str, values: np.ndarray) -> None:
        minhash = _minhash(values)
        self.forget(doc_id)
        self._entries[doc_id] = (story, minhash)
        self._sizes[story] += 1
        self._lsh.insert(doc_id, minhash)

    def forget(self, doc_id: str) -> None:
        """Drop a removed document, so that no later document joins its story through it."""
        entry = self._entries.pop(doc_id, None)
        if entry is not None:
            self._lsh.remove(doc_id)
            self._sizes[entry[0]] -= 1

    def has_copies(self, story: str) -> bool:
        """Whether more than one known document belongs to the story."""
        return self._sizes[story] > 1

    def story_for(self, doc_id: str, values: np.ndarray) -> str:
        """The story of the most similar other document, if it is a copy, else `doc_id`; the
        document is then remembered, so later documents in the same batch can copy it."""
        minhash = _minhash(values)
        matches = [
            (minhash.jaccard(self._entries[other][1]), other)
            for other in self._lsh.query(minhash)
            if other != doc_id  # a changed document must not match its own earlier version
        ]
        matches = [(similarity, other) for similarity, other in matches if similarity >= STORY_SIMILARITY]
        story = self._entries[max(matches, key=lambda m: (m[0], m[1]))[1]][0] if matches else doc_id
        self._insert(doc_id, story, values)
        return story
