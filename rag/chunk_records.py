"""The chunks' texts and metadata in one SQLite table beside the embedded Chroma store.

Chroma indexes the trigrams of every stored document for a full-text search Citeline never
uses, which its embedded store does not let us switch off, and keeps each metadata key as a row
of its own: storing chunk texts there was about 60% of an import's write cost, and reading a
question's ~70 candidates from it about 17 ms of a 40 ms hybrid search on 70k chunks. Here one
row per chunk version holds the text and the metadata (as JSON), read by primary key; Chroma
keeps the vectors and the metadata its filters and listings use.

Each row also keeps the terms of each sentence of its text (rag.lexical.sentence_terms), which
the ranker's text features read of every candidate: tokenising ~70 passages per question was
about a seventh of a hybrid search. Rows of a table made before that column, or stored with
another recipe, have none until `fill_sentence_terms`; readers then compute them from the text.

A row is keyed by chunk id *and* version (its document's content hash), so a replacement never
overwrites the text of the version Chroma still holds: rows are written before Chroma and the
other versions dropped after it, under the store's write lock. Readers ask for the version the
store holds (the BM25 index's, kept in step with Chroma), so a row left by an interrupted write
is never shown in place of the stored one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.lexical import SENTENCE_TERMS_RECIPE, SentenceTerms, sentence_terms

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk (
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    text TEXT NOT NULL,
    meta TEXT NOT NULL,
    terms TEXT,
    PRIMARY KEY (id, version)
);
CREATE INDEX IF NOT EXISTS chunk_doc ON chunk (doc_id);
"""
# A rowid table: rows of a kilobyte or more in a WITHOUT ROWID table's key B-tree took 4.7 kB
# of disk each (331 MB for 70k chunks), 1.8 kB here. Tables made that way read the same.
AT_ONCE = 500  # ids per query (SQLite's variable limit is far above; keeps statements short)

Record = tuple[str, dict[str, Any]]  # a chunk's text and its metadata
# Stored terms are JSON [recipe, sentences]; a reader takes only those of the current recipe.
_TERMS_PREFIX = json.dumps([SENTENCE_TERMS_RECIPE])[:-1] + ","
FILL_PAGE = 2000  # rows per fill_sentence_terms transaction


def encode_sentence_terms(text: str) -> str:
    """The stored form of a text's sentence terms (under this recipe)."""
    return json.dumps([SENTENCE_TERMS_RECIPE, sentence_terms(text)], separators=(",", ":"))


def decode_sentence_terms(stored: str | None) -> SentenceTerms | None:
    """A row's sentence terms, or None when it has none of the current recipe."""
    if not stored or not stored.startswith(_TERMS_PREFIX):
        return None
    return tuple(map(tuple, json.loads(stored)[1]))


_NO_TERMS = "terms IS NULL OR substr(terms, 1, length(?1)) != ?1"  # ?1: _TERMS_PREFIX


