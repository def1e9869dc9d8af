"""Reading and writing the trained models in rag/models: each is a record (JSON) and one or more
LightGBM model texts, written so that the same fit gives the same bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def read_model_files(
    folder: Path, meta_file: str, model_files: Sequence[str], error: type[Exception], what: str, retrain: str
) -> tuple[dict[str, Any], list[str]]:
    """The record and the model texts in `folder`; `error` naming `what` and how to `retrain`
    when one is missing or unreadable."""
    try:
        meta = json.loads((folder / meta_file).read_text(encoding="utf-8"))
        return meta, [(folder / name).read_text(encoding="utf-8") for name in model_files]
    except (OSError, json.JSONDecodeError) as problem:
        raise error(f"the {what} cannot be read from {folder} ({problem}); {retrain}") from problem


def write_model_files(folder: Path, meta_file: str, models: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """Each booster's text under its file name, and the record with sorted keys."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, booster in models.items():
        (folder / name).write_text(booster.model_to_string(), encoding="utf-8")
    (folder / meta_file).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
