"""The chunks' texts and metadata in one SQLite table beside the embedded Chroma store.

Chroma indexes the trigrams of every stored document for a full-text search Citeline never
uses, which its embedded store does not let us switch off, and keeps each metadata key as a row
of its own: storing chunk texts there was about 60% of an import's write cost, and reading a
question's ~70 candidates from it about 17 ms of a 40 ms hybrid search on 70k chunks. Here one
row per chunk version holds the text and the metadata (as JSON), read by primary key; Chroma
keeps the vectors and the metadata its filters and listings use.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk (
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    text TEXT NOT NULL,
    meta TEXT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE INDEX IF NOT EXISTS chunk_doc ON chunk (doc_id);
"""
# A rowid table: rows of a kilobyte or more in a WITHOUT ROWID table's key B-tree took 4.7 kB
# of disk each (331 MB for 70k chunks), 1.8 kB here. Tables made that way read the same.
AT_ONCE = 500  # ids per query (SQLite's variable limit is far above; keeps statements short)

Record = tuple[str, dict[str, Any]]  # a chunk's text and its metadata


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
            (chunk_id, version, str(meta["doc_id"]), text, json.dumps(dict(meta), separators=(",", ":")))
            for chunk_id, version, text, meta in rows
        ]
        with self._db() as db:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO chunk VALUES (?, ?, ?, ?, ?)", values)
            db.execute("COMMIT")

    def get(self, versions: Mapping[str, str]) -> tuple[dict[str, Record], dict[str, Record]]:
        """The record of each chunk id at the version given, and apart, for ids held only at
        another version, that one (a reader whose view is a write behind, or ahead)."""
        ids = list(versions)
        exact: dict[str, Record] = {}
        other: dict[str, Record] = {}
        with self._db() as db:
            for first in range(0, len(ids), AT_ONCE):
                part = ids[first : first + AT_ONCE]
                marks = ",".join("?" * len(part))
                for chunk_id, version, text, meta in db.execute(
                    f"SELECT id, version, text, meta FROM chunk WHERE id IN ({marks})", part
                ):
                    (exact if versions[chunk_id] == version else other)[chunk_id] = (text, json.loads(meta))
        return exact, {chunk_id: record for chunk_id, record in other.items() if chunk_id not in exact}

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
