"""The README's configuration table stays true to Settings, and docs/bad-inputs.md names tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

from rag.config import PROJECT_ROOT, Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BAD_INPUTS = (ROOT / "docs" / "bad-inputs.md").read_text(encoding="utf-8")


def test_every_setting_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(CITELINE_[A-Z_]+)` \| `([^`]*)` \|", README, flags=re.MULTILINE))

    def shown(default: object) -> str:
        """Defaults inside the project are shown relative to it, those in the home folder from ~."""
        if isinstance(default, Path) and default.is_relative_to(PROJECT_ROOT):
            return default.relative_to(PROJECT_ROOT).as_posix()
        if isinstance(default, Path) and default.is_relative_to(Path.home()):
            return f"~/{default.relative_to(Path.home()).as_posix()}"
        return str(default)

    expected = {f"CITELINE_{name.upper()}": shown(field.default) for name, field in Settings.model_fields.items()}
    assert rows == expected


def test_every_bad_input_row_names_tests_that_exist() -> None:
    section = BAD_INPUTS.split("# Bad inputs tried", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| bad input")]
    assert len(rows) >= 15
    tests = Path(__file__).resolve().parent
    for row in rows:
        named = re.findall(r"`(test_\w+)::(test_\w+)`|`(test_\w+)`", row.rsplit("|", 2)[-2])
        assert named, row
        module = ""
        for file_name, test, other in named:
            module = file_name or module
            name = test or other
            assert f"def {name}(" in (tests / f"{module}.py").read_text(encoding="utf-8"), f"{module}::{name}"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#{1,6} (.+)$", prose, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        prose = re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL))
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: {target}"
            if anchor:
                assert anchor in _anchors(linked.read_text(encoding="utf-8")), f"{page.name}: {target}"
