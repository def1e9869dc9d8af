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
        ("binary.txt", bytes(range(256)), "binary"),
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
