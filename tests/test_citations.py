from __future__ import annotations

import pytest

from rag.citations import (
    cited_numbers,
    escape_markdown,
    highlight_segments,
    short_answer_date,
    strip_invalid_markers,
)
from rag.types import Citation


@pytest.mark.parametrize(
    ("text", "expected"),
    [("A [1] b [2] c [1].", [1, 2]), ("none", []), ("[10] and [3]", [10, 3]), ("[x] [ 1]", [])],
)
def test_cited_numbers(text: str, expected: list[int]) -> None:
    assert cited_numbers(text) == expected


@pytest.mark.parametrize(
    ("text", "valid", "expected"),
    [
        ("Claim [1]. Other [3].", [1, 2], "Claim [1]. Other."),
        ("Claim [1][2].", [2], "Claim [2]."),
        ("A [9] and [1] b.", [1], "A and [1] b."),
        ("Nothing to strip.", [1], "Nothing to strip."),
        ("Invented [7]", [], "Invented"),
    ],
)
def test_strip_invalid_markers(text: str, valid: list[int], expected: str) -> None:
    assert strip_invalid_markers(text, valid) == expected


@pytest.mark.parametrize(
    ("passage", "start", "end", "expected"),
    [
        ("abc def ghi", 4, 7, [("abc ", False), ("def", True), (" ghi", False)]),
        ("abc", 0, 3, [("abc", True)]),
        ("abc", -5, 99, [("abc", True)]),
        ("abc", 2, 1, [("ab", False), ("c", False)]),
    ],
)
def test_highlight_segments(passage: str, start: int, end: int, expected: list[tuple[str, bool]]) -> None:
    assert highlight_segments(passage, start, end) == expected


def test_escape_markdown_neutralises_markup() -> None:
    escaped = escape_markdown("<script>x</script> *bold* [link](http://e) # h")
    assert "<" not in escaped.replace("\\<", "")
    assert "\\*bold\\*" in escaped and "\\[link\\]" in escaped


def _citation(n: int, sentence: str, published: str) -> Citation:
    return Citation(n, f"doc-{n}", "T", published, "AP", "", sentence, 0, 0, len(sentence), 1.0)


def test_a_relative_short_answer_is_read_against_the_article_that_says_it() -> None:
    citations = [
        _citation(1, "Officials met on Tuesday.", "2024-11-20"),
        _citation(2, "The troops entered Russia last month.", "2024-11-04"),
    ]
    assert short_answer_date("last month", citations) == "October 2024"  # citation 2's date, not 1's
    assert short_answer_date("1,500", citations) == ""
    assert short_answer_date("last week", citations) == ""  # no cited sentence says it
