"""The chat's saved conversations on the page (Streamlit): the sidebar's list, the current
conversation of each browser session (its id in the page's URL), and each turn saved as it
happens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from rag.citations import escape_markdown
from rag.errors import InputError
from rag.export import conversation_json, conversation_markdown
from rag.loaders import slugify
from rag.saved_conversations import ConversationLog, ConversationLogError
from rag.types import Answer


@st.cache_resource
def _conversation_log(path: str) -> ConversationLog:
    return ConversationLog(Path(path))


def conversation_log(path: Path) -> ConversationLog | None:
    """The saved conversations, or None (said in the sidebar) when their file cannot be used:
    the chat then works without saving."""
    log = _conversation_log(str(path))
    try:
        log.conversations()
    except ConversationLogError as error:
        st.sidebar.error(escape_markdown(str(error)))
        return None
    return log


def messages_of(log: ConversationLog, conversation_id: str) -> list[dict[str, Any]]:
    """A saved conversation as the chat's messages, answers as they were saved."""
    messages: list[dict[str, Any]] = []
    for turn in log.turns(conversation_id):
        answer = turn.shown
        messages += [
            {"role": "user", "content": turn.question},
            {"role": "assistant", "content": answer.text, "answer": answer},
        ]
    return messages


def open_conversation(log: ConversationLog, conversation_id: str | None) -> None:
    """Make a saved conversation (or, for None, a new empty one) this session's current one;
    its id goes in the page's URL, so a reload reopens it."""
    st.session_state.conversation_id = conversation_id
    st.session_state.messages = messages_of(log, conversation_id) if conversation_id else []
    if conversation_id:
        st.query_params["conversation"] = conversation_id
    else:
        st.query_params.pop("conversation", None)


def rename_conversation(log: ConversationLog, conversation_id: str) -> None:
    try:
        log.rename(conversation_id, st.session_state[f"title-{conversation_id}"])
    except InputError as error:
        st.session_state.conversation_error = str(error)


def delete_conversation(log: ConversationLog, conversation_id: str) -> None:
    log.delete(conversation_id)
    open_conversation(log, None)


def render_conversations(log: ConversationLog) -> None:
    """New conversation, the saved ones newest first, and the current one's title, export and delete."""
    st.header("Conversations")
    st.button(
        "New conversation", key="new_conversation", icon=":material/add:", on_click=open_conversation, args=(log, None)
    )
    current = st.session_state.get("conversation_id")
    for saved in log.conversations():
        st.button(
            escape_markdown(saved.title),
            key=f"open-{saved.id}",
            type="primary" if saved.id == current else "tertiary",
            on_click=open_conversation,
            args=(log, saved.id),
            help=f"{saved.turns} questions, last {saved.updated[:16].replace('T', ' ')} UTC",
        )
    summary = log.get(current) if current else None
    if summary is None:
        return
    with st.expander("This conversation"):
        st.text_input(
            "Title", summary.title, key=f"title-{summary.id}", on_change=rename_conversation, args=(log, summary.id)
        )
        error = st.session_state.pop("conversation_error", "")
        if error:
            st.error(escape_markdown(error))
        turns = log.turns(summary.id)
        name = slugify(summary.title) or "conversation"
        left, right = st.columns(2)
        left.download_button(
            "Markdown", conversation_markdown(summary, turns), f"{name}.md", "text/markdown", on_click="ignore"
        )
        right.download_button(
            "JSON", conversation_json(summary, turns), f"{name}.json", "application/json", on_click="ignore"
        )
        st.button("Delete", icon=":material/delete:", on_click=delete_conversation, args=(log, summary.id))


def save_turn(log: ConversationLog, question: str, answer: Answer) -> None:
    """Save the turn in the current conversation, starting one (titled by the question) if needed."""
    conversation_id = st.session_state.get("conversation_id")
    if conversation_id:
        try:
            log.add_turn(conversation_id, question, answer)
            return
        except InputError:  # deleted in another session: this turn starts a new conversation
            pass
    conversation_id = log.start(question)
    log.add_turn(conversation_id, question, answer)
    st.session_state.conversation_id = conversation_id
    st.query_params["conversation"] = conversation_id


def current_messages(log: ConversationLog | None) -> list[dict[str, Any]]:
    """This session's chat messages; a new session opens the conversation its URL names, if it
    still exists."""
    if "conversation_id" not in st.session_state:
        linked = st.query_params.get("conversation")
        if log is not None and linked and log.get(linked):
            open_conversation(log, linked)
        else:
            st.session_state.conversation_id = None
    return st.session_state.setdefault("messages", [])
