"""File -> Document for .txt, .md (optional front matter), .html/.htm (trafilatura) and .pdf (pypdf).

Every failure is a `LoadError` that names the file and says what to do; callers report it and
carry on with the other files. A `published` value that is not a date does not stop a file: the
document loads undated, with the warning in `Document.date_warning` (rag.dates).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from rag.dates import date_text, read_date
from rag.errors import CitelineError
from rag.types import Document

MIN_HTML_WORDS = 8
MAX_WRITTEN_DATE_CHARS = 200  # of an unreadable `published` value, kept as written


class LoadError(CitelineError):
    """A file that cannot become a Document; the message names the file and the remedy."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def slugify(text: str) -> str:
    """Lower-case, ASCII letters/digits and single dashes: a readable, stable document id."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80].strip("-")
    return slug or "doc-" + hashlib.sha1(text.encode()).hexdigest()[:10]


def content_hash(text: str, title: str, source: str, url: str, published: str) -> str:
    """Hash of everything stored with a chunk: any change means the document is re-ingested."""
    payload = "\x1f".join((text, title, source, url, published))
    return hashlib.sha256(payload.encode()).hexdigest()


def make_document(
    *,
    doc_id: str,
    text: str,
    title: str,
    source: str = "",
    url: str = "",
    published: object = "",
    path: str = "",
    where: str = "",
    origin: str = "",
) -> Document:
    """Build a Document with normalised fields and its content hash. `published` becomes
    YYYY-MM-DD (rag.dates.read_date); when it was written otherwise the original is kept in
    `published_as_written`, and when it is no date the document is undated and `date_warning`
    (naming `where`, else `path`, else the id) says so."""
    text = text.strip()
    title = " ".join(str(title or "").split()) or doc_id
    source = " ".join(str(source or "").split())
    url = str(url or "").strip()
    published_text, warning = read_date(published, where or path or doc_id)
    written = date_text(published)
    return Document(
        id=doc_id,
        text=text,
        title=title,
        source=source,
        url=url,
        published=published_text,
        path=path,
        content_hash=content_hash(text, title, source, url, published_text),
        published_as_written=written[:MAX_WRITTEN_DATE_CHARS] if written != published_text else "",
        date_warning=warning or "",
        origin=origin,
    )


def _read_text(path: Path, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise LoadError(path, "looks like a binary file, not text; save it as UTF-8 text or use .html or .pdf")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(path, f"is not valid UTF-8 text (byte {exc.start}); re-save it as UTF-8") from exc


def _name_as_title(path: Path) -> str:
    """A readable title from a file name, for documents that state none."""
    return path.stem.replace("-", " ")


def _title_from_text(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 150 and not line.endswith(".") else fallback
    return fallback


def _load_markdown(path: Path, data: bytes) -> Document:
    import frontmatter  # light, but only needed here
    import yaml

    raw = _read_text(path, data)
    try:
        post = frontmatter.loads(raw)
    except yaml.YAMLError as exc:
        raise LoadError(
            path, f"has front matter that is not valid YAML ({exc}); fix the block between the --- lines"
        ) from exc
    meta = post.metadata
    if not isinstance(meta, dict):
        raise LoadError(
            path, "has front matter that is not a set of `key: value` lines; fix the block between the --- lines"
        )
    body = post.content
    return make_document(
        doc_id=slugify(str(meta.get("id") or path.stem)),
        text=body,
        title=str(meta.get("title") or _title_from_text(body, _name_as_title(path))),
        source=str(meta.get("source") or meta.get("author") or ""),
        url=str(meta.get("url") or ""),
        published=meta.get("published") or meta.get("date") or "",
        path=str(path),
    )


EXTRACTION_TIMEOUT_SECONDS = 60.0  # a PDF or HTML page that takes longer to read is refused
EXTRACTION_MEMORY_BYTES = 2 * 1024**3  # address space allowed to the process that reads one PDF or page
_KIND_NAMES = {"pdf": "PDF", "html": "page", "web": "page"}


def read_isolated(kind: str, path: Path | str, data: bytes) -> dict[str, object]:
    """rag.extraction's result for the file (kind "pdf" or "html"), read in a child process that
    is stopped after EXTRACTION_TIMEOUT_SECONDS or when it needs more than EXTRACTION_MEMORY_BYTES."""
    import subprocess
    import sys

    from rag.extraction import OUT_OF_MEMORY

    name = _KIND_NAMES[kind]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rag.extraction", kind, str(EXTRACTION_MEMORY_BYTES)],  # it limits its own memory
            input=data,
            capture_output=True,
            timeout=EXTRACTION_TIMEOUT_SECONDS,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
    except subprocess.TimeoutExpired:
        raise LoadError(
            path,
            f"took more than {EXTRACTION_TIMEOUT_SECONDS:g} s to read and was stopped; "
            f"the {name} may be damaged or hostile (save a simpler copy, e.g. as text, and add that)",
        ) from None
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        # Out of memory shows as our exit status, or (when it struck while Python was starting
        # or importing) as a MemoryError or "Cannot allocate memory" message, or as a signal.
        memory = done.returncode in (OUT_OF_MEMORY, -9) or b"memory" in done.stderr.lower()
        reason = (
            f"needed more than {EXTRACTION_MEMORY_BYTES // 1024**2:,} MB of memory to read and was stopped"
            if memory
            else f"could not be read (the {name} reader exited with status {done.returncode})"
        )
        raise LoadError(path, f"{reason}; the {name} may be damaged or hostile") from None
    if not isinstance(result, dict):
        raise LoadError(path, f"could not be read as a {name}")
    return result


def _load_html(path: Path, data: bytes) -> Document:
    page = read_isolated("html", path, data)
    if page.get("error"):
        raise LoadError(path, f"could not be read as HTML ({page['error']}); the file may be damaged or incomplete")
    text = "".join(str(part) for part in page.get("pages", []))  # type: ignore[attr-defined]
    # A handful of words is a menu or a stub that trafilatura fell back on, not an article.
    if len(text.split()) < MIN_HTML_WORDS:
        raise LoadError(path, "has no article text that could be extracted; check that it is a saved article page")
    return make_document(
        doc_id=slugify(path.stem),
        text=text,
        title=str(page.get("title") or "") or _name_as_title(path),
        source=str(page.get("sitename") or page.get("hostname") or page.get("author") or ""),
        url=str(page.get("url") or ""),
        published=page.get("date") or "",
        path=str(path),
    )


def _load_pdf(path: Path, data: bytes) -> Document:
    if not data.lstrip().startswith(b"%PDF"):
        raise LoadError(path, "is not a PDF (it has no %PDF header); check the file or its extension")
    result = read_isolated("pdf", path, data)
    if result.get("error") == "encrypted":
        raise LoadError(path, "is an encrypted PDF; save an unencrypted copy and add that")
    if result.get("error"):
        raise LoadError(path, f"could not be read as a PDF ({result['error']}); the file may be damaged or incomplete")
    pages = [str(page) for page in result.get("pages", [])]  # type: ignore[attr-defined]
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise LoadError(path, "has no extractable text (it may be scanned images); add a text version instead")
    return make_document(
        doc_id=slugify(path.stem),
        text=text,
        title=str(result.get("title") or "") or _title_from_text(text, _name_as_title(path)),
        source=str(result.get("author") or ""),
        published=str(result.get("created") or ""),
        path=str(path),
    )


def _load_text(path: Path, data: bytes) -> Document:
    """Plain text, taken as it is; a short first line becomes the title."""
    text = _read_text(path, data)
    return make_document(
        doc_id=slugify(path.stem), text=text, title=_title_from_text(text, _name_as_title(path)), path=str(path)
    )


_LOADERS: dict[str, Callable[[Path, bytes], Document]] = {
    ".txt": _load_text,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
}
SUPPORTED_SUFFIXES = frozenset(_LOADERS)


def load_file(path: Path) -> Document:
    """Read one file into a Document, or raise LoadError naming the file and the remedy."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise LoadError(path, f"has an unsupported type '{suffix or '(none)'}'; supported: {supported}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise LoadError(path, "is empty; there is no text to index")
    loader = _LOADERS[suffix]
    try:
        document = loader(path, data)
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser bug on one untrusted file must not escape as a crash
        raise LoadError(path, f"could not be read ({type(exc).__name__}: {exc}); the file may be damaged") from exc
    if not document.text:
        raise LoadError(path, "has no text after its front matter; add the article body")
    return document


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[LoadError]]:
    """Expand folders into the supported files below them (sorted); a missing path is an error.

    Files named explicitly are always returned (an unsupported one fails at load time with a
    clear message); inside folders, hidden files and unsupported types are passed over.
    """
    files: list[Path] = []
    errors: list[LoadError] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in SUPPORTED_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            errors.append(LoadError(path, "does not exist; check the path"))
    return files, errors


