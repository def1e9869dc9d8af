"""Importing the library and the app's modules loads no model, database or web stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_rag_and_eval_is_light() -> None:
    code = (
        "import sys, json; import rag, rag.pipeline, rag.retrieval, rag.generation, rag.llm, rag.__main__; "
        "import eval.__main__, eval.configs, eval.runner, eval.report, eval.train_answerer; "
        "heavy = ('torch', 'sentence_transformers', 'chromadb', 'trafilatura', 'pypdf', 'bm25s', 'matplotlib', "
        "'langchain_chroma', 'langchain_text_splitters', 'llama_cpp', 'langchain_openai', 'openai', 'datasketch', 'lightgbm', 'sklearn'); "
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []
