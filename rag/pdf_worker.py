"""Read one PDF (bytes on standard input) and print its text and metadata as JSON.

Run by rag.loaders in a child process with a time and memory limit: pypdf has had decompression
bombs and endless loops on hostile files, and a child that is stopped takes nothing else down.
"""

from __future__ import annotations

import io
import json
import logging
import sys


def extract(data: bytes) -> dict[str, object]:
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


MAX_CHARS = 20_000_000  # more text than this from one PDF is cut (a bomb of text, not an article)


def main(memory_bytes: int) -> None:
    """Load the PDF reader, limit this process's memory, then read the PDF from standard input.
    (The reader is loaded first: under the limit, loading its shared libraries could fail for
    reasons that have nothing to do with the PDF.)"""
    import resource

    import pypdf  # noqa: F401 - loaded before the limit, see above

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    result = extract(sys.stdin.buffer.read())
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
    try:
        main(int(sys.argv[1]))
    except MemoryError:
        sys.exit(OUT_OF_MEMORY)
