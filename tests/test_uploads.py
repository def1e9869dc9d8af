from __future__ import annotations

import pytest

from rag.config import Settings
from rag.uploads import UploadError, accept_upload, safe_upload_name

GOOD = b"---\ntitle: Uploaded\n---\nThe uploaded article mentions 77 drones.\n"


@pytest.mark.parametrize("name", ["../x.md", "/etc/passwd.md", "..\\..\\win.md", "a\x00b.md", ".md", "..md", "ok.MD"])
def test_generated_name_is_a_plain_file_name(name: str) -> None:
    generated = safe_upload_name(name, GOOD)
    assert "/" not in generated and "\\" not in generated and "\x00" not in generated
    assert not generated.startswith(".") and generated.endswith(".md") and generated.count(".") == 1


def test_accepted_upload_lands_in_the_corpus_folder_only(settings: Settings) -> None:
    path = accept_upload(settings, "../../escape.md", GOOD)
    assert path.parent == settings.corpus_dir and path.read_bytes() == GOOD
    assert accept_upload(settings, "../../escape.md", GOOD) == path, "same upload, same name"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("", GOOD, "unsupported type"),
        ("notes.exe", GOOD, "unsupported type"),
        ("empty.txt", b"", "is empty"),
        ("binary.txt", bytes(range(256)), "is a binary file, not an article"),
        ("image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file, not an article"),
        ("broken.pdf", b"%PDF-1.4 broken", "PDF"),
    ],
)
def test_rejected_uploads_leave_nothing_behind(settings: Settings, name: str, data: bytes, message: str) -> None:
    before = sorted(p.name for p in settings.corpus_dir.iterdir())
    with pytest.raises(UploadError, match=message) as caught:
        accept_upload(settings, name, data)
    assert str(caught.value).startswith(name or "(no name)")
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == before


def test_size_cap(settings: Settings) -> None:
    small = settings.model_copy(update={"upload_max_bytes": 10})
    with pytest.raises(UploadError, match="over the 10-byte limit"):
        accept_upload(small, "big.md", GOOD)


HTML_PAGE = (
    b"<!doctype html><html><head><title>Drones</title></head><body><article><p>"
    + b"The page says 77 drones were seen. " * 5
    + b"</p></article></body></html>"
)


@pytest.mark.parametrize(
    ("name", "data", "saved_as"),
    [
        ("page.pdf", HTML_PAGE, ".html"),  # an HTML page saved under a .pdf name
        ("notes.html", GOOD, ".txt"),  # plain text under an .html name
        ("notes.md", GOOD, ".md"),
        ("about-html.md", b"# Tags\nAn article explaining the <body> and <article> tags, 77 drones aside.\n", ".md"),
    ],
)
def test_the_type_comes_from_the_content_not_the_name(
    settings: Settings, name: str, data: bytes, saved_as: str
) -> None:
    path = accept_upload(settings, name, data)
    assert path.suffix == saved_as
    assert "77 drones" in path.read_text()


def test_a_pdf_under_a_text_name_is_read_as_a_pdf(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.test_loaders import write_pdf

    pdf = write_pdf(tmp_path / "real.pdf", ["The PDF says 88 drones were seen."]).read_bytes()
    path = accept_upload(settings, "disguised.txt", pdf)
    assert path.suffix == ".pdf" and path.parent == settings.corpus_dir
