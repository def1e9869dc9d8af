"""RSS and Atom feeds followed: the list and its state in one JSON file, and the refresh.

A refresh asks for the feed with the validators of the last complete refresh (If-None-Match,
If-Modified-Since), so an unchanged feed costs one request answered 304 and nothing else. Of a
changed feed, only entries not stored yet (or whose `updated` changed) are fetched: each entry's
link, through the same safe fetcher as `python -m rag ingest URL`, its article stored like a
fetched page. When the page cannot be had, the entry's own text in the feed is stored instead
and the report says so (as does the document's `origin`). Entries are fetched and stored in
batches of Settings.feed_batch_size and the state is saved after each one, so an interrupted
refresh continues where it stopped; the validators are saved only when every entry got in, so
that a feed with failures is read again next time and the failed entries are retried.
The feed itself is parsed by feedparser from the bytes fetched here: feedparser fetches nothing.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from rag.errors import CitelineError, InputError
from rag.ingest import IngestReport
from rag.loaders import MIN_HTML_WORDS, LoadError, make_document
from rag.types import Document
from rag.url_safety import canonical_url, split_url
from rag.web_articles import fetch_article, undated_warning, url_doc_id

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.fetch import Fetcher
    from rag.pipeline import Assistant

# What a feed may be served as; an HTML page given as a feed is parsed and named as no feed.
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "text/plain",
    "text/html",
    "application/octet-stream",
)
MAX_REASON_CHARS = 200
# progress(entries done, entries to fetch, the feed's URL)
FeedProgress = Callable[[int, int, str], None]


class FeedError(LoadError):
    """A feed that cannot be read (not RSS or Atom, no entry with a link); names the feed's URL."""


@dataclass
class Feed:
    """One followed feed and where its refreshes got to."""

    url: str
    title: str = ""
    etag: str = ""  # validators of the last complete refresh
    last_modified: str = ""
    last_refresh: str = ""  # when the last refresh ended (UTC, ISO), '' before the first
    last_error: str = ""  # what went wrong in it ('' when nothing did)
    entries: dict[str, dict[str, str]] = field(default_factory=dict)  # entry URL -> {"doc_id", "updated"}

    @classmethod
    def of(cls, data: dict[str, Any]) -> Feed:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


