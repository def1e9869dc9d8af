"""The BM25 index kept beside the Chroma store, in step with it chunk by chunk.

bm25s scores eagerly: each chunk's term scores are computed when it is indexed, which makes a
query cost well under a millisecond but means an index cannot be extended in place. So the
index has two parts, as a search engine's segments do:

- the *base*: a bm25s index over the chunks present at the last compaction, saved in its
  folder and loaded on open;
- the *recent* chunks added since, scored at query time with the same (Lucene) BM25 formula
  and the statistics of base and recent together; base rows removed since are masked out.

`settle()` folds recent and removed chunks into a new base once they pass a tenth of it (and a
couple of hundred; an empty base is built at once), so
adding one document to a large corpus costs tokenising that document, not re-indexing the
corpus. Until then base rows keep the IDF they were indexed with, a drift bounded by that
tenth. Only the base is saved: the store's own records are the truth, and the recent part is
rebuilt from them on open (`ChunkStore` keeps the two in step).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from filelock import FileLock

from rag.lexical import text_idf

if TYPE_CHECKING:
    import bm25s

# A search's BM25 score of any chunk ids, asked after the search (LexicalIndex.scored_search).
ScoreLookup = Callable[[Iterable[str]], dict[str, float]]


def _no_scores(chunk_ids: Iterable[str]) -> dict[str, float]:
    return dict.fromkeys(chunk_ids, 0.0)


K1 = 1.5
B = 0.75
# Compaction happens once recent and removed rows pass this share of the base and this count
# (scoring a few hundred recent rows at query time costs well under a millisecond).
COMPACT_FRACTION = 0.1
COMPACT_MIN_ROWS = 200
CURRENT = "current.json"
STATE = "state.json"


@dataclass(frozen=True)
class LexicalRow:
    """What the lexical index keeps of one chunk: its index terms and what filters look at."""

    chunk_id: str
    terms: tuple[str, ...]
    source: str = ""
    day: int = 0  # published date as YYYYMMDD; 0 when undated
    version: str = ""  # what the row was made from (its document's content hash)
    text_start: int = 0  # terms before this position are the heading's, the rest the chunk text's

    @property
    def text_terms(self) -> set[str]:
        return set(self.terms[self.text_start :])


@dataclass(frozen=True)
class RowFilter:
    """Which rows may be returned: any of `sources` (all when empty), published within
    [since_day, until_day] (either bound 0 for open; undated rows fail any date bound)."""

    sources: frozenset[str] = frozenset()
    since_day: int = 0
    until_day: int = 0

    def allows(self, source: str, day: int) -> bool:
        if self.sources and source not in self.sources:
            return False
        if self.since_day and (not day or day < self.since_day):
            return False
        return not (self.until_day and (not day or day > self.until_day))


def _idf(df: float, n: float) -> float:
    """Lucene's BM25 IDF, the one bm25s uses for the base."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


