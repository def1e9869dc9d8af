"""The persisted BM25 index on its own: exact scores, compaction, filters (real bm25s, tmp folders)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import bm25s
import numpy as np
import pytest

from rag.lexical import TermStats, terms
from rag.lexical_index import LexicalIndex, LexicalRow, RowFilter, _document_frequencies
from tests.conftest import ROOT

TEXTS = {
    "a": "North Korea sent 1,500 troops to Russia for training, the NIS said.",
    "b": "Seoul was cold and rainy on Monday.",
    "c": "Russia and Ukraine fought near Kursk as troops advanced.",
    "d": "The NIS later said North Korea had sent 3,000 troops.",
    "e": "Markets in Seoul rose after the central bank held rates.",
}
QUERY = terms("How many troops did the NIS report in Russia?")


def _rows(texts: dict[str, str]) -> list[LexicalRow]:
    return [
        LexicalRow(key, tuple(terms(text)), f"source-{key}", 20230101 + i)
        for i, (key, text) in enumerate(texts.items())
    ]


def _reference(texts: dict[str, str]) -> dict[str, float]:
    """bm25s itself, built from scratch over the same terms: the scores the index must match."""
    reference = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    reference.index([terms(text) for text in texts.values()], show_progress=False)
    scores = reference.get_scores(QUERY)
    return {key: float(score) for key, score in zip(texts, scores) if score > 0}


def _as_dict(found: list[tuple[str, float]]) -> dict[str, float]:
    return dict(found)


def test_recent_rows_score_exactly_as_a_fresh_bm25s_index(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical")
    index.add(_rows(TEXTS))
    assert index.base_size == 0 and index.pending == 5  # nothing compacted yet: all scored at query time
    found = _as_dict(index.search(QUERY, 10))
    assert found == pytest.approx(_reference(TEXTS), rel=1e-5)
    assert set(found) == {"a", "c", "d"}  # rows sharing no term with the query are never returned


def test_a_compacted_base_is_saved_and_read_back_with_the_same_scores(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical")
    index.add(_rows(TEXTS))
    assert index.settle(force=True)
    assert index.base_size == 5 and index.pending == 0
    reopened = LexicalIndex(tmp_path / "lexical")
    assert reopened.ids() == set(TEXTS)
    assert _as_dict(reopened.search(QUERY, 10)) == pytest.approx(_reference(TEXTS), rel=1e-5)
    assert [key for key, _ in reopened.search(QUERY, 2)] == sorted(
        _reference(TEXTS), key=lambda k: -_reference(TEXTS)[k]
    )[:2]


def test_removed_and_added_rows_after_compaction_match_a_fresh_build(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical")
    index.add(_rows(TEXTS))
    index.settle(force=True)
    index.remove(["a"])
    extra = {"f": "Troops from North Korea reached Kursk, the NIS said on Friday."}
    index.add(_rows(extra))
    remaining = {key: text for key, text in {**TEXTS, **extra}.items() if key != "a"}
    found = _as_dict(index.search(QUERY, 10))
    assert "a" not in found and "f" in found
    # The base keeps the IDF it was built with until the next compaction; afterwards it is exact.
    index.settle(force=True)
    assert _as_dict(index.search(QUERY, 10)) == pytest.approx(_reference(remaining), rel=1e-5)


def test_settle_compacts_only_once_changes_pass_a_share_of_the_base(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical", compact_fraction=0.1, compact_min_rows=5)
    many = {f"doc-{i}": f"Report number {i} about troops and markets in Seoul." for i in range(100)}
    index.add(_rows(many))
    assert index.settle() and index.base_size == 100  # everything was pending
    index.add(_rows({"x1": "Troops again.", "x2": "More troops."}))
    assert not index.settle() and index.base_size == 100 and index.pending == 2
    index.add(_rows({f"y{i}": f"Troops item {i}." for i in range(9)}))
    assert index.settle() and index.base_size == 111 and index.pending == 0


def test_adding_a_row_with_a_held_id_replaces_it(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical")
    index.add(_rows(TEXTS))
    index.settle(force=True)
    index.add([LexicalRow("a", tuple(terms("Nothing about that here.")))])
    assert len(index) == 5 and "a" not in _as_dict(index.search(QUERY, 10))


@pytest.mark.parametrize("compacted", [False, True])
def test_filters_apply_inside_the_search(tmp_path: Path, compacted: bool) -> None:
    index = LexicalIndex(tmp_path / "lexical")
    rows = _rows(TEXTS) + [LexicalRow("undated", tuple(terms("NIS troops troops Russia")), "source-a", 0)]
    index.add(rows)
    if compacted:
        index.settle(force=True)
    by_source = index.search(QUERY, 1, RowFilter(sources=frozenset({"source-c"})))
    assert [key for key, _ in by_source] == ["c"]  # k results from the allowed rows, not k filtered afterwards
    since = {key for key, _ in index.search(QUERY, 10, RowFilter(since_day=20230103))}
    assert since == {"c", "d"}
    until = {key for key, _ in index.search(QUERY, 10, RowFilter(until_day=20230103))}
    assert until == {"a", "c"}  # the undated row fails any date bound
    assert {key for key, _ in index.search(QUERY, 10)} == {"a", "c", "d", "undated"}


def test_clear_forgets_everything_on_disk(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical")
    index.add(_rows(TEXTS))
    index.settle(force=True)
    index.clear()
    assert len(index) == 0 and not (tmp_path / "lexical").exists()
    assert len(LexicalIndex(tmp_path / "lexical")) == 0


def test_document_frequencies_count_rows_not_occurrences() -> None:
    tokens = np.array([0, 0, 1, 1, 2], dtype=np.int32)  # row 0: terms 0,0,1; row 1: terms 1,2
    assert _document_frequencies(tokens, np.array([0, 3]), np.array([3, 5]), 3).tolist() == [1, 2, 1]
    # Only each row's span counts: row 0 from its second token, row 1 from its first.
    assert _document_frequencies(tokens, np.array([1, 3]), np.array([3, 5]), 3).tolist() == [1, 2, 1]
    assert _document_frequencies(tokens, np.array([2, 4]), np.array([3, 5]), 3).tolist() == [0, 1, 1]


HEADED = {key: ("Korea news — 2024-11-04", text) for key, text in TEXTS.items()}


def _headed_rows(texts: dict[str, tuple[str, str]]) -> list[LexicalRow]:
    return [
        LexicalRow(key, (*terms(head), *terms(text)), text_start=len(terms(head)))
        for key, (head, text) in texts.items()
    ]


def _text_idfs(index: LexicalIndex, texts: dict[str, tuple[str, str]]) -> dict[str, float]:
    vocabulary = {term for _, text in texts.values() for term in terms(text)} | {"korea", "unseen"}
    return {term: index.text_idf(term) for term in sorted(vocabulary)}


@pytest.mark.parametrize("compacted", [False, True])
def test_the_text_idf_counts_the_chunk_texts_only_as_rows_come_and_go(tmp_path: Path, compacted: bool) -> None:
    """What the answer scorers weigh terms by: the IDF over the chunks' own text (TermStats),
    kept row by row through additions, removals and compactions, headings left out."""
    index = LexicalIndex(tmp_path / "lexical")
    index.add(_headed_rows(HEADED))
    if compacted:
        index.settle(force=True)
    index.remove(["a"])
    index.add(_headed_rows({"f": ("Other — 2024-12-01", "Korea said the troops went home.")}))
    kept = {key: value for key, value in HEADED.items() if key != "a"} | {
        "f": ("Other — 2024-12-01", "Korea said the troops went home.")
    }
    expected = TermStats.from_texts(text for _, text in kept.values())
    assert _text_idfs(index, kept) == {term: expected.idf(term) for term in _text_idfs(index, kept)}
    index.settle(force=True)
    assert _text_idfs(LexicalIndex(tmp_path / "lexical"), kept) == _text_idfs(index, kept)


def test_a_saved_state_restores_the_index_without_its_rows_being_given_again(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical")
    index.add(_headed_rows(HEADED))
    index.settle(force=True)
    index.remove(["b"])
    index.add(_headed_rows({"f": ("Other — 2024-12-01", "Korea said the troops went home.")}))
    index.save_state(7)
    expected = (index.search(QUERY, 10), index.versions(), _text_idfs(index, HEADED))

    stale = LexicalIndex(tmp_path / "lexical")
    assert not stale.restore_state(8), "a state saved at another generation is not used"
    assert sorted(stale.ids()) == sorted(TEXTS)

    restored = LexicalIndex(tmp_path / "lexical")
    assert restored.restore_state(7)
    assert (restored.search(QUERY, 10), restored.versions(), _text_idfs(restored, HEADED)) == expected
    restored.settle(force=True)
    assert not LexicalIndex(tmp_path / "lexical").restore_state(7), "a state over an older base is not used"


def test_a_deeper_search_starts_with_what_a_shallower_one_returned_even_with_ties(tmp_path: Path) -> None:
    index = LexicalIndex(tmp_path / "lexical")
    same = {f"copy-{i:02d}": "Troops were sent to Kursk." for i in range(12)}  # all score the same
    index.add(_rows({**TEXTS, **same}))
    index.settle(force=True)
    query = terms("troops Kursk")
    everything = index.search(query, 100)
    for depth in (1, 3, 5, 10):
        assert index.search(query, depth) == everything[:depth]


def _compact_repeatedly(folder: str, name: str, rounds: int) -> None:
    """One process's writer: add its own rows, fold them into a saved base, reopen, search."""
    texts = {f"{name}-{key}": text for key, text in TEXTS.items()}
    Path(f"{folder}.{name}.ready").touch()
    while not Path(f"{folder}.go").exists():  # start together, so that the two really overlap
        time.sleep(0.005)
    for _ in range(rounds):
        index = LexicalIndex(Path(folder))
        index.add(_rows(texts))
        index.settle(force=True)
        reopened = LexicalIndex(Path(folder))
        assert reopened.search(QUERY, 3), "a saved base could not be read back"


