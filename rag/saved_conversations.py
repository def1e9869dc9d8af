"""The chat's conversations, saved as they happen in one SQLite file beside the store.

One row per conversation (title, when it was started and last added to) and one per turn (the
question and the answer's full `--json` object), so a conversation re-opened after a restart
shows the same answers and sources. Every call opens its own short connection: Streamlit runs
each browser session in its own thread, and SQLite serialises their writes.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.errors import CitelineError, InputError
from rag.types import Answer

TITLE_MAX_CHARS = 80
BUSY_TIMEOUT_SECONDS = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer_json TEXT NOT NULL,
    asked_at TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
"""


class ConversationLogError(CitelineError):
    """The conversations file cannot be read or written."""


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    created: str  # ISO time, UTC
    updated: str
    turns: int


@dataclass(frozen=True)
class SavedTurn:
    question: str
    answer: dict[str, Any]  # the answer's `to_json()` as it was saved
    asked_at: str

    @property
    def shown(self) -> Answer:
        return Answer.from_json(self.answer)


def title_of(question: str) -> str:
    """A conversation's default title: its first question on one line, cut at a word."""
    line = " ".join(question.split())
    if len(line) <= TITLE_MAX_CHARS:
        return line
    return line[: TITLE_MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class ConversationLog:
    """Conversations in an SQLite file (created on first use, with its folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)) as connection:
                connection.execute("PRAGMA foreign_keys = ON")
                if not self._ready:
                    connection.execute("PRAGMA journal_mode = WAL")
                    connection.executescript(_SCHEMA)
                    self._ready = True
                with connection:  # one transaction: committed, or rolled back on an error
                    yield connection
        except (sqlite3.DatabaseError, OSError) as error:
            raise ConversationLogError(
                f"{self.path}: the saved conversations cannot be used ({error}); move the file aside "
                "(or set CITELINE_CONVERSATIONS_PATH) to start a new one. Nothing in it was changed"
            ) from error

    def start(self, first_question: str) -> str:
        """A new, empty conversation titled after its first question; returns its id."""
        conversation_id = uuid.uuid4().hex
        now = _now()
        with self._connection() as db:
            db.execute(
                "INSERT INTO conversations (id, title, created, updated) VALUES (?, ?, ?, ?)",
                (conversation_id, title_of(first_question), now, now),
            )
        return conversation_id

    def add_turn(self, conversation_id: str, question: str, answer: Answer) -> None:
        """Append a turn; the conversation becomes the most recently updated."""
        now = _now()
        with self._connection() as db:
            found = db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id)).rowcount
            if not found:
                raise InputError(f"conversation {conversation_id} no longer exists (it was deleted); start a new one")
            db.execute(
                "INSERT INTO turns (conversation_id, position, question, answer_json, asked_at) "
                "VALUES (?, (SELECT COUNT(*) FROM turns WHERE conversation_id = ?), ?, ?, ?)",
                (conversation_id, conversation_id, question, json.dumps(answer.to_json(), ensure_ascii=False), now),
            )

    def conversations(self, conversation_id: str | None = None) -> list[ConversationSummary]:
        """Every conversation (or the one with that id), the most recently updated first."""
        where, args = ("WHERE c.id = ?", (conversation_id,)) if conversation_id is not None else ("", ())
        with self._connection() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created, c.updated, COUNT(t.position) FROM conversations c "
                f"LEFT JOIN turns t ON t.conversation_id = c.id {where} GROUP BY c.id ORDER BY c.updated DESC, c.id",
                args,
            ).fetchall()
        return [ConversationSummary(*row) for row in rows]

    def get(self, conversation_id: str) -> ConversationSummary | None:
        found = self.conversations(conversation_id)
        return found[0] if found else None

    def turns(self, conversation_id: str) -> list[SavedTurn]:
        """The conversation's turns, oldest first ([] for an unknown id)."""
        with self._connection() as db:
            rows = db.execute(
                "SELECT question, answer_json, asked_at FROM turns WHERE conversation_id = ? ORDER BY position",
                (conversation_id,),
            ).fetchall()
        return [SavedTurn(question, json.loads(answer), asked_at) for question, answer, asked_at in rows]

    def rename(self, conversation_id: str, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise InputError("a conversation's title cannot be empty; type a few words")
        with self._connection() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title[:200], conversation_id))

    def delete(self, conversation_id: str) -> None:
        """The conversation and its turns; unknown ids are ignored."""
        with self._connection() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