class FeedList:
    """The followed feeds in one JSON file (Settings.feeds_file), each change written whole to a
    temporary file and renamed over it, under a lock, so a crash or a second process never
    leaves half a file."""

    def __init__(self, path: Path, lock_timeout: float = 30.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout

    def feeds(self) -> list[Feed]:
        """The feeds in the order they were added."""
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [Feed.of(item) for item in data["feeds"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CitelineError(
                f"{self.path}: the list of feeds cannot be read ({error}); move the file aside to start a new list"
            ) from None

    def get(self, url: str) -> Feed | None:
        key = canonical_url(url)
        return next((feed for feed in self.feeds() if canonical_url(feed.url) == key), None)

    @contextmanager
    def changing(self) -> Iterator[list[Feed]]:
        """The feeds, to change in place; written back when the block ends without an error."""
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.path) + ".lock", timeout=self.lock_timeout):
                feeds = self.feeds()
                yield feeds
                self._write(feeds)
        except Timeout:
            raise CitelineError(
                f"{self.path}: another process kept the list of feeds locked for {self.lock_timeout:g} s; try again"
            ) from None

    def _write(self, feeds: Sequence[Feed]) -> None:
        text = json.dumps({"feeds": [asdict(feed) for feed in feeds]}, ensure_ascii=False, indent=1)
        handle, scratch = tempfile.mkstemp(dir=self.path.parent, prefix=".feeds-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(scratch, self.path)
        except BaseException:
            Path(scratch).unlink(missing_ok=True)
            raise

    def add(self, url: str) -> Feed:
        """Follow a feed (InputError when it is followed already)."""
        split_url(url)
        with self.changing() as feeds:
            if any(canonical_url(feed.url) == canonical_url(url) for feed in feeds):
                raise InputError(f"{url}: this feed is followed already; `python -m rag feeds list` shows the feeds")
            feed = Feed(url.strip())
            feeds.append(feed)
        return feed

    def remove(self, url: str) -> bool:
        """Stop following a feed (its stored articles stay); False when it was not followed."""
        with self.changing() as feeds:
            kept = [feed for feed in feeds if canonical_url(feed.url) != canonical_url(url)]
            removed = len(kept) < len(feeds)
            feeds[:] = kept
        return removed

    def update(self, url: str, change: Callable[[Feed], None]) -> None:
        """Apply `change` to the stored state of one feed (nothing when it was removed meanwhile)."""
        with self.changing() as feeds:
            for feed in feeds:
                if canonical_url(feed.url) == canonical_url(url):
                    change(feed)


def follow(settings: Settings, url: str) -> Feed:
    """Follow a feed: its address checked at once (a refused one is said now, not at the first
    refresh), then added to Settings.feeds_file. Connects to nothing."""
    from rag.fetch import Fetcher

    split_url(url)
    fetcher = Fetcher(settings)
    try:
        fetcher.check(url)
    finally:
        fetcher.close()
    return FeedList(settings.feeds_file).add(url)


@dataclass(frozen=True)
class Entry:
    """What Citeline uses of one feed entry."""

    link: str  # absolute, as the feed gives it ('' when it has none)
    title: str
    updated: str  # the entry's updated (else published) value as written: a change means re-fetch
    published: str
    text: str  # its own content or summary, as plain text


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    entries: list[Entry]
    problem: str = ""  # how the feed is malformed, when its entries could be read all the same


_BLOCKS = re.compile(r"<\s*(?:br|/p|/div|/li|/h[1-6]|/blockquote|/tr)\s*/?>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")


def plain_text(markup: str) -> str:
    """Pure: an entry's (sanitised) HTML as plain text, paragraphs kept apart."""
    text = html.unescape(_TAGS.sub("", _BLOCKS.sub("\n\n", markup)))
    paragraphs = (" ".join(part.split()) for part in re.split(r"\n\s*\n", text))
    return "\n\n".join(part for part in paragraphs if part)


def parse_feed(url: str, body: bytes, content_type: str = "", base: str = "") -> ParsedFeed:
    """The feed's title and entries, read by feedparser from the bytes (never from a URL or a
    file name: the bytes go in as a stream). FeedError naming the URL when they are no feed."""
    import feedparser

    with warnings.catch_warnings():  # feedparser's notice about its `updated` fallback, which is not used
        warnings.simplefilter("ignore", DeprecationWarning)
        parsed = feedparser.parse(
            io.BytesIO(body), response_headers={"content-type": content_type or "application/xml"}
        )
        return _read(url, base, parsed)


def _read(url: str, base: str, parsed: Any) -> ParsedFeed:
    problem = getattr(parsed, "bozo_exception", None) if parsed.bozo else None
    detail = f" ({str(problem)[:MAX_REASON_CHARS]})" if problem else ""
    if parsed.bozo and not parsed.entries:
        raise FeedError(url, f"is not a readable RSS or Atom feed{detail}; check that the address is the feed's")
    if not parsed.entries and not parsed.feed:
        raise FeedError(url, "is not an RSS or Atom feed; check that the address is the feed's")
    entries = []
    for item in parsed.entries:
        link = str(item.get("link") or "")
        contents = item.get("content") or []
        markup = str(contents[0].get("value") or "") if contents else str(item.get("summary") or "")
        entries.append(
            Entry(
                link=urljoin(base or url, link.strip()) if link.strip() else "",
                title=" ".join(str(item.get("title") or "").split()),
                updated=str(item.get("updated") or item.get("published") or ""),  # a change: fetched again
                published=str(item.get("published") or item.get("updated") or ""),
                text=plain_text(markup),
            )
        )
    if entries and not any(entry.link for entry in entries):
        raise FeedError(
            url,
            f"none of its {len(entries)} entries has a link; Citeline stores each entry's article by its address, "
            "so this feed cannot be followed",
        )
    malformed = (
        f"{url}: the feed is not well-formed{detail}; its {len(entries)} readable entries were used" if problem else ""
    )
    return ParsedFeed(" ".join(str(parsed.feed.get("title") or "").split()), entries, malformed)


@dataclass
class FeedReport:
    """What one feed's refresh did."""

    url: str
    not_modified: bool = False  # the feed answered 304: nothing else was fetched
    entries: int = 0  # in the feed
    already_stored: int = 0  # entries passed over: stored, and not updated since
    fetched: list[str] = field(default_factory=list)  # pages fetched
    from_feed: list[str] = field(default_factory=list)  # entries stored from the feed's text, and why
    ingest: IngestReport = field(default_factory=IngestReport)
    error: str = ""  # the feed itself could not be fetched or read

    @property
    def ok(self) -> bool:
        return not self.error and not self.ingest.failed

    def summary(self) -> str:
        if self.error:
            return f"failed: {self.error}"
        if self.not_modified:
            return f"{self.url}: not changed since the last refresh (HTTP 304); nothing fetched"
        return (
            f"{self.url}: {self.entries} entries, {self.already_stored} already stored, "
            f"{len(self.fetched)} pages fetched, {len(self.from_feed)} stored from the feed's own text; "
            f"{self.ingest.summary()}"
        )


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _fallback(feed_title: str, entry: Entry, key: str, reason: str) -> Document | None:
    """The entry's own text as a document, when it has enough of it."""
    if len(entry.text.split()) < MIN_HTML_WORDS:
        return None
    return make_document(
        doc_id=url_doc_id(key),
        text=entry.text,
        title=entry.title or key,
        source=feed_title,
        url=key,
        published=entry.published,
        where=entry.link,
        origin=f"feed entry: the page could not be fetched ({reason[:MAX_REASON_CHARS]})",
    )


class FeedRefresher:
    """Refreshes followed feeds into an Assistant's store; see the module's docstring."""

    def __init__(self, assistant: Assistant, fetcher: Fetcher, feeds: FeedList, batch_size: int) -> None:
        self.assistant = assistant
        self.fetcher = fetcher
        self.feeds = feeds
        self.batch_size = batch_size

    def refresh(self, urls: Sequence[str] = (), progress: FeedProgress | None = None) -> list[FeedReport]:
        """Refresh these feeds (default: every followed one); InputError for one not followed."""
        followed = self.feeds.feeds()
        if urls:
            chosen = []
            for url in urls:
                feed = self.feeds.get(url)
                if feed is None:
                    raise InputError(f"{url}: this feed is not followed; add it first with `python -m rag feeds add`")
                chosen.append(feed)
            followed = chosen
        return [self.refresh_one(feed, progress) for feed in followed]

    def refresh_one(self, feed: Feed, progress: FeedProgress | None = None) -> FeedReport:
        report = FeedReport(feed.url)
        conditional = {}
        if feed.etag:
            conditional["If-None-Match"] = feed.etag
        if feed.last_modified:
            conditional["If-Modified-Since"] = feed.last_modified
        try:
            fetched = self.fetcher.get(feed.url, accept=FEED_TYPES, headers=conditional, what="feed")
            parsed = (
                None
                if fetched.not_modified
                else parse_feed(feed.url, fetched.body, fetched.content_type, fetched.final_url)
            )
        except LoadError as error:
            report.error = message = str(error)
            self.feeds.update(feed.url, lambda state: _ended(state, message))
            return report
        if parsed is None:
            report.not_modified = True
            self.feeds.update(feed.url, lambda state: _ended(state, ""))
            return report
        report.entries = len(parsed.entries)
        if parsed.problem:
            report.ingest.warnings.append(parsed.problem)
        todo = self._new_entries(feed, parsed, report)
        for first in range(0, len(todo), self.batch_size):
            self._batch(feed.url, parsed.title, todo[first : first + self.batch_size], report)
            if progress:
                progress(min(first + self.batch_size, len(todo)), len(todo), feed.url)

        current = {canonical_url(entry.link) for entry in parsed.entries if entry.link}

        def finished(state: Feed) -> None:
            state.title = parsed.title or state.title
            if report.ok:  # every entry in: the next refresh may ask "changed since?"
                state.etag, state.last_modified = fetched.etag, fetched.last_modified
                # Entries that left the feed are forgotten (the state stays the feed's size); one
                # that comes back is found stored by its URL.
                state.entries = {key: seen for key, seen in state.entries.items() if key in current}
            failures = "; ".join(str(error) for error in report.ingest.failed)
            _ended(state, f"{len(report.ingest.failed)} entries failed: {failures}"[:1000] if failures else "")

        self.feeds.update(feed.url, finished)
        return report

    def _new_entries(self, feed: Feed, parsed: ParsedFeed, report: FeedReport) -> list[tuple[Entry, str]]:
        """(entry, its canonical URL) of the entries to fetch: those not stored yet, or updated
        since. An entry this feed has not seen whose URL is stored already (another feed's, or
        `ingest URL`'s) is not fetched again either: it is remembered as it is."""
        keyed: dict[str, Entry] = {}
        for entry in parsed.entries:
            if not entry.link:  # nothing to fetch or key it by, now or later: said, and not retried
                report.ingest.warnings.append(
                    f"{feed.url}: its entry '{entry.title or '(untitled)'}' has no link and was skipped"
                )
                continue
            keyed.setdefault(canonical_url(entry.link), entry)
        expected = {key: feed.entries.get(key, {}).get("doc_id") or url_doc_id(key) for key in keyed}
        stored = self.assistant.store.stored_origins(list(expected.values()))
        todo: list[tuple[Entry, str]] = []
        adopted: dict[str, dict[str, str]] = {}
        for key, entry in keyed.items():
            seen = feed.entries.get(key)
            if expected[key] in stored and (seen is None or seen.get("updated", "") == entry.updated):
                report.already_stored += 1
                if seen is None:
                    adopted[key] = {"doc_id": expected[key], "updated": entry.updated}
                continue
            todo.append((entry, key))
        if adopted:
            self.feeds.update(feed.url, lambda state: state.entries.update(adopted))
        return todo

    def _batch(self, feed_url: str, feed_title: str, batch: Sequence[tuple[Entry, str]], report: FeedReport) -> None:
        """Fetch and store one batch of entries, then save which entries got in."""
        documents = []
        keys = {}
        for entry, key in batch:
            try:
                document = fetch_article(self.fetcher, entry.link)
                report.fetched.append(entry.link)
            except LoadError as error:
                document = _fallback(feed_title, entry, key, error.reason)
                if document is None:
                    report.ingest.failed.append(error)
                    continue
                report.from_feed.append(
                    f"{entry.link}: the page could not be fetched ({error.reason}); "
                    "stored the feed's own text for this entry instead"
                )
            warning = undated_warning(document, entry.link)
            if warning:
                report.ingest.warnings.append(warning)
            if document.id not in keys.values():  # two links to one article: stored once
                documents.append(document)
            keys[key] = document.id
        stored = self.assistant.ingest_documents(documents) if documents else IngestReport()
        _add_up(report.ingest, stored)
        good = set(stored.added) | set(stored.updated) | set(stored.unchanged)
        updated = {key: entry.updated for entry, key in batch}

        def remember(state: Feed) -> None:
            for key, doc_id in keys.items():
                if doc_id in good:
                    state.entries[key] = {"doc_id": doc_id, "updated": updated[key]}

        self.feeds.update(feed_url, remember)


def _ended(state: Feed, error: str) -> None:
    state.last_refresh = _now()
    state.last_error = error


def _add_up(total: IngestReport, part: IngestReport) -> None:
    total.added += part.added
    total.updated += part.updated
    total.unchanged += part.unchanged
    total.failed += part.failed
    total.warnings += part.warnings
    total.chunks_embedded += part.chunks_embedded
    total.seconds += part.seconds
    total.model_load_seconds += part.model_load_seconds
