"""Pure: a saved conversation as a Markdown document or a JSON object, for download."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rag.citations import outlet_of
from rag.saved_conversations import ConversationSummary, SavedTurn


def conversation_markdown(conversation: ConversationSummary, turns: Sequence[SavedTurn]) -> str:
    """Questions, answers and, under each answer, its numbered sources (title, outlet, date,
    URL) with the sentence quoted; the text is as the sources wrote it, not escaped."""
    lines = [f"# {conversation.title}", "", f"Citeline conversation started {conversation.created[:16]} UTC.", ""]
    for number, turn in enumerate(turns, start=1):
        answer = turn.shown
        lines += [f"## {number}. {turn.question}", ""]
        if answer.short_answer:
            lines += [f"**Answer: {answer.short_answer_shown}**", ""]
        if answer.notice:
            lines += [f"_{answer.notice}_", ""]
        lines += [answer.text, ""]
        if answer.citations:
            lines += ["Sources:", ""]
        for citation in answer.citations:
            about = ", ".join(
                part for part in (citation.title, outlet_of(citation.source, citation.url), citation.published) if part
            )
            lines.append(f"{citation.n}. {about}" + (f" <{citation.url}>" if citation.url else ""))
            lines.append(f"   > {' '.join(citation.sentence.split())}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def conversation_json(conversation: ConversationSummary, turns: Sequence[SavedTurn]) -> str:
    """The conversation with each turn's answer in the `ask --json` shape."""
    return json.dumps(
        {
            "title": conversation.title,
            "created": conversation.created,
            "turns": [{"question": t.question, "asked_at": t.asked_at, "answer": t.answer} for t in turns],
        },
        ensure_ascii=False,
        indent=2,
    )
