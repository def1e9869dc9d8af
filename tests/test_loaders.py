from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fpdf import FPDF

from rag.dates import read_date
from rag.loaders import LoadError, discover, load_articles_jsonl, load_documents, load_file

ARTICLE_HTML = """<!doctype html><html><head><title>Troops arrive | Daily Example</title>
<meta property="og:site_name" content="Daily Example">
<meta property="article:published_time" content="2024-11-04T10:00:00Z"></head>
<body><nav><ul><li><a href="/">Home</a></li><li><a href="/world">World news menu</a></li></ul></nav>
<article><h1>Troops arrive in Kursk</h1>
<p>There are 10,000 North Korean troops in the Kursk region, officials said on Monday after a long briefing.</p>
<p>The officials added that the soldiers had been trained in artillery tactics and trench clearing for weeks.</p>
<p>Analysts expect the deployment to grow further over the coming months, according to several reports.</p>
</article>
<section id="comments" class="comments"><h3>Comments</h3><p class="comment">First! Totally unrelated spam comment here.</p></section>
<footer>Copyright Daily Example. Subscribe to our newsletter.</footer></body></html>"""


def write_pdf(path: Path, lines: list[str], title: str = "", created: dt.datetime | None = None) -> Path:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    if title:
        pdf.set_title(title)
    if created:
        pdf.set_creation_date(created)
    for line in lines:
        pdf.multi_cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def test_markdown_with_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "Some Story.md"
    path.write_text(
        '---\ntitle: "A title"\nsource: Wire\npublished: 2024-10-30\nurl: https://e.com/a\n---\nBody text here.\n'
    )
    doc = load_file(path)
    assert (doc.id, doc.title, doc.source, doc.published, doc.url) == (
        "some-story",
        "A title",
        "Wire",
        "2024-10-30",
        "https://e.com/a",
    )
    assert doc.text == "Body text here."
    assert doc.content_hash and load_file(path).content_hash == doc.content_hash


def test_markdown_without_front_matter_takes_title_from_heading(tmp_path: Path) -> None:
    path = tmp_path / "plain.md"
    path.write_text("# Heading here\n\nFirst paragraph.\n")
    doc = load_file(path)
    assert doc.title == "Heading here" and doc.published == "" and "First paragraph." in doc.text


def test_txt_file(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("Short title\nThe body sentence is here.\n", encoding="utf-8")
    doc = load_file(path)
    assert doc.title == "Short title" and doc.id == "note"


def test_html_keeps_article_and_drops_navigation_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "troops.html"
    path.write_text(ARTICLE_HTML)
    doc = load_file(path)
    assert "10,000 North Korean troops" in doc.text
    assert "artillery tactics" in doc.text
    for chrome in ("World news menu", "unrelated spam comment", "Subscribe to our newsletter"):
        assert chrome not in doc.text
    assert "Troops arrive" in doc.title
    assert doc.published == "2024-11-04"


def test_pdf_text_and_title(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "report.pdf", ["The Pentagon estimated 11,000 troops.", "Second line."], title="PDF Report"
    )
    doc = load_file(path)
    assert "11,000 troops" in doc.text and doc.title == "PDF Report"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.txt", b"", "is empty"),
        ("blank.md", b"  \n\n ", "is empty"),
        ("binary.txt", bytes(range(256)) * 4, "binary"),
        ("latin1.txt", "caf\xe9 ol\xe9".encode("latin-1"), "not valid UTF-8"),
        ("corrupt.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\ngarbage", "PDF"),
        ("fake.pdf", b"just some text, not a pdf", "no %PDF header"),
        ("only-front-matter.md", b"---\ntitle: x\n---\n", "no text"),
        ("bad-yaml.md", b"---\ntitle: [unclosed\n---\nBody.", "not valid YAML"),
        ("page.html", b"<html><body><nav>Home</nav></body></html>", "no article text"),
        ("data.csv", b"a,b\n1,2", "unsupported type"),
    ],
)
def test_bad_files_raise_a_clear_error_naming_the_file(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError) as caught:
        load_file(path)
    assert name in str(caught.value)
    assert expected in str(caught.value)


def test_a_parser_crash_becomes_a_load_error(tmp_path: Path) -> None:
    """pypdf raises NotImplementedError for an unknown stream filter: still a clear, named error."""
    good = write_pdf(tmp_path / "good.pdf", ["Some text."])
    broken = tmp_path / "odd-filter.pdf"
    broken.write_bytes(good.read_bytes().replace(b"/FlateDecode", b"/Foo"))
    with pytest.raises(LoadError, match=r"odd-filter.pdf: could not be read as a PDF \(NotImplementedError"):
        load_file(broken)


