"""A web page, fetched by URL (rag.fetch), as a Document keyed by its canonical URL.

The article is extracted by trafilatura in the same time- and memory-limited child process as an
HTML file (rag.loaders.read_isolated, rag.extraction's "web" kind). Its publication date is only
ever the page's own (its metadata, read by htmldate without searching the text); never the time it
was fetched: a page that states none is stored undated and the report says so. The document id is
made from the canonical URL, so the same article fetched twice, through another link or with
tracking parameters, is one document, and a changed page replaces it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rag.config import Settings
from rag.fetch import HTML_TYPES, Fetcher, decode_page
from rag.loaders import MIN_HTML_WORDS, LoadError, make_document, read_isolated, slugify
from rag.types import Document
from rag.url_safety import canonical_url

if TYPE_CHECKING:
    from rag.ingest import IngestReport

ORIGIN_PAGE = "web page"


class ArticleError(LoadError):
    """A fetched page that holds no article (a front page, a video, a login wall)."""


def url_doc_id(canonical: str) -> str:
    """Pure: a readable, deterministic document id for a canonical URL: the host and path as a
    slug, and a hash of the whole URL so two URLs never share an id."""
    parts = urlsplit(canonical)
    readable = slugify(f"{parts.hostname or ''} {parts.path}")[:60].strip("-")
    return f"{readable}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


def _same_site(first: str, second: str) -> bool:
    def host(url: str) -> str:
        name = (urlsplit(url).hostname or "").lower()
        return name[4:] if name.startswith("www.") else name

    return host(first) == host(second)


def chosen_canonical(final_url: str, declared: str) -> str:
    """Pure: the page's own canonical URL (<link rel=canonical>, og:url) when it is http(s) on the
    same site as the address it was fetched from, else that address; normalised (canonical_url).
    A canonical on another site is not taken: a page could otherwise claim another outlet's
    article and replace its document; nor one that is the site's front page (a template's
    mistake that would make every article one document)."""
    declared = declared.strip()
    parts = urlsplit(declared)
    # A canonical pointing at the site's front page from an article is a misconfigured template.
    front_page = parts.path in ("", "/") and urlsplit(final_url).path not in ("", "/")
    if parts.scheme.lower() in ("http", "https") and _same_site(declared, final_url) and not front_page:
        return canonical_url(declared)
    return canonical_url(final_url)


def page_document(url: str, final_url: str, html: str, *, origin: str = ORIGIN_PAGE) -> Document:
    """The article of a fetched page (already decoded) as a Document; ArticleError naming the URL
    when it has no article text."""
    page = read_isolated("web", url, f"{final_url}\n{html}".encode())
    if page.get("error"):
        raise ArticleError(url, f"could not be read as a web page ({page['error']}); open it in a browser to check it")
    text = "".join(str(part) for part in page.get("pages", []))  # type: ignore[attr-defined]
    if len(text.split()) < MIN_HTML_WORDS:
        raise ArticleError(
            url,
            "has no article text that could be extracted (a front page, a list of links, a video or a login "
            "page?); give the address of the article itself",
        )
    canonical = chosen_canonical(final_url, str(page.get("canonical") or ""))
    return make_document(
        doc_id=url_doc_id(canonical),
        text=text,
        title=str(page.get("title") or "") or canonical,
        source=str(page.get("sitename") or page.get("hostname") or urlsplit(canonical).hostname or ""),
        url=canonical,
        published=page.get("date") or "",
        where=url,
        origin=origin,
    )


def fetch_article(fetcher: Fetcher, url: str) -> Document:
    """Fetch the page at `url` and extract its article; FetchRefused, FetchError or ArticleError
    (each a LoadError naming the URL) when it cannot be had."""
    fetched = fetcher.get(url, accept=HTML_TYPES)
    return page_document(url, fetched.final_url, decode_page(fetched.body, fetched.charset))


def undated_warning(document: Document, url: str) -> str:
    """What the report says of a page that gives no publication date ('' when it gives one)."""
    if document.published or document.date_warning:
        return ""
    return f"{url}: the page states no publication date; stored undated (date filters and 'as of' leave it out)"


def refusals(settings: Settings, urls: Sequence[str]) -> list[LoadError]:
    """The URLs that would be refused (their scheme, or an address of their host), each as its
    error naming it; connects to nothing. Lets the CLI refuse before the store or model opens."""
    checker = Fetcher(settings)
    refused: list[LoadError] = []
    try:
        for url in urls:
            try:
                checker.check(url)
            except LoadError as error:
                refused.append(error)
    finally:
        checker.close()
    return refused


@dataclass
class UrlIngest:
    """The documents fetched from URLs, and the URLs that failed (each a LoadError naming it)."""

    documents: list[Document] = field(default_factory=list)
    failed: list[LoadError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def fetch_articles(fetcher: Fetcher, urls: Sequence[str]) -> UrlIngest:
    """Fetch each URL's article; a failure is reported by URL and never stops the others. Two URLs
    that lead to one canonical URL give one document."""
    result = UrlIngest()
    seen: set[str] = set()
    for url in urls:
        try:
            document = fetch_article(fetcher, url)
        except LoadError as error:
            result.failed.append(error)
            continue
        if document.id in seen:
            continue
        seen.add(document.id)
        result.documents.append(document)
        warning = undated_warning(document, url)
        if warning:
            result.warnings.append(warning)
    return result


def merged(fetched: UrlIngest, report: IngestReport) -> IngestReport:
    """The ingest report of the fetched documents, with the fetch failures and warnings in it."""
    report.failed = [*fetched.failed, *report.failed]
    report.warnings = [*fetched.warnings, *report.warnings]
    return report
