"""Pure text functions: sentence spans and sentence-aware chunks with character offsets.

Everything here works on character offsets into the document text, so a citation can always
point back at the exact sentence it quotes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from rag.types import Chunk, Document

# Words that end in a period without ending a sentence (titles, ranks, months, corporate forms).
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st gen maj lt col capt cmdr adm sgt cpl pvt gov sen rep pres
    rev hon gov messrs inc corp co ltd llc dept univ assn bros vs etc approx est no nos fig
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun
    a.m p.m u.s u.k u.n e.g i.e d.c""".split()
)

# A candidate end: terminal punctuation, optional closing quotes/brackets, then whitespace.
_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
_PARAGRAPH = re.compile(r"\n\s*\n")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_LINE_BREAK = re.compile(r"\n")
_LIST_OR_HEADING = re.compile(r"^(#{1,6}\s|[-*•–]\s|\d{1,3}[.)]\s|>)")


def _is_abbreviation(text: str, period_at: int) -> bool:
    """True when the period at `period_at` closes an abbreviation or an initial ("J.")."""
    # Only the last few characters matter; searching from 0 would make splitting quadratic.
    match = _WORD_BEFORE.search(text, max(0, period_at - 40), period_at)
    if not match:
        return False
    word = match.group(1)
    if len(word) == 1 and word.isupper():
        return True
    return word.lower().rstrip(".") in ABBREVIATIONS


def _is_block_break(text: str, newline_at: int) -> bool:
    """A single newline ends a block (a heading, a list item, a title line) rather than a line
    that was merely wrapped, as in PDFs and hard-wrapped text, which must stay one sentence."""
    line = text[text.rfind("\n", 0, newline_at) + 1 : newline_at].strip()
    next_newline = text.find("\n", newline_at + 1)
    following = text[newline_at + 1 : next_newline if next_newline != -1 else len(text)].strip()
    if not line or not following:
        return True
    if _LIST_OR_HEADING.match(line) or _LIST_OR_HEADING.match(following):
        return True
    if following[0].islower():
        return False  # a wrapped sentence goes on in lower case
    words = line.split()
    capitalised = sum(word[:1].isupper() or not word[:1].isalpha() for word in words)
    return len(words) <= 12 and capitalised / len(words) >= 0.6 and line[-1] not in ",;-"


def _next_starts_sentence(text: str, pos: int) -> bool:
    """A sentence starts at the next non-space character if it is upper case, a digit or a quote."""
    rest = text[pos : pos + 40].lstrip()
    return bool(rest) and (rest[0].isupper() or rest[0].isdigit() or rest[0] in "\"“‘'([")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split text into sentences, returned as (start, end) spans with surrounding space trimmed."""
    cuts: set[int] = {0, len(text)}
    for para in _PARAGRAPH.finditer(text):
        cuts.add(para.start())
    for line in _LINE_BREAK.finditer(text):
        if _is_block_break(text, line.start()):
            cuts.add(line.start())
    for terminal in _END.finditer(text):
        last = terminal.group(0).rstrip("\"'”’)]")
        if last.endswith(".") and len(last) == 1 and _is_abbreviation(text, terminal.start()):
            continue
        if _next_starts_sentence(text, terminal.end()):
            cuts.add(terminal.end())
    spans: list[tuple[int, int]] = []
    ordered = sorted(cuts)
    for start, end in zip(ordered, ordered[1:]):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans


def _split_long(start: int, end: int, max_chars: int, text: str) -> Iterator[tuple[int, int]]:
    """Cut a sentence longer than max_chars at word boundaries."""
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars)
        if cut <= start:
            cut = start + max_chars
        yield start, cut
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        yield start, end


def chunk_spans(text: str, max_chars: int, overlap_sentences: int) -> list[tuple[int, int]]:
    """Group consecutive sentences into spans of at most max_chars, repeating the last
    `overlap_sentences` sentences of each span at the start of the next."""
    sentences = [piece for s, e in sentence_spans(text) for piece in _split_long(s, e, max_chars, text)]
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(sentences):
        last = first
        while last + 1 < len(sentences) and sentences[last + 1][1] - sentences[first][0] <= max_chars:
            last += 1
        spans.append((sentences[first][0], sentences[last][1]))
        if last + 1 >= len(sentences):
            break
        first = max(first + 1, last + 1 - overlap_sentences)
        if sentences[last + 1][1] - sentences[first][0] > max_chars:
            first = last + 1  # the overlap would leave no room for anything new

    return spans


def chunk_id(doc_id: str, content_hash: str, index: int) -> str:
    """Deterministic: the same document content always yields the same chunk ids."""
    digest = hashlib.sha1(f"{doc_id}\x00{content_hash}".encode()).hexdigest()[:12]
    return f"{doc_id}:{digest}:{index}"


def heading(title: str, published: str) -> str:
    """A document's title and date as one line ("Title — 2023-01-05"), which each of its chunks
    is indexed with: a passage rarely repeats its story's subject ("the agency said 1,500
    soldiers ..."), so both the dense and the lexical side need the context a question names."""
    return " — ".join(part for part in (title, published) if part)


def indexed_text(chunk: Chunk) -> str:
    """What the lexical index reads for a chunk: its heading, then its text. The passage shown
    and cited stays the chunk's own text."""
    line = heading(chunk.title, chunk.published)
    return f"{line}\n{chunk.text}" if line else chunk.text


def chunk_document(document: Document, max_chars: int, overlap_sentences: int) -> list[Chunk]:
    """Document -> Chunks that carry the document's id, title, date and source."""
    return [
        Chunk(
            id=chunk_id(document.id, document.content_hash, index),
            doc_id=document.id,
            index=index,
            text=document.text[start:end],
            start=start,
            end=end,
            title=document.title,
            published=document.published,
            source=document.source,
            url=document.url,
        )
        for index, (start, end) in enumerate(chunk_spans(document.text, max_chars, overlap_sentences))
    ]
