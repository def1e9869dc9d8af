"""Start llama-cpp-python's OpenAI-compatible server on a free 127.0.0.1 port, for the tests and
for evaluating the `openai` backend without any server of one's own."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MODEL_ALIAS = "smollm2"


class ServerError(RuntimeError):
    """The server exited or did not answer in time; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(
    process: subprocess.Popen[bytes], url: str, log: Path, deadline: float, name: str, poll: float = 0.5
) -> None:
    """Return once GET url answers; ServerError (with the end of the log) if the process exits or
    the monotonic deadline passes first."""
    while True:
        if process.poll() is not None:
            raise ServerError(f"{name} exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise ServerError(f"{name} did not start: {log.read_text()[-2000:]}") from None
            time.sleep(poll)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the process, killing it if it has not ended within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def local_llm_server(model: Path, log: Path, context_tokens: int = 4096, timeout: float = 120) -> Iterator[str]:
    """Serve the GGUF file as model MODEL_ALIAS; yields the base URL (http://127.0.0.1:PORT/v1)."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(context_tokens)]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        wait_until_serving(server, f"{base_url}/models", log, deadline, "the llama-cpp-python server")
        yield base_url
    finally:
        stop(server)
