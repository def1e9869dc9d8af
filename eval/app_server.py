"""The chat as a person uses it: `python -m rag serve` (Streamlit) on a loopback port, and the system's
Chromium driven by Playwright. Used by the browser tests and by `python -m eval.startup`.

Playwright's own browser download is not reachable here, so Playwright is pointed at the
Chromium of the system's packages (`apt-get install chromium`), started with the flags that keep
it from reaching for Google's services on a closed network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eval.llm_server import ServerError, free_port, stop, wait_until_serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+)")
ANSWERS = '[data-testid="stChatMessage"]:has([data-testid="stChatMessageAvatarAssistant"])'  # the chat's answers


class BrowserSetupError(RuntimeError):
    pass


def chromium_path() -> str:
    """The system's Chromium, or a message saying how to install it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise BrowserSetupError(
            "Chromium is not installed: the browser tests use the system's package. "
            "Install it with `sudo apt-get install chromium` (make test does this when run as root)."
        )
    return found


@dataclass
class RunningApp:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]  # the CITELINE_* settings it runs with
    url_printed_at: float  # time.perf_counter() when the server printed its URL


@contextmanager
def streamlit_app(
    env: dict[str, str], log: Path, port: int | None = None, timeout: float = 120
) -> Iterator[RunningApp]:
    """`python -m rag serve` (what `make run` starts) on 127.0.0.1, with the CITELINE_* variables
    in env; yields once it has printed its URL and answers its health check."""
    port = port or free_port()
    command = [sys.executable, "-m", "rag", "serve", "--server.address", "127.0.0.1"]
    command += ["--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + timeout
        url = ""
        while not url:
            if process.poll() is not None:
                raise ServerError(f"streamlit exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise ServerError(f"streamlit printed no URL in {timeout:.0f} s: {log.read_text()[-2000:]}")
            found = _URL_LINE.search(log.read_text())
            url = found.group(1) if found else ""
            time.sleep(0.05)
        printed = time.perf_counter()
        wait_until_serving(process, f"{url}/_stcore/health", log, deadline, "streamlit", poll=0.1)
        yield RunningApp(url, process, log, env, printed)
    finally:
        stop(process)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless system Chromium under Playwright."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def ask(page: Page, question: str, timeout_ms: float = 120_000) -> None:
    """Type a question into the chat and wait until its answer is on screen (the page stops
    running and one more assistant message is there)."""
    before = page.locator(ANSWERS).count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        "([selector, n]) => document.querySelectorAll(selector).length > n", arg=[ANSWERS, before], timeout=timeout_ms
    )
    wait_until_idle(page, timeout_ms)


def wait_until_idle(page: Page, timeout_ms: float = 120_000) -> None:
    """Wait until the script has finished running, and is still finished a moment later (an
    answer's run ends by asking for one more run, which lists the conversation)."""
    idle = '[data-testid="stApp"][data-test-script-state="notRunning"]'
    for _ in range(2):
        page.wait_for_selector(idle, state="attached", timeout=timeout_ms)
        page.wait_for_timeout(400)
    page.wait_for_selector(idle, state="attached", timeout=timeout_ms)