def test_txt_is_plain_text_even_with_dashes(tmp_path: Path) -> None:
    path = tmp_path / "memo.txt"
    path.write_text("---\nFrom: the desk\n---\nThe memo body.\n")
    assert "From: the desk" in load_file(path).text


def test_discover_walks_folders_and_reports_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("A.")
    (tmp_path / "sub" / "b.txt").write_text("B.")
    (tmp_path / "notes.csv").write_text("skip")
    (tmp_path / ".hidden.md").write_text("skip")
    files, errors = discover([tmp_path, tmp_path / "missing.md"])
    assert [f.name for f in files] == ["a.md", "b.txt"]
    assert len(errors) == 1 and "missing.md" in str(errors[0]) and "does not exist" in str(errors[0])


def test_a_pdf_that_takes_too_long_is_stopped_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag import loaders

    monkeypatch.setattr(loaders, "EXTRACTION_TIMEOUT_SECONDS", 0.01)  # every real PDF "takes too long" now
    pdf = write_pdf(tmp_path / "slow.pdf", ["Some text."])
    with pytest.raises(LoadError, match=r"slow.pdf: took more than 0.01 s to read and was stopped"):
        load_file(pdf)


def test_a_pdf_that_needs_too_much_memory_is_stopped_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag import loaders

    monkeypatch.setattr(loaders, "EXTRACTION_MEMORY_BYTES", 1024**2)  # 1 MB: less than holding this PDF takes
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.4\n%" + b"x" * 20_000_000)
    with pytest.raises(LoadError, match=r"big.pdf: needed more than 1 MB of memory to read and was stopped"):
        load_file(big)