def test_processes_compacting_one_folder_at_once_never_break_each_others_base(tmp_path: Path) -> None:
    folder = str(tmp_path / "lexical")
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from tests.test_lexical_index import _compact_repeatedly; _compact_repeatedly({folder!r}, {name!r}, 30)",
            ],
            cwd=ROOT,
        )
        for name in "ab"
    ]
    deadline = time.monotonic() + 120
    while not all(Path(f"{folder}.{name}.ready").exists() for name in "ab") and time.monotonic() < deadline:
        time.sleep(0.01)
    Path(f"{folder}.go").touch()
    assert [worker.wait(timeout=240) for worker in workers] == [0, 0]
    final = LexicalIndex(tmp_path / "lexical")
    # A complete base as the last writer saw it: its own rows, and the other's once it had saved some.
    assert final.pending == 0 and final.search(QUERY, 3)
    own = {f"{name}-{key}" for key in TEXTS for name in "ab"}
    assert final.ids() <= own and len(final.ids()) in (len(TEXTS), 2 * len(TEXTS))
    assert len(list((tmp_path / "lexical").glob("base-*"))) == 1


def test_a_rows_terms_are_its_indexed_text_heading_first() -> None:
    from rag.chunking import indexed_text
    from rag.store_records import lexical_row
    from rag.types import Chunk

    text = "The NIS said 1,500 soldiers were sent.\nOfficials counted 3,000 by November."
    chunk = Chunk("c", "d", 0, text, 0, len(text), title="North Korean troops: Russia's ally", published="2024-11-04")
    row = lexical_row(chunk, "v1")
    assert row.terms == tuple(terms(indexed_text(chunk)))
    assert row.text_terms == set(terms(text)) and "russia" not in row.text_terms
