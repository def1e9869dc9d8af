"""Citeline chat: ask questions about the corpus and see the passages behind every answer.

Thin on purpose: rag/ does the work; this script lays out the page and keeps the chat state
(answers are drawn by rag/chat_answers.py, saved conversations by rag/chat_conversations.py).
Every piece of document text and metadata is escaped before it reaches Markdown, so nothing in a
document can render as markup, a link or an image.
Run with `make run` (or `python -m rag serve`; `streamlit run app.py` works too, loading on the
first page).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st

from rag.chat_answers import render_answer
from rag.chat_conversations import conversation_log, current_messages, render_conversations, save_turn
from rag.chat_sources import render_web_sources
from rag.citations import escape_markdown
from rag.config import Settings
from rag.errors import CitelineError, InputError
from rag.ingest_worker import IngestJob, IngestWorker
from rag.llm import backend_name
from rag.loaders import SUPPORTED_SUFFIXES
from rag.pipeline import Assistant
from rag.questions import checked_question
from rag.startup import Startup
from rag.store_records import StoredDocument, copies_by_story, document_sources
from rag.types import SearchFilter, Turn
from rag.uploads import UploadError, accept_upload

UPLOAD_TYPES = sorted(suffix.lstrip(".") for suffix in SUPPORTED_SUFFIXES)


def started(settings: Settings) -> tuple[Assistant, IngestWorker, list[str]]:
    """The Assistant, its ingest worker and the corpus files that failed on first start; while
    they load, a progress bar says what is loading. A failed start is shown and stops the page;
    the next page load tries again."""
    startup = Startup.shared(settings)  # begun by `python -m rag serve`, or by the first page
    if not startup.done.is_set():
        bar = st.progress(startup.share, text=f"{startup.stage}…")
        while not startup.wait(0.2):
            bar.progress(startup.share, text=f"{startup.stage}…")
        bar.empty()
    if startup.result is None:
        Startup.discard(settings)
        error = startup.error
        message = str(error) if isinstance(error, CitelineError) else f"Citeline could not start: {error!r}"
        st.error(escape_markdown(message))
        st.stop()
    return startup.result


def conversation(messages: list[dict[str, Any]]) -> list[Turn]:
    """The chat so far as (question, answer) turns, oldest first; a question left without an
    answer (an interrupted run) is skipped."""
    return [
        Turn(asked["content"], answered["content"])
        for asked, answered in zip(messages, messages[1:])
        if asked["role"] == "user" and answered["role"] == "assistant"
    ]


def render_filters(documents: list[StoredDocument], settings: Settings) -> SearchFilter:
    """Source and date filters (starting from those in Settings); searches see only what they allow."""
    st.header("Search only")
    known = document_sources(documents)
    sources = st.multiselect(
        "Sources",
        known,
        default=[s for s in settings.filter_sources if s in known],
        key="filter_sources",
        placeholder="All sources",
    )
    earliest = date(1900, 1, 1)
    since = st.date_input("Published on or after", settings.filter_since, min_value=earliest, key="filter_since")
    until = st.date_input("Published on or before", settings.filter_until, min_value=earliest, key="filter_until")
    as_of = st.date_input(
        "As of (empty: today)",
        settings.as_of,
        min_value=earliest,
        key="as_of",
        help="Answer as a reader on that day would: nothing published later, and nothing undated, is searched.",
    )
    where = SearchFilter(
        tuple(sources),
        since.isoformat() if isinstance(since, date) else "",
        until.isoformat() if isinstance(until, date) else "",
        as_of.isoformat() if isinstance(as_of, date) else "",
    )
    if where.since and where.last_day and where.since > where.last_day:
        st.warning("The date range is empty: the first date is after the second.")
    return where


def render_sidebar(
    assistant: Assistant, worker: IngestWorker, settings: Settings, startup_failures: list[str]
) -> SearchFilter:
    """The corpus, uploads, articles and feeds from the web, and the search filters; returns the filters."""
    documents = assistant.documents()
    with st.sidebar:
        where = render_filters(documents, settings)
        st.header("Corpus")
        left, right = st.columns(2)
        left.metric("Documents", len(documents))
        right.metric("Chunks", sum(d.chunks for d in documents))
        for failure in startup_failures:
            st.warning(f"Not indexed: {escape_markdown(failure)}")
        with st.expander("Documents"):
            copies = copies_by_story(documents)
            for doc in documents:
                line = f"- {escape_markdown(doc.title)} ({escape_markdown(doc.published or 'undated')})"
                if copies[doc.doc_id]:
                    places = ", ".join(
                        f"{other.source or other.doc_id} {other.published}".strip() for other in copies[doc.doc_id]
                    )
                    line += f"  \n  same story also in: {escape_markdown(places)}"
                st.markdown(line)
        with st.form("upload", clear_on_submit=True):
            files = st.file_uploader("Add articles", type=UPLOAD_TYPES, accept_multiple_files=True)
            submitted = st.form_submit_button("Add to corpus", key="add_uploads")
        if submitted and files:
            add_uploads(worker, settings, [(f.name, f.getvalue()) for f in files])
        jobs = [job for job in map(worker.job, st.session_state.get("ingest_jobs", [])) if job is not None]
        watching = any(job.active for job in jobs)
        st.fragment(run_every=1.0 if watching else None)(render_jobs)(worker, [job.id for job in jobs], watching)
        render_web_sources(assistant, settings)
    return where


def add_uploads(worker: IngestWorker, settings: Settings, uploads: list[tuple[str, bytes]]) -> None:
    """Save each valid upload under a safe name and hand them to the ingest worker; report every
    rejection by name. Once saved, a file is indexed even if this page is closed or rerun."""
    saved = []
    for name, data in uploads:
        try:
            saved.append(accept_upload(settings, name, data))
        except UploadError as error:
            st.error(escape_markdown(str(error)))
    if saved:
        st.session_state.setdefault("ingest_jobs", []).append(worker.submit(saved).id)


def render_jobs(worker: IngestWorker, job_ids: list[int], watching: bool) -> None:
    """This session's uploads: progress while they are embedded (refreshed every second), then
    what was added, what failed and why; the whole page reruns when one finishes, so the
    corpus counts and the answers include it."""
    jobs = [job for job in map(worker.job, job_ids[-3:]) if job is not None]
    for job in jobs:
        render_job(job)
    if watching and not any(job.active for job in jobs):
        st.rerun()


def render_job(job: IngestJob) -> None:
    names = escape_markdown(job.names)
    if job.active:
        share = job.done / job.total if job.total else 0.0
        st.progress(share, text=f"Indexing {names}: {job.done} of {job.total or '…'} chunks")
    elif job.error:
        st.error(
            escape_markdown(f"Saved in the corpus folder but not indexed yet ({job.error}); the next ingest adds it.")
        )
    elif job.report is not None:
        for failure in job.report.failed:
            st.error(escape_markdown(str(failure)))
        for warning in job.report.warnings:
            st.warning(escape_markdown(warning))
        st.success(escape_markdown(f"{job.names}: {job.report.summary()}"))


def main() -> None:
    st.set_page_config(page_title="Citeline", page_icon="📰")
    settings = Settings()
    assistant, worker, startup_failures = started(settings)
    log = conversation_log(settings.conversations_file)
    messages = current_messages(log)  # before the sidebar, which marks the current conversation
    if log is not None:
        with st.sidebar:
            render_conversations(log)
    where = render_sidebar(assistant, worker, settings, startup_failures)

    st.title("Citeline")
    st.caption("Answers from your news articles, with the passages they rest on.")
    st.caption(f"Answers written by: {escape_markdown(backend_name(settings))}")
    for i, message in enumerate(messages):
        with st.chat_message(message["role"]):
            if message["role"] == "assistant":
                render_answer(message["answer"], messages[i - 1]["content"] if i else "", i)
                continue
            st.markdown(escape_markdown(message["content"]))
            if i + 1 == len(messages) or messages[i + 1]["role"] != "assistant":
                st.caption("No answer: it was interrupted. Ask again.")

    question = (st.chat_input("Ask about the articles, e.g. How many troops did NIS report?") or "").strip()
    if not question:
        return
    try:
        checked_question(question, settings.question_max_chars)
    except InputError as error:  # refused at once, before it is shown or searched
        st.error(escape_markdown(str(error)))
        return
    history = conversation(messages)
    with st.chat_message("user"):
        st.markdown(escape_markdown(question))
    # The question is kept at once; its answer only when complete. A rerun or a new question
    # mid-stream leaves the question unanswered (and out of the conversation), never half an answer.
    messages.append({"role": "user", "content": question})
    with st.chat_message("assistant"):
        with st.spinner("Searching the articles…"):
            stream = assistant.stream(question, history, where=where)
        draft = st.empty()
        try:
            draft.write_stream(escape_markdown(piece) for piece in stream)
        except BaseException:
            stream.close()  # a rerun or Stop mid-answer: free the model now, store nothing
            raise
        answer = stream.result()
        draft.empty()
        render_answer(answer, question, len(messages))
    messages.append({"role": "assistant", "content": answer.text, "answer": answer})
    if log is not None:
        save_turn(log, question, answer)
        st.rerun()  # the sidebar lists the conversation (new, or now the newest) with this turn


main()
