"""The README's configuration table stays true to Settings."""

from __future__ import annotations

import re
from pathlib import Path

from rag.config import PROJECT_ROOT, Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(CITELINE_[A-Z_]+)` \| `([^`]*)` \|", README, flags=re.MULTILINE))

    def shown(default: object) -> str:
        """Defaults inside the project are shown relative to it."""
        if isinstance(default, Path) and default.is_relative_to(PROJECT_ROOT):
            return default.relative_to(PROJECT_ROOT).as_posix()
        return str(default)

    expected = {f"CITELINE_{name.upper()}": shown(field.default) for name, field in Settings.model_fields.items()}
    assert rows == expected
