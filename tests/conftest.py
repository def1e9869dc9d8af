"""Shared fixtures: real model (loaded once per process by rag.embeddings), real Chroma in tmp_path."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.pipeline import Assistant

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CORPUS = ROOT / "corpus"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's CITELINE_* variables or writes the default store."""
    import os

    for name in list(os.environ):
        if name.startswith("CITELINE_"):
            monkeypatch.delenv(name)


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(SHIPPED_CORPUS, target)
    return target


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return Settings(corpus_dir=corpus_dir, store_dir=tmp_path / "store")


@pytest.fixture
def assistant(settings: Settings) -> Iterator[Assistant]:
    """An Assistant over the shipped corpus, ingested into a fresh store."""
    built = Assistant.from_settings(settings)
    report = built.ingest()
    assert not report.failed, report.failed
    yield built


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` on a free 127.0.0.1 port for the whole session; yields its URL."""
    import subprocess
    import sys
    import time
    import urllib.request

    from eval.llm_server import free_port

    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    chroma = Path(sys.executable).parent / "chroma"
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [str(chroma), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"chroma run exited: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"chroma run did not start: {(folder / 'server.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@dataclass
class Route:
    """What the test site answers for one path: a fixed response (with a 304 for a conditional
    GET that names its ETag or Last-Modified), or `handler` writing the response itself."""

    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    last_modified: str = ""
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None


@dataclass
class Site:
    """A real HTTP server on a free 127.0.0.1 port (http.server in a thread) that counts the
    requests per path, and which of them were conditional."""

    base: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    conditional: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def serve(self, path: str, body: bytes | str = b"", **route: Any) -> str:
        """Answer GET `path` with this body (str is sent as UTF-8); returns its URL."""
        self.routes[path] = Route(body.encode() if isinstance(body, str) else body, **route)
        return self.url(path)

    def total(self) -> int:
        return sum(self.hits.values())


class _SiteHandler(BaseHTTPRequestHandler):
    site: Site

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: pytest shows the failures."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        site = self.site
        path = self.path.split("?", 1)[0]
        with site.lock:
            site.hits[path] += 1
            route = site.routes.get(path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        if route.handler is not None:
            route.handler(self)
            return
        if route.etag or route.last_modified:
            asked_etag = self.headers.get("If-None-Match")
            asked_since = self.headers.get("If-Modified-Since")
            if asked_etag or asked_since:
                with site.lock:
                    site.conditional[path] += 1
            if (route.etag and asked_etag == route.etag) or (
                not route.etag and route.last_modified and asked_since == route.last_modified
            ):
                self.send_response(304)
                self.end_headers()
                return
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(route.body)))
        if route.etag:
            self.send_header("ETag", route.etag)
        if route.last_modified:
            self.send_header("Last-Modified", route.last_modified)
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(route.body)


@pytest.fixture
def site() -> Iterator[Site]:
    """A test web site on 127.0.0.1 (fetching from it needs CITELINE_FETCH_ALLOW_HOSTS)."""
    served = Site()
    handler = type("Handler", (_SiteHandler,), {"site": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    served.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="test-site", daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
