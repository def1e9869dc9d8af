"""Exact dense search (rag/exact_search.py): pure logic, no model."""

from __future__ import annotations

import numpy as np
import pytest

from rag.exact_search import ExactVectors
from rag.lexical_index import RowFilter


def _meta(source: str, day: int, version: str = "v1") -> dict[str, object]:
    return {"source": source, "published_day": day, "doc_hash": version}


RECORDS = [
    ("c-far", [0.0, 1.0], _meta("Wire", 20240102)),
    ("b-near", [2.0, 0.1], _meta("Paper", 20240101)),  # not unit length: normalised
    ("a-twin", [1.0, 0.5], _meta("Wire", 0)),
    ("d-twin", [1.0, 0.5], _meta("Paper", 20240103, "v2")),
]


def test_nearest_ranks_by_cosine_and_breaks_ties_by_chunk_id_whatever_the_record_order() -> None:
    for records in (RECORDS, RECORDS[::-1]):
        exact = ExactVectors.from_records(records)
        found = exact.nearest([1.0, 0.0], 4)
        assert [chunk_id for chunk_id, _ in found] == ["b-near", "a-twin", "d-twin", "c-far"]
        twin = 1 / np.hypot(1, 0.5)
        assert [score for _, score in found] == pytest.approx([2 / np.hypot(2, 0.1), twin, twin, 0.0])
    assert exact.versions == {"a-twin": "v1", "b-near": "v1", "c-far": "v1", "d-twin": "v2"}


def test_nearest_keeps_to_the_row_filter_and_to_k() -> None:
    exact = ExactVectors.from_records(RECORDS)
    assert [i for i, _ in exact.nearest([1.0, 0.0], 2, RowFilter(sources=frozenset({"Wire"})))] == ["a-twin", "c-far"]
    dated = RowFilter(since_day=20240102)  # undated rows fail a date bound
    assert [i for i, _ in exact.nearest([1.0, 0.0], 5, dated)] == ["d-twin", "c-far"]
    assert exact.nearest([1.0, 0.0], 0) == []
    assert ExactVectors.from_records([]).nearest([1.0, 0.0], 3) == []
