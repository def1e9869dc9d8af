"""The shipped corpus: front matter complete, article bodies only, licence lines kept."""

from __future__ import annotations

from pathlib import Path

import frontmatter
import pytest

from rag.chunking import chunk_document
from rag.config import Settings
from rag.loaders import load_file

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
FILES = sorted(CORPUS.glob("*.md"))
PAGE_CHROME = ("• Home", "3 Mins Read", "Comments are closed", "Related News")


def test_corpus_has_the_seed_and_the_three_dod_excerpts() -> None:
    assert len(FILES) == 4
    assert (CORPUS / "north-korean-soldiers-russia.md").exists()
    assert sum("DOD News" in frontmatter.load(f).metadata["source"] for f in FILES) == 3


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_front_matter_and_body(path: Path) -> None:
    meta = frontmatter.load(path).metadata
    for key in ("title", "source", "url", "published"):
        assert key in meta, f"{path.name} lacks {key}"
    if "DOD News" in meta["source"]:
        assert "Public domain" in meta["licence"]
    settings = Settings()
    for chunk in chunk_document(load_file(path), settings.chunk_max_chars, settings.chunk_overlap_sentences):
        for chrome in PAGE_CHROME:
            assert chrome not in chunk.text