class LexicalIndex:
    """BM25 over chunk terms: a saved bm25s base plus recent rows, searchable with filters."""

    def __init__(
        self, folder: Path, compact_fraction: float = COMPACT_FRACTION, compact_min_rows: int = COMPACT_MIN_ROWS
    ) -> None:
        self.folder = folder
        self.compact_fraction = compact_fraction
        self.compact_min_rows = compact_min_rows
        self._lock = threading.RLock()
        # Other processes (app workers, the CLI, server-mode processes sharing the store folder)
        # may save or read a base in the same folder; they take turns, so that no one deletes a
        # base another is still writing or reading. Beside the folder, since clear() deletes it.
        self._disk_lock_file = FileLock(str(folder.with_name(folder.name + ".lock")))
        self._clear_memory()
        self._loaded = False

    # ----- state ------------------------------------------------------------------------------

    def _clear_memory(self) -> None:
        self._base: bm25s.BM25 | None = None
        self._base_name: str | None = None
        self._base_ids: list[str] = []
        self._base_row: dict[str, int] = {}
        self._base_sources = np.array([], dtype=object)
        self._base_days = np.array([], dtype=np.int64)
        self._base_versions: list[str] = []
        self._base_lengths = np.array([], dtype=np.int64)
        self._live_base_length = 0  # terms in the live base rows (kept, not summed per search)
        self._base_tokens = np.array([], dtype=np.int32)
        self._base_offsets = np.zeros(1, dtype=np.int64)
        self._base_df = np.array([], dtype=np.int64)
        self._base_text_starts = np.array([], dtype=np.int64)  # absolute, into _base_tokens
        self._base_text_df = np.array([], dtype=np.int64)  # rows whose chunk text has each term
        self._recent_text_df: Counter[str] = Counter()
        self._vocab: dict[str, int] = {}
        self._live = np.array([], dtype=bool)
        self._recent: dict[str, LexicalRow] = {}
        self._postings: dict[str, dict[str, int]] = {}  # term -> recent chunk id -> term frequency
        self._recent_length = 0

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._load()
            self._loaded = True

    def ids(self) -> set[str]:
        """Chunk ids the index holds (base rows not removed, and recent rows)."""
        with self._lock:
            self._ensure_loaded()
            live = {chunk_id for chunk_id, alive in zip(self._base_ids, self._live) if alive}
            return live | set(self._recent)

    def versions(self) -> dict[str, str]:
        """Chunk id -> version of every row the index holds."""
        with self._lock:
            self._ensure_loaded()
            held = {i: v for i, v, alive in zip(self._base_ids, self._base_versions, self._live) if alive}
            held.update((chunk_id, row.version) for chunk_id, row in self._recent.items())
            return held

    def versions_of(self, chunk_ids: Iterable[str]) -> dict[str, str]:
        """Chunk id -> version of each of these ids the index holds."""
        with self._lock:
            self._ensure_loaded()
            held = {}
            for chunk_id in chunk_ids:
                recent = self._recent.get(chunk_id)
                row = self._base_row.get(chunk_id)
                if recent is not None:
                    held[chunk_id] = recent.version
                elif row is not None and self._live[row]:
                    held[chunk_id] = self._base_versions[row]
            return held

    def __len__(self) -> int:
        with self._lock:
            self._ensure_loaded()
            return int(self._live.sum()) + len(self._recent)

    @property
    def base_size(self) -> int:
        with self._lock:
            self._ensure_loaded()
            return len(self._base_ids)

    @property
    def pending(self) -> int:
        """Recent and removed rows not yet folded into the base."""
        with self._lock:
            self._ensure_loaded()
            return len(self._recent) + int((~self._live).sum())

    def idf(self, term: str) -> float:
        """BM25 IDF of a stemmed term over the indexed chunks (the weight search gives it)."""
        with self._lock:
            self._ensure_loaded()
            base = int(self._base_df[self._vocab[term]]) if term in self._vocab else 0
            return _idf(base + len(self._postings.get(term, ())), max(len(self), 1))

    def text_idf(self, term: str) -> float:
        """The answer scorers' IDF of a stemmed term (rag.lexical.text_idf) over the indexed
        chunks' own text, headings left out: kept row by row here, so it costs no pass over the
        corpus when a store opens or changes."""
        with self._lock:
            self._ensure_loaded()
            base = int(self._base_text_df[self._vocab[term]]) if term in self._vocab else 0
            return text_idf(base + self._recent_text_df.get(term, 0), len(self))

    # ----- changes ----------------------------------------------------------------------------

    def add(self, rows: Iterable[LexicalRow]) -> None:
        """Index rows (a row with an id already held replaces it)."""
        with self._lock:
            self._ensure_loaded()
            for row in rows:
                self._drop(row.chunk_id)
                self._recent[row.chunk_id] = row
                self._recent_length += len(row.terms)
                self._recent_text_df.update(row.text_terms)
                for term, count in Counter(row.terms).items():
                    self._postings.setdefault(term, {})[row.chunk_id] = count

    def remove(self, chunk_ids: Iterable[str]) -> None:
        with self._lock:
            self._ensure_loaded()
            for chunk_id in chunk_ids:
                self._drop(chunk_id)

    def replace(self, removed: Iterable[str], added: Iterable[LexicalRow]) -> None:
        """Remove some rows and add others as one change: no search sees one without the other."""
        with self._lock:
            self.remove(removed)
            self.add(added)

    def _drop(self, chunk_id: str) -> None:
        row = self._recent.pop(chunk_id, None)
        if row is not None:
            self._recent_length -= len(row.terms)
            self._recent_text_df.subtract(row.text_terms)
            for term in set(row.terms):
                postings = self._postings[term]
                del postings[chunk_id]
                if not postings:
                    del self._postings[term]
        base_row = self._base_row.get(chunk_id)
        if base_row is not None and self._live[base_row]:
            self._live[base_row] = False
            self._live_base_length -= int(self._base_lengths[base_row])
            tokens = self._base_tokens[self._base_offsets[base_row] : self._base_offsets[base_row + 1]]
            self._base_df[np.unique(tokens)] -= 1
            text = self._base_tokens[self._base_text_starts[base_row] : self._base_offsets[base_row + 1]]
            self._base_text_df[np.unique(text)] -= 1

    def clear(self) -> None:
        """Forget everything, on disk and in memory."""
        with self._lock, self._disk():
            shutil.rmtree(self.folder, ignore_errors=True)
            self._clear_memory()
            self._loaded = True

    def settle(self, force: bool = False) -> bool:
        """Fold recent and removed rows into a new saved base when there is no base yet, when
        they pass the compaction share and count, or when forced; returns whether it did."""
        with self._lock:
            self._ensure_loaded()
            threshold = max(self.compact_fraction * len(self._base_ids), self.compact_min_rows)
            if not self.pending or (not force and self._base_ids and self.pending <= threshold):
                return False
            self._compact()
            return True

    # ----- the state on disk, for the next process ------------------------------------------

    def save_state(self, generation: int) -> None:
        """Record that this index (its base, less the rows removed since, plus the recent rows)
        holds exactly the store at `generation`, so a process opening the store at that
        generation restores it instead of reading every stored record to bring it in step."""
        with self._lock:
            self._ensure_loaded()
            state = {
                "generation": generation,
                "base": self._base_name,
                "removed": [chunk_id for chunk_id, alive in zip(self._base_ids, self._live) if not alive],
                "recent": [
                    [r.chunk_id, list(r.terms), r.source, r.day, r.version, r.text_start] for r in self._recent.values()
                ],
            }
            with self._disk():
                self.folder.mkdir(parents=True, exist_ok=True)
                temporary = self.folder / f"{STATE}.{os.getpid()}.tmp"
                temporary.write_text(json.dumps(state), encoding="utf-8")
                os.replace(temporary, self.folder / STATE)

    def restore_state(self, generation: int) -> bool:
        """Apply the saved state when it was saved at `generation` over the base this index has
        loaded (and this index has no changes of its own yet); returns whether it did."""
        with self._lock:
            self._ensure_loaded()
            if self._recent or not self._live.all():
                return False
            try:
                with self._disk():
                    state = json.loads((self.folder / STATE).read_text(encoding="utf-8"))
                if state["generation"] != generation or state["base"] != self._base_name:
                    return False
                rows = [
                    LexicalRow(i, tuple(t), source, day, version, start)
                    for i, t, source, day, version, start in state["recent"]
                ]
                removed = list(state["removed"])
            except (OSError, ValueError, KeyError, TypeError):
                return False
            self.replace(removed, rows)
            return True

    # ----- search -----------------------------------------------------------------------------

    def search(self, query_terms: Sequence[str], k: int, where: RowFilter | None = None) -> list[tuple[str, float]]:
        """The k best (chunk id, BM25 score) pairs, best first; rows sharing no term with the
        query are never returned."""
        return self.search_scoring(query_terms, k, where)[0]

    def search_scoring(
        self, query_terms: Sequence[str], k: int, where: RowFilter | None = None, also: Collection[str] = ()
    ) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """What `search` returns, and in the same pass the score of each chunk id in `also` (0
        when it shares no term with the query or is not indexed)."""
        found, score_of = self.scored_search(query_terms, k, where)
        return found, score_of(also)

    def scored_search(
        self, query_terms: Sequence[str], k: int, where: RowFilter | None = None
    ) -> tuple[list[tuple[str, float]], ScoreLookup]:
        """What `search` returns, and a lookup of any chunk id's score from the same pass (0 when
        it shares no term with the query or is not indexed): the learned fusion asks for the
        BM25 scores of the passages only the dense search found once that search is done, which
        runs beside this one."""
        with self._lock:
            self._ensure_loaded()
            n = len(self)
            if not query_terms or not n or k <= 0:
                return [], _no_scores
            average_length = (self._live_base_length + self._recent_length) / n
            base, base_scores = self._search_base(query_terms, k, where)
            recent = self._search_recent(query_terms, where, n, average_length)
            found = base + recent
            found.sort(key=lambda pair: (-pair[1], pair[0]))
            recent_scores = dict(recent)
            base_row, live = self._base_row, self._live

        def score_of(chunk_ids: Iterable[str]) -> dict[str, float]:
            scored = {}
            with self._lock:
                for chunk_id in chunk_ids:
                    row = base_row.get(chunk_id)
                    if chunk_id in recent_scores:
                        scored[chunk_id] = recent_scores[chunk_id]
                    elif row is not None and base_scores is not None and live[row]:
                        scored[chunk_id] = float(base_scores[row])
                    else:
                        scored[chunk_id] = 0.0
            return scored

        return found[:k], score_of

    def _base_mask(self, where: RowFilter | None) -> np.ndarray:
        mask = self._live.copy()
        if where is not None and where.sources:
            mask &= np.isin(self._base_sources, list(where.sources))
        if where is not None and where.since_day:
            mask &= self._base_days >= where.since_day
        if where is not None and where.until_day:
            mask &= (self._base_days > 0) & (self._base_days <= where.until_day)
        return mask

    def _search_base(
        self, query_terms: Sequence[str], k: int, where: RowFilter | None
    ) -> tuple[list[tuple[str, float]], np.ndarray | None]:
        """The base rows tied with or above the k-th best, and every base row's score."""
        known = [term for term in query_terms if term in self._vocab]
        if self._base is None or not known:
            return [], None
        scores = self._base.get_scores(known, weight_mask=self._base_mask(where).astype(np.float32))
        top = min(k, len(scores))
        kth_best = scores[np.argpartition(-scores, top - 1)[top - 1]]
        # Every row tied with the k-th best is kept (the caller orders ties by id), so a deeper
        # search always starts with the rows a shallower one returned.
        rows = np.flatnonzero(scores >= max(kth_best, np.finfo(np.float32).tiny))
        return [(self._base_ids[i], float(scores[i])) for i in rows], scores

    def _search_recent(
        self, query_terms: Sequence[str], where: RowFilter | None, n: int, average_length: float
    ) -> list[tuple[str, float]]:
        if not self._recent:
            return []
        scores: dict[str, float] = {}
        for term in query_terms:
            postings = self._postings.get(term)
            if not postings:
                continue
            base_df = int(self._base_df[self._vocab[term]]) if term in self._vocab else 0
            idf = _idf(base_df + len(postings), n)
            for chunk_id, count in postings.items():
                row = self._recent[chunk_id]
                if where is not None and not where.allows(row.source, row.day):
                    continue
                norm = K1 * (1 - B + B * len(row.terms) / average_length)
                scores[chunk_id] = scores.get(chunk_id, 0.0) + idf * count / (count + norm)
        return list(scores.items())

    # ----- disk -------------------------------------------------------------------------------

    def _compact(self) -> None:
        """Build and save a base from every live row, then switch to it."""
        import bm25s

        vocab = dict(self._vocab)  # term ids stay stable, so base rows need no re-tokenising
        kept = np.flatnonzero(self._live)
        recent = list(self._recent.values())
        ids = [self._base_ids[i] for i in kept] + [row.chunk_id for row in recent]
        sources = [str(self._base_sources[i]) for i in kept] + [row.source for row in recent]
        days = [int(self._base_days[i]) for i in kept] + [row.day for row in recent]
        versions = [self._base_versions[i] for i in kept] + [row.version for row in recent]
        token_ids = [self._base_tokens[self._base_offsets[i] : self._base_offsets[i + 1]].tolist() for i in kept]
        token_ids += [[vocab.setdefault(term, len(vocab)) for term in row.terms] for row in recent]
        text_starts = [int(self._base_text_starts[i] - self._base_offsets[i]) for i in kept]
        text_starts += [row.text_start for row in recent]
        self._clear_memory()
        if not ids:
            with self._disk():
                self._write_current(None)
            return
        index = bm25s.BM25(k1=K1, b=B, method="lucene")
        index.index((token_ids, vocab), show_progress=False)
        with self._disk():
            name = f"base-{time.time_ns()}"
            target = self.folder / name
            index.save(str(target), show_progress=False)
            lengths = np.array([len(row) for row in token_ids], dtype=np.int64)
            flat = np.fromiter((t for row in token_ids for t in row), dtype=np.int32, count=int(lengths.sum()))
            np.save(target / "tokens.npy", flat)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            np.save(target / "offsets.npy", offsets)
            starts = offsets[:-1] + np.array(text_starts, dtype=np.int64)
            np.save(target / "text_starts.npy", starts)
            # Saved so that opening the base costs no pass over its rows.
            np.save(target / "df.npy", _document_frequencies(flat, offsets[:-1], offsets[1:], len(vocab)))
            np.save(target / "text_df.npy", _document_frequencies(flat, starts, offsets[1:], len(vocab)))
            rows = {"ids": ids, "sources": sources, "days": days, "versions": versions}
            (target / "rows.json").write_text(json.dumps(rows), encoding="utf-8")
            self._write_current(name)
            self._load()

    def _write_current(self, name: str | None) -> None:
        """Point at the new base atomically, then delete older bases."""
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f"{CURRENT}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps({"base": name}), encoding="utf-8")
        os.replace(temporary, self.folder / CURRENT)
        for old in self.folder.glob("base-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def _disk(self) -> FileLock:
        """The lock other processes' indexes over this folder take to save or read a base."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        return self._disk_lock_file

    def _load(self) -> None:
        """Read the saved base (if any); recent rows are the caller's to add."""
        with self._disk():
            self._read_base()

    def _read_base(self) -> None:
        import bm25s

        self._clear_memory()
        try:
            name = json.loads((self.folder / CURRENT).read_text(encoding="utf-8"))["base"]
        except (OSError, ValueError, KeyError):
            return
        if not name:
            return
        target = self.folder / name
        try:
            # Memory-mapped: opening reads no score or token array, and the pages a search
            # touches are shared with every other process that has the same base open.
            index = bm25s.BM25.load(str(target), mmap=True)
            rows = json.loads((target / "rows.json").read_text(encoding="utf-8"))
            tokens = np.load(target / "tokens.npy", mmap_mode="r")
            offsets = np.load(target / "offsets.npy", mmap_mode="r")
            text_starts = np.load(target / "text_starts.npy", mmap_mode="r")
            df = np.load(target / "df.npy")
            text_df = np.load(target / "text_df.npy")
        except (OSError, ValueError, KeyError):
            # An unreadable base, or one saved before text_starts and the frequencies were: the
            # store re-adds every row as recent and compacts.
            return
        self._base, self._base_name = index, name
        self._vocab = dict(index.vocab_dict)
        self._base_ids = list(rows["ids"])
        self._base_row = {chunk_id: i for i, chunk_id in enumerate(self._base_ids)}
        self._base_sources = np.array(rows["sources"], dtype=object)
        self._base_days = np.array(rows["days"], dtype=np.int64)
        # A base saved before versions were kept: "" matches no stored hash, so the store's next
        # full sync indexes those rows again (once) and the next compaction saves their versions.
        self._base_versions = list(rows.get("versions") or [""] * len(self._base_ids))
        self._base_tokens = tokens
        self._base_offsets = offsets
        self._base_lengths = np.diff(offsets)
        self._live_base_length = int(self._base_lengths.sum())
        self._live = np.ones(len(self._base_ids), dtype=bool)
        self._base_df = df
        self._base_text_starts = text_starts
        self._base_text_df = text_df


def _document_frequencies(tokens: np.ndarray, starts: np.ndarray, ends: np.ndarray, vocabulary: int) -> np.ndarray:
    """How many rows hold each term in their span tokens[starts[i]:ends[i]]: unique (row, term)
    pairs counted per term."""
    lengths = ends - starts
    rows = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
    positions = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    picked = tokens[np.repeat(starts, lengths) + positions]
    pairs = np.unique(rows * vocabulary + picked)
    return np.bincount(pairs % vocabulary, minlength=vocabulary).astype(np.int64)
