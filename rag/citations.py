"""Pure functions for citation markers and for showing a cited sentence inside its passage."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from rag.dates import date_meant
from rag.types import Citation

MARKER = re.compile(r"\[(\d+)\]")
# Characters that are Markdown (or Streamlit directive, emoji and math) syntax anywhere...
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>~$|:])")
# ...and what is syntax only at the start of a line: headings, lists, rules, "1." lists.
_LINE_START = re.compile(r"^(\s*)([#+\-=]|\d+(?=[.)]))", re.MULTILINE)


def cited_numbers(text: str) -> list[int]:
    """The distinct marker numbers in the text, in order of first appearance."""
    seen: list[int] = []
    for match in MARKER.finditer(text):
        n = int(match.group(1))
        if n not in seen:
            seen.append(n)
    return seen


def strip_invalid_markers(text: str, valid: Iterable[int]) -> str:
    """Remove markers that point at no source, then tidy the spaces they leave behind."""
    allowed = set(valid)
    cleaned = MARKER.sub(lambda m: m.group(0) if int(m.group(1)) in allowed else "", text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip()


def short_answer_date(short_answer: str, citations: Sequence[Citation]) -> str:
    """What a relative short answer ("last month") meant, read against the publication date of
    the first cited sentence that says it; "" for any other short answer."""
    if not short_answer:
        return ""
    said_in = next((c for c in citations if short_answer.lower() in c.sentence.lower()), None)
    return date_meant(short_answer, said_in.published) if said_in else ""


def outlet_of(source: str, url: str) -> str:
    """Who published a cited article, as shown: its recorded outlet, else its site from the URL
    ("apnews.com"), else "" (never a placeholder)."""
    if source.strip():
        return source.strip()
    host = (urlsplit(url).hostname or "") if url.startswith(("http://", "https://")) else ""
    return host.removeprefix("www.")


def byline(published: str, source: str, url: str) -> str:
    """When and by whom a cited article was published, as shown: "2024-11-04 · DOD News"."""
    return " · ".join(part for part in (published, outlet_of(source, url)) if part)


def highlight_segments(passage: str, start: int, end: int) -> list[tuple[str, bool]]:
    """Split a passage into (text, highlighted) runs with [start, end) highlighted.

    Offsets are clamped to the passage, so a bad span shows the passage plainly rather than failing.
    """
    start = max(0, min(start, len(passage)))
    end = max(start, min(end, len(passage)))
    runs = [(passage[:start], False), (passage[start:end], True), (passage[end:], False)]
    return [run for run in runs if run[0]]


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown and HTML syntax so document text renders as plain text."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)

    def line_start(match: re.Match[str]) -> str:
        indent, mark = match.group(1), match.group(2)
        return f"{indent}{mark}\\" if mark.isdigit() else f"{indent}\\{mark}"

    return _LINE_START.sub(line_start, escaped)
