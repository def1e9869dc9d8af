"""The sentence-transformers model run by ONNX Runtime, in float32 or with int8 weights.

sentence-transformers' own ONNX backend needs optimum-onnx, which requires transformers < 4.58
(we pin 5.x), so Citeline exports the model itself: PyTorch traces the transformer together
with the model's mean pooling and normalisation into one graph, once per machine, into the
model cache (nothing is downloaded), and ONNX Runtime's dynamic quantization gives the int8
copy. Running it needs only onnxruntime, tokenizers and NumPy: no PyTorch import, which is
most of a new process's start.

The int8 copy quantizes every matrix product per output channel; one scale per tensor moved
vectors far more (cosine to PyTorch's as low as 0.88 on realtimeqa chunks, against 0.98).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import CitelineError

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime

# Bump when the export or the quantization changes: cached files of another recipe are not reused.
EXPORT_RECIPE = "mean-pool+l2norm, opset 17, torchscript exporter; int8: dynamic, per-channel QInt8 weights"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


class OnnxExportError(CitelineError, RuntimeError):
    """The model cannot be run with an ONNX backend."""


def _weights_file(model_path: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_path / name).is_file():
            return model_path / name
    raise OnnxExportError(
        f"No model.safetensors or pytorch_model.bin in {model_path}; set CITELINE_EMBEDDING_BACKEND=torch "
        "or CITELINE_EMBEDDING_MODEL to a sentence-transformers model folder."
    )


def _check_mean_pooling(model_path: Path) -> None:
    """The exported graph pools by the mean of the token vectors, as all-MiniLM-L6-v2 does."""
    config_file = model_path / "1_Pooling" / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    if not config.get("pooling_mode_mean_tokens", False):
        raise OnnxExportError(
            f"The ONNX backends support mean-pooling models only, and {model_path} pools otherwise; "
            "set CITELINE_EMBEDDING_BACKEND=torch."
        )


def max_tokens(model_path: Path) -> int:
    """The model's sentence-transformers max_seq_length: longer texts are cut there, as by PyTorch."""
    config_file = model_path / "sentence_bert_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    return int(config.get("max_seq_length", 512))


def cached_model_folder(model_path: Path, cache_dir: Path) -> Path:
    """Where this model's exported files are kept: named by the weights file (path, size and
    time) and the recipe, so a changed model or recipe is exported afresh."""
    weights = _weights_file(model_path)
    stat = weights.stat()
    key = json.dumps([str(weights.resolve()), stat.st_size, stat.st_mtime_ns, EXPORT_RECIPE])
    return cache_dir / f"{model_path.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def exported_model(model_path: Path, cache_dir: Path, quantized: bool) -> Path:
    """The ONNX file for this model (int8 when `quantized`), exported on first use."""
    folder = cached_model_folder(model_path, cache_dir)
    float_file, int8_file = folder / "model.onnx", folder / "model-int8.onnx"
    target = int8_file if quantized else float_file
    if target.is_file():
        return target
    _check_mean_pooling(model_path)
    folder.mkdir(parents=True, exist_ok=True)
    if not float_file.is_file():
        _write_atomically(float_file, lambda path: _export(model_path, path))
    if quantized:
        _write_atomically(int8_file, lambda path: _quantize(float_file, path))
    return target


def _write_atomically(target: Path, write: Any) -> None:
    """Write through a temporary file beside the target, so a reader (another process) never
    sees half a file and an interrupted export leaves nothing behind."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".onnx")
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        temporary.chmod(0o644)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _export(model_path: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformer = AutoModel.from_pretrained(str(model_path), local_files_only=True).eval()

    class SentenceEmbedding(torch.nn.Module):
        """Token vectors -> their mean over the attention mask -> unit length."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in INPUT_NAMES)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python conditions, fixed for any shape here
        torch.onnx.export(
            SentenceEmbedding(),
            example,
            str(target),
            input_names=list(INPUT_NAMES),
            output_names=["sentence_embedding"],
            dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it advises a pre-processing step on every call
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


class OnnxEncoder:
    """Normalised sentence vectors from an exported model: one text per run, the texts of a
    call spread over one single-threaded run per CPU core.

    One text at a time pads nothing, and it keeps an int8 vector independent of its batch:
    dynamic quantization scales activations by the range of the whole input, so the same text
    batched with others came out different (cosine 0.993 to itself alone). Runs on separate
    cores need no synchronisation inside the model, where ONNX Runtime's own two threads wait
    for each other at every operator. On realtimeqa chunks, on this 2-core machine, int8: about
    100 texts/s in batches of 16 with two threads per run, 190 this way.
    """

    def __init__(self, model_path: Path, cache_dir: Path, quantized: bool) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.path = exported_model(model_path, cache_dir, quantized)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.intra_op_num_threads = 1
        self._session: onnxruntime.InferenceSession = onnxruntime.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = [name for name in INPUT_NAMES if name in {i.name for i in self._session.get_inputs()}]
        self._tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_tokens(model_path))
        self._tokenizer.no_padding()
        self._cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.dimension = int(self._session.get_outputs()[0].shape[1])

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:  # noqa: ARG002 - one text per run
        import numpy as np

        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))

        def run(row: int) -> None:
            encoding = encodings[row]
            feeds = {
                "input_ids": np.array([encoding.ids], dtype=np.int64),
                "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([encoding.type_ids], dtype=np.int64),
            }
            vectors[row] = self._session.run(None, {name: feeds[name] for name in self._inputs})[0][0]

        if len(texts) == 1 or self._cores == 1:
            for row in range(len(texts)):
                run(row)
        else:
            with ThreadPoolExecutor(min(self._cores, len(texts)), thread_name_prefix="citeline-onnx") as pool:
                list(pool.map(run, range(len(texts))))  # the session releases the GIL while it runs
        return vectors
