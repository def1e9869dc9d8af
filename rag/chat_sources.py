"""The sidebar's "From the web" section (Streamlit): add an article by URL, follow feeds, and
refresh them with a progress bar. The work is rag's (Assistant.ingest_urls, rag.feeds); this
draws it. What a fetch or refresh did is kept in the session and shown after the page reruns
with the new documents counted."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from rag.citations import escape_markdown
from rag.errors import CitelineError
from rag.feeds import FeedList, FeedReport, follow

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.ingest import IngestReport
    from rag.pipeline import Assistant

NOTES = "web_notes"  # session key: (kind, text) messages of the last fetch or refresh


def _note(kind: str, text: str) -> None:
    st.session_state.setdefault(NOTES, []).append((kind, text))


def _show_notes() -> None:
    for kind, text in st.session_state.pop(NOTES, []):
        getattr(st, kind)(escape_markdown(text))


def _note_report(report: IngestReport, label: str) -> None:
    for failure in report.failed:
        _note("error", str(failure))
    for warning in report.warnings:
        _note("warning", warning)
    if report.embedded or report.unchanged:
        _note("success", f"{label}: {report.summary()}")


def add_by_url(assistant: Assistant, url: str) -> None:
    """Fetch one article and store it; what happened is noted for the next run of the page."""
    with st.spinner(f"Fetching {url}…"):
        report = assistant.ingest_urls([url])
    _note_report(report, url)


def refresh_feeds(assistant: Assistant) -> list[FeedReport]:
    """Refresh every followed feed, with a progress bar per batch of entries."""
    bar = st.progress(0.0, text="Refreshing the feeds…")

    def progress(done: int, total: int, url: str) -> None:
        bar.progress(done / total if total else 1.0, text=f"{url}: {done} of {total} new entries")

    reports = assistant.feed_refresher().refresh(progress=progress)
    bar.empty()
    for report in reports:
        if report.error:
            _note("error", report.error)
            continue
        for line in report.from_feed:
            _note("warning", line)
        _note_report(report.ingest, report.url)
        if report.not_modified or not (report.ingest.embedded or report.ingest.unchanged):
            _note("info", report.summary())
    return reports


def render_feed_list(settings: Settings) -> bool:
    """The followed feeds with their last refresh; returns whether there are any."""
    try:
        feeds = FeedList(settings.feeds_file).feeds()
    except CitelineError as error:
        st.error(escape_markdown(str(error)))
        return False
    for feed in feeds:
        line = f"- {escape_markdown(feed.title or feed.url)}  \n  last refresh: {feed.last_refresh or 'never'}"
        if feed.title:
            line += f"  \n  {escape_markdown(feed.url)}"
        st.markdown(line)
        if feed.last_error:
            st.caption(escape_markdown(f"Last error: {feed.last_error}"))
    return bool(feeds)


def render_web_sources(assistant: Assistant, settings: Settings) -> None:
    """Add by URL, the feeds, and their refresh button."""
    st.header("From the web")
    _show_notes()
    with st.form("add_url_form", clear_on_submit=True):
        url = st.text_input("Add by URL", placeholder="https://…/article", key="add_url_text")
        fetch = st.form_submit_button("Fetch and add", key="add_url")
    if fetch and url.strip():
        add_by_url(assistant, url.strip())
        st.rerun()
    st.subheader("Feeds")
    followed = render_feed_list(settings)
    with st.form("add_feed_form", clear_on_submit=True):
        feed_url = st.text_input("Follow a feed (RSS or Atom)", placeholder="https://…/feed.xml", key="feed_url_text")
        add = st.form_submit_button("Follow", key="add_feed")
    if add and feed_url.strip():
        try:
            follow(settings, feed_url.strip())
            _note("success", f"Following {feed_url.strip()}; refresh to fetch its articles.")
        except CitelineError as error:
            _note("error", str(error))
        st.rerun()
    if followed and st.button("Refresh feeds", key="refresh_feeds"):
        refresh_feeds(assistant)
        st.rerun()