def _add_terms_column(connection: sqlite3.Connection) -> None:
    """Give a table made before the terms column one (empty: readers compute them meanwhile)."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(chunk)")}
    if "terms" in columns:
        return
    try:
        connection.execute("ALTER TABLE chunk ADD COLUMN terms TEXT")
    except sqlite3.OperationalError as error:  # another process added it first
        if "duplicate column" not in str(error):
            raise


class ChunkRecords:
    """One store's chunk records; thread-safe (one connection, one lock), opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._connection is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.executescript(SCHEMA)
                _add_terms_column(connection)
                self._connection = connection
            yield self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def put(self, rows: Iterable[tuple[str, str, str, Mapping[str, Any]]]) -> None:
        """Store (chunk id, version, text, metadata) rows, replacing the same id and version."""
        values = [
            (
                chunk_id,
                version,
                str(meta["doc_id"]),
                text,
                json.dumps(dict(meta), separators=(",", ":")),
                encode_sentence_terms(text),
            )
            for chunk_id, version, text, meta in rows
        ]
        with self._db() as db:
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR REPLACE INTO chunk (id, version, doc_id, text, meta, terms) VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
            db.execute("COMMIT")

    def get(self, versions: Mapping[str, str]) -> tuple[dict[str, Record], dict[str, Record], dict[str, SentenceTerms]]:
        """The record of each chunk id at the version given, and apart, for ids held only at
        another version, that one (a reader whose view is a write behind, or ahead); then the
        stored sentence terms of the first kind (where the row has them)."""
        ids = list(versions)
        exact: dict[str, Record] = {}
        other: dict[str, Record] = {}
        kept_terms: dict[str, SentenceTerms] = {}
        with self._db() as db:
            for first in range(0, len(ids), AT_ONCE):
                part = ids[first : first + AT_ONCE]
                marks = ",".join("?" * len(part))
                for chunk_id, version, text, meta, stored_terms in db.execute(
                    f"SELECT id, version, text, meta, terms FROM chunk WHERE id IN ({marks})", part
                ):
                    record = (text, json.loads(meta))
                    if versions[chunk_id] != version:
                        other[chunk_id] = record
                        continue
                    exact[chunk_id] = record
                    decoded = decode_sentence_terms(stored_terms)
                    if decoded is not None:
                        kept_terms[chunk_id] = decoded
        return exact, {chunk_id: record for chunk_id, record in other.items() if chunk_id not in exact}, kept_terms

    def without_sentence_terms(self) -> int:
        """How many rows have no sentence terms of the current recipe."""
        with self._db() as db:
            (count,) = db.execute(f"SELECT count(*) FROM chunk WHERE {_NO_TERMS}", (_TERMS_PREFIX,)).fetchone()
        return int(count)

    def fill_sentence_terms(self, progress: Callable[[int], None] | None = None) -> int:
        """Store the sentence terms of every row without them (a table made before they were
        kept, or by another recipe), a page per transaction; returns how many were filled.
        Only a derived column changes, so it needs no store lock and readers may go on."""
        filled = 0
        while True:
            with self._db() as db:
                page = db.execute(
                    f"SELECT id, version, text FROM chunk WHERE {_NO_TERMS} LIMIT {FILL_PAGE}", (_TERMS_PREFIX,)
                ).fetchall()
            if not page:
                return filled
            values = [(encode_sentence_terms(text), chunk_id, version) for chunk_id, version, text in page]
            with self._db() as db:
                db.execute("BEGIN")
                db.executemany("UPDATE chunk SET terms = ? WHERE id = ? AND version = ?", values)
                db.execute("COMMIT")
            filled += len(page)
            if progress:
                progress(filled)

    def keep_only(self, doc_ids: Sequence[str], versions: Mapping[str, str], chunk_ids: Iterable[str]) -> None:
        """After a write: drop these documents' rows other than `chunk_ids` at their version."""
        keep = set(chunk_ids)
        with self._db() as db:
            db.execute("BEGIN")
            for doc_id in doc_ids:
                stale = [
                    (chunk_id, version)
                    for chunk_id, version in db.execute("SELECT id, version FROM chunk WHERE doc_id = ?", (doc_id,))
                    if chunk_id not in keep or version != versions.get(doc_id)
                ]
                db.executemany("DELETE FROM chunk WHERE id = ? AND version = ?", stale)
            db.execute("COMMIT")

    def set_path(self, doc_id: str, path: str) -> None:
        """Record a document's new source path in its rows' metadata."""
        with self._db() as db:
            rows = db.execute("SELECT id, version, meta FROM chunk WHERE doc_id = ?", (doc_id,)).fetchall()
            db.execute("BEGIN")
            db.executemany(
                "UPDATE chunk SET meta = ? WHERE id = ? AND version = ?",
                [(json.dumps({**json.loads(meta), "path": path}, separators=(",", ":")), i, v) for i, v, meta in rows],
            )
            db.execute("COMMIT")

    def clear(self) -> None:
        with self._db() as db:
            db.execute("DELETE FROM chunk")