def load_documents(paths: Sequence[Path]) -> tuple[list[Document], list[LoadError]]:
    """Load every supported file under the paths, each Document remembering its absolute path.

    A file that cannot be loaded, or whose id another file in the batch already has, is
    returned as a LoadError; it never stops the others.
    """
    files, failed = discover(paths)
    documents: list[Document] = []
    seen: dict[str, str] = {}
    for path in files:
        try:
            document = load_file(path)
        except LoadError as error:
            failed.append(error)
            continue
        if document.id in seen:
            failed.append(
                LoadError(
                    path,
                    f"has the same document id '{document.id}' as {seen[document.id]}; "
                    "rename one file or give it an `id:` in its front matter",
                )
            )
            continue
        seen[document.id] = str(path)
        documents.append(replace(document, path=str(path.resolve())))
    return documents, failed


ARTICLE_FIELDS = "id, title, url, published, source, text"


def load_articles_jsonl(path: Path) -> tuple[list[Document], list[LoadError]]:
    """Articles from a .jsonl file, one JSON object per line with `id` and `text` (and
    optionally `title`, `url`, `published`, `source`): the benchmark corpus format.

    A bad line (not JSON, no id or text, an id used before) is returned as a LoadError naming
    the file and line; it never stops the other lines.
    """
    if not path.is_file():
        raise LoadError(path, f"no such file; give a .jsonl file with one article per line ({ARTICLE_FIELDS})")
    documents: list[Document] = []
    failed: list[LoadError] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                failed.append(
                    LoadError(where, f"is not valid JSON ({error.msg}); each line must be one article object")
                )
                continue
            problem = _article_problem(row, seen)
            if problem:
                failed.append(LoadError(where, problem))
                continue
            seen.add(row["id"])
            documents.append(
                make_document(
                    doc_id=row["id"],
                    text=row["text"],
                    title=str(row.get("title") or ""),
                    source=str(row.get("source") or ""),
                    url=str(row.get("url") or ""),
                    published=row.get("published") or "",
                    where=where,
                )
            )
    return documents, failed


def _article_problem(row: object, seen: set[str]) -> str:
    """What is wrong with one article object, or '' when nothing is."""
    if not isinstance(row, dict):
        return f"must be a JSON object with the fields {ARTICLE_FIELDS}"
    for key in ("id", "text"):
        if not isinstance(row.get(key), str) or not row[key].strip():
            return f"field '{key}' is missing or empty; every article needs an id and its text"
    if row["id"] in seen:
        return f"id '{row['id']}' is used by an earlier line; ids must be unique"
    return ""
