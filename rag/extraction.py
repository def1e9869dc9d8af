"""Read one PDF or HTML page (bytes on standard input) and print its text and metadata as JSON.

Run by rag.loaders in a child process with a time and memory limit, as
`python -m rag.extraction pdf|html MEMORY_BYTES`: pypdf has had decompression bombs and endless
loops on hostile files, and lxml/trafilatura can take minutes and gigabytes on a pathological
page (deep nesting, a huge table); a child that is stopped takes nothing else down.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

KINDS = ("pdf", "html", "web")


def extract_pdf(data: bytes) -> dict[str, object]:
    """{"pages": [...], "title", "author", "created"} or {"error": ...} for one PDF."""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # repairs are pypdf's business; failures are ours
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            return {"error": "encrypted"}
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        created = ""
        if info is not None and info.get("/CreationDate"):
            try:
                created = info.creation_date.isoformat() if info.creation_date else ""
            except (ValueError, TypeError):
                created = ""
        return {
            "pages": pages,
            "title": str(info.title or "") if info else "",
            "author": str(info.author or "") if info else "",
            "created": created,
        }
    except MemoryError:
        raise  # reported by the parent as over the memory limit
    except Exception as exc:  # noqa: BLE001 - any parser failure on an untrusted file is a named error, not a crash
        return {"error": f"{type(exc).__name__}: {exc}"}


HTML_FIELDS = ("text", "title", "sitename", "hostname", "author", "url", "date")  # what the loader uses


def extract_html(data: bytes | str, **options: Any) -> dict[str, object]:
    """{"pages": [text], "title", "sitename", "hostname", "author", "url", "date"} for one page
    (an empty text when trafilatura finds no article), or {"error": ...}."""
    import trafilatura

    try:
        extracted = trafilatura.bare_extraction(
            data, with_metadata=True, include_comments=False, include_tables=True, include_images=False, **options
        )
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - as for PDFs
        return {"error": f"{type(exc).__name__}: {exc}"}
    page: dict[str, Any] = (
        {} if extracted is None else extracted if isinstance(extracted, dict) else extracted.as_dict()
    )
    result: dict[str, object] = {key: str(page.get(key) or "") for key in HTML_FIELDS if key != "text"}
    result["pages"] = [str(page.get("text") or "")]
    return result


def extract_web(data: bytes) -> dict[str, object]:
    """As extract_html, for a page fetched from the web (rag/web_articles.py): the input is the
    page already decoded (rag.fetch.decode_page) and sent as UTF-8, its first line the URL it was
    fetched from; the date comes from the page's own metadata only (htmldate without its
    extensive search of the text, which could take any date printed on the page)."""
    from datetime import date

    url, _, html = data.decode("utf-8", errors="replace").partition("\n")
    result = extract_html(
        html,
        url=url,
        date_extraction_params={"original_date": True, "extensive_search": False, "max_date": date.today().isoformat()},
    )
    result["canonical"] = declared_canonical(html, url)
    return result


def declared_canonical(html: str, url: str) -> str:
    """The page's <link rel="canonical"> (else its og:url), made absolute against the URL it was
    fetched from; '' when it declares none. (trafilatura's `url` also takes a <base href>, which
    many pages of one site share, so it cannot key a document.)"""
    from urllib.parse import urljoin

    from lxml import etree
    from lxml import html as lxml_html

    try:
        tree = lxml_html.fromstring(html)
    except (ValueError, etree.ParserError):
        return ""
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and (link.get("href") or "").strip():
            return urljoin(url, str(link.get("href")).strip())
    for meta in tree.iter("meta"):
        if (meta.get("property") or "").lower() == "og:url" and (meta.get("content") or "").strip():
            return urljoin(url, str(meta.get("content")).strip())
    return ""


_EXTRACTORS: dict[str, Callable[[bytes], dict[str, object]]] = {
    "pdf": extract_pdf,
    "html": extract_html,
    "web": extract_web,
}
MAX_CHARS = 20_000_000  # more text than this from one file is cut (a bomb of text, not an article)


def _preload(kind: str) -> None:
    """Import the reader for this kind."""
    if kind == "pdf":
        import pypdf  # noqa: F401
    else:
        import trafilatura  # noqa: F401 - imports lxml and everything bare_extraction uses


def main(kind: str, memory_bytes: int) -> None:
    """Load the reader, limit this process's memory, then read the file from standard input.
    (The reader is loaded first: under the limit, loading its shared libraries could fail for
    reasons that have nothing to do with the file.)"""
    import resource

    _preload(kind)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    result = _EXTRACTORS[kind](sys.stdin.buffer.read())
    pages = result.get("pages")
    if isinstance(pages, list):
        kept, total = [], 0
        for page in pages:
            kept.append(page[: max(0, MAX_CHARS - total)])
            total += len(kept[-1])
        result["pages"] = kept
    json.dump(result, sys.stdout)


OUT_OF_MEMORY = 3  # exit status that tells the parent the memory limit was reached


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: python -m rag.extraction {'|'.join(KINDS)} MEMORY_BYTES")
    try:
        main(sys.argv[1], int(sys.argv[2]))
    except MemoryError:
        sys.exit(OUT_OF_MEMORY)