def test_an_html_page_that_takes_too_long_is_stopped_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTML is read in the same child process as PDFs, under the same limits. One paragraph of
    40,000 links (1 MB) takes trafilatura about 30 s, and twice as many over two minutes (its
    time grows with the square of the links): it is stopped at the limit, not waited for."""
    from rag import loaders

    monkeypatch.setattr(loaders, "EXTRACTION_TIMEOUT_SECONDS", 1.0)
    page = tmp_path / "links.html"
    page.write_text(
        "<html><body><article><p>" + "<a href='/x'>link</a> text " * 40_000 + "</p></article></body></html>"
    )
    with pytest.raises(LoadError, match=r"links.html: took more than 1 s to read and was stopped; the page may be"):
        load_file(page)


def test_an_html_page_that_needs_too_much_memory_is_stopped_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag import loaders

    monkeypatch.setattr(loaders, "EXTRACTION_MEMORY_BYTES", 1024**2)
    page = tmp_path / "huge.html"
    page.write_text(ARTICLE_HTML.replace("<footer>", "<p>" + "filler words " * 1_000_000 + "</p><footer>"))
    with pytest.raises(LoadError, match=r"huge.html: needed more than 1 MB of memory to read and was stopped"):
        load_file(page)


def test_a_markdown_date_in_words_is_stored_as_an_iso_date(tmp_path: Path) -> None:
    path = tmp_path / "dated.md"
    path.write_text("---\npublished: 24 Oct 2024\n---\nBody text here.\n")
    doc = load_file(path)
    assert (doc.published, doc.published_as_written, doc.date_warning) == ("2024-10-24", "24 Oct 2024", "")


def test_an_iso_date_is_kept_with_nothing_written_aside(tmp_path: Path) -> None:
    path = tmp_path / "iso.md"
    path.write_text('---\npublished: 2024-10-30\ndate: "24 Oct 2024"\n---\nBody.\n')  # `published` wins
    doc = load_file(path)
    assert (doc.published, doc.published_as_written, doc.date_warning) == ("2024-10-30", "", "")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("24 Oct 2024", "2024-10-24"),
        ("October 24, 2024", "2024-10-24"),
        ("2024-10-24T08:00:00Z", "2024-10-24"),
        ("2024-10-24T23:30:00-05:00", "2024-10-24"),  # the date as the publisher wrote it, not UTC's
        ("Thu, 24 Oct 2024 08:00:00 EDT", "2024-10-24"),
        ("Sept. 4, 2024", "2024-09-04"),
        ("2024/10/24", "2024-10-24"),
        ("24.10.2024", "2024-10-24"),  # day first: 24 cannot be a month
        ("10/24/2024", "2024-10-24"),
        ("20241024", "2024-10-24"),
        (dt.date(2024, 10, 24), "2024-10-24"),  # YAML's reading of an unquoted 2024-10-24
        (dt.datetime(2024, 10, 24, 8, 0), "2024-10-24"),
        ("", ""),
        (None, ""),
    ],
)
def test_dates_written_in_many_forms_become_iso(written: object, expected: str) -> None:
    assert read_date(written, "a.md") == (expected, None)


UNREADABLE_DATES = [
    "yesterday",
    "TBD",
    "Oct 2024",  # no day: dateutil would fill in today's
    "24 Oct",  # no year
    "2024",
    "Monday",
    "01/02/2024",  # 1 February or 2 January
    "24 Oct 24",  # a two-digit year
    "5 5 5 2024",  # dateutil reads 2005-05-05
    "2024-02-30",
    "2024-10-24 or so",
]


@pytest.mark.parametrize("written", UNREADABLE_DATES)
def test_an_unreadable_date_loads_the_document_undated_with_a_warning_naming_the_file(
    tmp_path: Path, written: str
) -> None:
    path = tmp_path / "odd-date.md"
    path.write_text(f"---\npublished: {json.dumps(written)}\n---\nBody text here.\n")
    documents, failed = load_documents([path])
    assert failed == [] and len(documents) == 1
    doc = documents[0]
    assert (doc.published, doc.published_as_written) == ("", written)
    assert doc.date_warning.startswith(f"{path}: published date '{written}' is not a full, unambiguous date")
    assert "YYYY-MM-DD" in doc.date_warning


def test_a_jsonl_article_date_is_normalised_and_a_bad_one_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    rows = [
        {"id": "a", "text": "First article.", "published": "October 24, 2024"},
        {"id": "b", "text": "Second article.", "published": "soon"},
        {"id": "c", "text": "Third article.", "published": "2024-10-30"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    documents, failed = load_articles_jsonl(path)
    assert failed == []
    assert [(d.published, d.published_as_written) for d in documents] == [
        ("2024-10-24", "October 24, 2024"),
        ("", "soon"),
        ("2024-10-30", ""),
    ]
    assert documents[1].date_warning.startswith(f"{path}:2: published date 'soon'")
    assert documents[0].date_warning == documents[2].date_warning == ""


def test_a_pdf_creation_date_is_stored_as_an_iso_date(tmp_path: Path) -> None:
    created = dt.datetime(2024, 10, 24, 8, 0, tzinfo=dt.UTC)
    doc = load_file(write_pdf(tmp_path / "dated.pdf", ["Some text."], created=created))
    assert doc.published == "2024-10-24" and doc.published_as_written.startswith("2024-10-24T08:00:00")


@pytest.mark.parametrize(
    ("text", "published", "expected"),
    [
        (
            "Zelensky said at the NATO summit last week that 10,000 troops were ready.",
            "2024-10-24",
            [("last week", "2024-10-17")],
        ),
        ("Singh, who spoke to the media today, said about 11,000.", "2024-11-18", [("today", "2024-11-18")]),
        ("The ministry said yesterday that exports rose.", "2024-03-01", [("yesterday", "2024-02-29")]),
        ("Exports may rise in May, the ministry said.", "2024-03-01", []),  # absolute, not relative
        ("The harbour reopened today.", "", []),  # an undated article's "today" is unknown
    ],
)
def test_relative_dates_are_resolved_against_the_publication_date(
    text: str, published: str, expected: list[tuple[str, str]]
) -> None:
    from rag.dates import relative_dates

    assert relative_dates(text, published) == expected


@pytest.mark.parametrize(
    ("phrase", "published", "meant"),
    [
        ("last month", "2024-11-04", "October 2024"),
        ("last week", "2024-11-04", "the week of 28 October 2024"),
        ("yesterday", "2024-03-01", "29 February 2024"),
        ("last year", "2024-11-04", "2023"),
        ("June", "2024-11-04", ""),  # absolute: nothing to resolve
        ("1,500", "2024-11-04", ""),
        ("last month", "", ""),  # an undated article's "last month" is unknown
    ],
)
def test_a_relative_date_is_said_at_its_own_precision(phrase: str, published: str, meant: str) -> None:
    from rag.dates import date_meant

    assert date_meant(phrase, published) == meant
