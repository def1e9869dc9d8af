"""Pure: an answer's text as the chat's Markdown, with every [n] a link to its source and the
answer's own "- " lines as a list. Everything else is escaped, so nothing a document says can
render as markup."""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.citations import escape_markdown

_ESCAPED_MARKER = re.compile(r"\\\[(\d+)\\\]")
_LIST_ITEM = re.compile(r"^\s*[-*•]\s+(.*)$")


def source_anchor(turn: int, n: int) -> str:
    """The id of source [n] of the turn-th answer of the page (an HTML id, unique on the page)."""
    return f"answer-{turn}-source-{n}"


def _linked(escaped: str, turn: int, cited: set[int]) -> str:
    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"[\\[{n}\\]](#{source_anchor(turn, n)})" if n in cited else match.group(0)

    return _ESCAPED_MARKER.sub(link, escaped)


def answer_markdown(text: str, turn: int, cited: Iterable[int]) -> str:
    """The answer's text for st.markdown: escaped, its line breaks kept, lines starting "- " as
    list items, and each marker of a cited source a link to that source's anchor."""
    numbers = set(cited)
    blocks: list[str] = []
    in_list = False
    for line in text.split("\n"):
        item = _LIST_ITEM.match(line)
        if item:
            blocks.append(("" if in_list else "\n") + "- " + _linked(escape_markdown(item.group(1)), turn, numbers))
            in_list = True
        else:
            blocks.append(("\n" if in_list else "") + _linked(escape_markdown(line), turn, numbers) + "  ")
            in_list = False
    return "\n".join(blocks).strip()
