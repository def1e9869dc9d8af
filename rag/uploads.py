"""Untrusted uploads -> files in the corpus folder, under safe generated names.

The browser-supplied name only contributes a slug to the new name; it never becomes a path,
and the file's type is read from its content, not from the name. A file is checked by loading
it before it is kept, so a bad upload leaves nothing behind. PDF and HTML files are read in a
child process with a time and memory limit (rag.loaders, rag.extraction).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from rag.config import Settings
from rag.errors import CitelineError
from rag.loaders import SUPPORTED_SUFFIXES, LoadError, load_file, slugify


class UploadError(CitelineError, ValueError):
    """An upload that was refused; the message names the file and what to do."""


def _label(original_name: str) -> str:
    """The browser's name made printable, for messages only."""
    return original_name.replace("\x00", "\\0") or "(no name)"


_TEXT_SUFFIXES = (".md", ".markdown", ".txt")
_HTML = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.IGNORECASE | re.DOTALL)


def detected_suffix(declared: str, data: bytes) -> str:
    """The type the content shows, as a suffix: '.pdf' for a %PDF header, '.html' for a page
    that starts as one (<!doctype html> or <html>),
    else text (the declared .md/.markdown/.txt, or '.txt'). The browser's name is not trusted
    for this: a "report.pdf" that is an HTML page is read as HTML."""
    head = data[:8192]
    if head.lstrip().startswith(b"%PDF"):
        return ".pdf"
    if b"\x00" in head:
        return ""  # binary, and not a PDF: nothing Citeline reads
    if _HTML.match(head):
        return ".html"
    return declared if declared in _TEXT_SUFFIXES else ".txt"


def safe_upload_name(original_name: str, data: bytes) -> str:
    """`<slug of the name>-<content hash><suffix>`: no directories, no dots but the suffix,
    which follows the content (detected_suffix), not the name."""
    base = PureWindowsPath(PurePosixPath(original_name.replace("\x00", "")).name).name
    stem, dot, extension = base.rpartition(".")
    declared = f".{extension.lower()}" if dot else ""
    if declared not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UploadError(f"{_label(original_name)}: unsupported type '{declared or '(none)'}'; upload {supported}")
    suffix = detected_suffix(declared, data)
    if not suffix and data.strip():
        raise UploadError(
            f"{_label(original_name)}: is a binary file, not an article; upload text, Markdown, HTML or PDF"
        )
    slug = slugify(stem)[:60] if any(ch.isalnum() for ch in stem) else "upload"
    return f"{slug}-{hashlib.sha256(data).hexdigest()[:10]}{suffix or declared}"


def accept_upload(settings: Settings, original_name: str, data: bytes) -> Path:
    """Validate an uploaded file and save it into the corpus folder; returns the saved path."""
    label = _label(original_name)
    if len(data) > settings.upload_max_bytes:
        raise UploadError(
            f"{label}: {len(data):,} bytes is over the {settings.upload_max_bytes:,}-byte limit "
            "(CITELINE_UPLOAD_MAX_BYTES)"
        )
    name = safe_upload_name(original_name, data)
    with tempfile.TemporaryDirectory() as scratch:
        candidate = Path(scratch) / name
        candidate.write_bytes(data)
        try:
            load_file(candidate)
        except LoadError as error:
            raise UploadError(f"{label}: {error.reason}") from error
        settings.corpus_dir.mkdir(parents=True, exist_ok=True)
        target = settings.corpus_dir / name
        shutil.move(str(candidate), target)
    return target
