"""Exact dense search over a snapshot of a store's vectors, for the trainers.

Chroma's HNSW search is approximate, and its result for one vector can differ between
processes: an embedded collection keeps its newest vectors (up to `hnsw:sync_threshold`) in a log
and adds them to the graph again on every open, in an order that varies (chroma-core/chroma
#2675, #3638). A trainer whose candidates come from that search makes a slightly different model
on each run. Searched exactly, every process finds the same neighbours, so a model is rebuilt
bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.lexical_index import RowFilter


@dataclass(frozen=True)
class ExactVectors:
    """Every stored vector, unit length, in chunk id order, with what filters and readers need."""

    ids: list[str]
    unit_vectors: np.ndarray  # (rows, dimensions), float32
    versions: dict[str, str]  # chunk id -> its document's content hash
    sources: list[str]
    days: list[int]  # published_day, 0 when undated

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, Any, dict[str, Any]]]) -> ExactVectors:
        """From (chunk id, vector, metadata) records, in any order."""
        rows = sorted(records, key=lambda record: record[0])
        if not rows:
            return cls([], np.zeros((0, 0), dtype=np.float32), {}, [], [])
        vectors = np.asarray([vector for _, vector, _ in rows], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return cls(
            ids=[chunk_id for chunk_id, _, _ in rows],
            unit_vectors=vectors / np.where(norms > 0, norms, 1.0),
            versions={chunk_id: str(meta.get("doc_hash", "")) for chunk_id, _, meta in rows},
            sources=[str(meta.get("source", "")) for _, _, meta in rows],
            days=[int(meta.get("published_day", 0) or 0) for _, _, meta in rows],
        )

    def _allowed(self, allowed: RowFilter) -> np.ndarray:
        """Which rows the filter allows, asking it once per distinct (source, day)."""
        verdicts: dict[tuple[str, int], bool] = {}
        mask = np.empty(len(self.ids), dtype=bool)
        for row, key in enumerate(zip(self.sources, self.days)):
            if key not in verdicts:
                verdicts[key] = allowed.allows(*key)
            mask[row] = verdicts[key]
        return mask

    def nearest(self, vector: Any, k: int, allowed: RowFilter | None = None) -> list[tuple[str, float]]:
        """The k rows of highest cosine similarity to `vector` that the filter allows, best
        first, with their similarity; ties are broken by chunk id."""
        if not self.ids or k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32)
        query = query / (np.linalg.norm(query) or 1.0)
        scores = self.unit_vectors @ query
        rows = np.arange(len(self.ids)) if allowed is None else np.flatnonzero(self._allowed(allowed))
        order = rows[np.argsort(-scores[rows], kind="stable")[:k]]
        return [(self.ids[row], float(scores[row])) for row in order]
