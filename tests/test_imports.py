"""Importing the library and the app's modules loads no model, database or web stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_rag_is_light() -> None:
    code = (
        "import sys, json; import rag, rag.pipeline, rag.__main__, eval.runner; "
        "print(json.dumps(sorted(m for m in ('torch', 'sentence_transformers', 'chromadb', 'trafilatura', 'pypdf') "
        "if m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []
