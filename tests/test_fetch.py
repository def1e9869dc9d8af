"""Fetching safely: the address policy as pure functions, then the fetcher against a real HTTP
server on 127.0.0.1 (allowed only through CITELINE_FETCH_ALLOW_HOSTS), with a counting transport
that shows a refused address is never connected to."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.config import Settings
from rag.extraction import declared_canonical
from rag.fetch import Fetcher, FetchError, decode_page, media_type
from rag.url_safety import FetchRefused, address_problem, canonical_url, host_allowed, looks_like_url, split_url
from rag.web_articles import ArticleError, chosen_canonical, fetch_article, undated_warning, url_doc_id
from tests.conftest import Route, Site

ARTICLE = """<!doctype html><html><head><title>{title}</title>
<meta property="article:published_time" content="{date}">
<meta property="og:site_name" content="Test Gazette">
</head><body><article><h1>{title}</h1>
<p>{body}</p><p>Officials said the figures would be reviewed again next month by the committee.</p>
</article></body></html>"""


def article(title: str, date: str, body: str) -> str:
    return ARTICLE.format(title=title, date=date, body=body)


class CountingTransport(httpx.HTTPTransport):
    """The real transport, remembering every request it was asked to send (the address it went to)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(retries=0, **options)
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(str(request.url))
        return super().handle_request(request)


def fetcher_for(tmp_path: Path, **settings: object) -> tuple[Fetcher, CountingTransport]:
    transport = CountingTransport()
    configured = Settings(store_dir=tmp_path / "store", corpus_dir=tmp_path / "corpus", **settings)  # type: ignore[arg-type]
    return Fetcher(configured, transport=transport), transport


# ----- the policy, pure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.255.255.1", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.5", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6 is judged as the IPv4 address
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("fc00::1", "private"),
        ("93.184.215.14", ""),
        ("2606:4700::1111", ""),
    ],
)
def test_only_public_unicast_addresses_may_be_fetched(address: str, problem: str) -> None:
    found = address_problem(ipaddress.ip_address(address))
    assert (problem in found) if problem else found == ""


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a", "gopher://example.com/", "javascript:alert(1)", "example.com"]
)
def test_only_http_and_https_urls_are_accepted(url: str) -> None:
    with pytest.raises(FetchRefused, match="only http:// and https://") as refused:
        split_url(url)
    assert url in str(refused.value)


def test_the_allowlist_matches_a_host_by_name_or_address() -> None:
    loopback = [ipaddress.ip_address("127.0.0.1")]
    assert host_allowed("127.0.0.1", ["127.0.0.1"])
    assert host_allowed("Intranet.Example", ["intranet.example"])
    assert host_allowed("localhost", ["127.0.0.1"], loopback)
    assert not host_allowed("localhost", [], loopback)
    assert not host_allowed("127.0.0.2", ["127.0.0.1"], [ipaddress.ip_address("127.0.0.2")])


def test_canonical_urls_drop_tracking_fragments_and_case() -> None:
    assert (
        canonical_url("HTTPS://News.Example.COM:443/a/b?utm_source=x&id=3&fbclid=y#top")
        == "https://news.example.com/a/b?id=3"
    )
    assert canonical_url("http://example.com") == "http://example.com/"
    assert canonical_url("http://example.com:8080/x") == "http://example.com:8080/x"
    one, two = url_doc_id("https://example.com/a"), url_doc_id("https://example.com/b")
    assert one != two and one == url_doc_id("https://example.com/a") and one.startswith("example-com-a-")


def test_a_canonical_link_is_taken_only_on_the_same_site() -> None:
    fetched = "https://www.example.com/story?utm_medium=rss"
    assert chosen_canonical(fetched, "https://example.com/2024/story") == "https://example.com/2024/story"
    assert chosen_canonical(fetched, "https://other.example.org/story") == "https://www.example.com/story"
    assert chosen_canonical(fetched, "javascript:x") == "https://www.example.com/story"
    assert chosen_canonical(fetched, "https://www.example.com/") == "https://www.example.com/story"


def test_the_canonical_link_is_read_from_the_page_not_its_base() -> None:
    page = '<html><head><base href="https://example.com/"><link rel="Canonical" href="/news/a?x=1"></head></html>'
    assert declared_canonical(page, "https://example.com/amp/a") == "https://example.com/news/a?x=1"
    assert declared_canonical('<html><head><base href="/"></head></html>', "https://example.com/a") == ""
    assert declared_canonical('<meta property="og:url" content="https://example.com/b">', "https://x/") == (
        "https://example.com/b"
    )


def test_urls_are_told_from_paths() -> None:
    assert looks_like_url("https://example.com/a") and looks_like_url("file:///etc/passwd")
    assert not looks_like_url("corpus/a.md") and not looks_like_url("/tmp/x.html")


@pytest.mark.parametrize(
    ("header", "expected"), [("text/html; charset=windows-1251", ("text/html", "windows-1251")), ("", ("", ""))]
)
def test_media_type_and_charset(header: str, expected: tuple[str, str]) -> None:
    assert media_type(header) == expected


def test_pages_are_decoded_by_header_then_meta_then_utf8() -> None:
    cyrillic = "<html><head><meta charset='windows-1251'></head><body>Привет, мир</body></html>"
    assert "Привет, мир" in decode_page(cyrillic.encode("cp1251"))
    assert "Привет" in decode_page("<p>Привет</p>".encode("koi8_r"), "koi8-r")
    assert decode_page("café".encode()) == "café"
    assert decode_page("café".encode("latin-1")) == "café"  # neither declared nor UTF-8: windows-1252
    assert decode_page("<meta charset=bogus>é".encode()) == "<meta charset=bogus>é"


# ----- refusals before any connection -------------------------------------------------------------


def test_a_loopback_address_is_refused_without_the_allowlist(tmp_path: Path, site: Site) -> None:
    url = site.serve("/a.html", article("A", "2024-11-01", "Some words about the story here."))
    fetcher, transport = fetcher_for(tmp_path)
    with pytest.raises(FetchRefused, match="loopback address") as refused:
        fetcher.get(url)
    assert url in str(refused.value) and "CITELINE_FETCH_ALLOW_HOSTS" in str(refused.value)
    assert transport.sent == [] and site.total() == 0


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "file:///etc/passwd"]
)
def test_metadata_addresses_and_files_are_refused_without_connecting(tmp_path: Path, url: str) -> None:
    fetcher, transport = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",))
    began = time.monotonic()
    with pytest.raises(FetchRefused, match="refused") as refused:
        fetcher.get(url)
    assert time.monotonic() - began < 1.0
    assert url in str(refused.value) and transport.sent == []


def test_a_name_that_resolves_to_a_private_address_is_refused(tmp_path: Path) -> None:
    fetcher, transport = fetcher_for(tmp_path)
    fetcher.resolver = lambda host, port: [ipaddress.ip_address("10.0.0.7")]
    with pytest.raises(FetchRefused, match=r"intranet\.example \(it resolves to 10\.0\.0\.7\) is a private address"):
        fetcher.get("https://intranet.example/a")
    assert transport.sent == []


@pytest.mark.parametrize("target", ["http://10.255.255.1/admin", "http://169.254.169.254/latest/meta-data/"])
def test_a_redirect_to_a_refused_address_is_refused_before_connecting_to_it(
    tmp_path: Path, site: Site, target: str
) -> None:
    start = site.serve("/go", b"", status=302, headers={"Location": target})
    fetcher, transport = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",))
    began = time.monotonic()
    with pytest.raises(FetchRefused) as refused:
        fetcher.get(start)
    assert time.monotonic() - began < 2.0  # no connection attempt to wait out
    assert str(refused.value).startswith(f"{start}: redirected to {target}, which was not fetched: refused: ")
    assert f"{target.split('/')[2]} is a" in str(refused.value)
    assert transport.sent == [start]  # the allowed hop only
    assert site.hits["/go"] == 1


def test_redirects_are_followed_up_to_the_limit(tmp_path: Path, site: Site) -> None:
    body = article("Moved story", "2024-11-02", "The article was moved to a new address this week.")
    final = site.serve("/final.html", body)
    site.serve("/one", status=301, headers={"Location": "/two"})
    site.serve("/two", status=302, headers={"Location": final})
    fetcher, _ = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",))
    fetched = fetcher.get(site.url("/one"))
    assert fetched.final_url == final and b"Moved story" in fetched.body
    fetcher, _ = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",), fetch_max_redirects=1)
    with pytest.raises(FetchError, match="redirected more than 1 times"):
        fetcher.get(site.url("/one"))


# ----- what comes back ------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "phrase"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500")])
def test_http_errors_name_the_url_and_status(tmp_path: Path, site: Site, status: int, phrase: str) -> None:
    url = site.serve("/broken", b"nope", status=status)
    fetcher, _ = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",))
    with pytest.raises(FetchError, match=phrase) as failed:
        fetcher.get(url)
    assert str(failed.value).startswith(f"{url}: ")


def test_a_pdf_or_other_type_is_refused_by_its_content_type(tmp_path: Path, site: Site) -> None:
    pdf = site.serve("/report.pdf", b"%PDF-1.4 ...", content_type="application/pdf")
    image = site.serve("/photo", b"\x89PNG", content_type="image/png")
    fetcher, _ = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",))
    with pytest.raises(FetchError, match=r"is a PDF, not a web page; download it and add the file"):
        fetcher.get(pdf)
    with pytest.raises(FetchError, match=r"is image/png, not a web page"):
        fetcher.get(image)


def test_a_download_stops_at_the_size_cap(tmp_path: Path, site: Site) -> None:
    declared = site.serve("/big.html", b"<p>" + b"x" * 5000)

    def undeclared(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()  # no Content-Length: read until the cap
        handler.wfile.write(b"<p>" + b"y" * 5000)

    site.routes["/stream.html"] = Route(handler=undeclared)
    fetcher, _ = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",), fetch_max_bytes=1000)
    for url in (declared, site.url("/stream.html")):
        with pytest.raises(FetchError, match=r"over the 1,000-byte limit \(CITELINE_FETCH_MAX_BYTES\)") as failed:
            fetcher.get(url)
        assert url in str(failed.value)


def _never_ending(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.end_headers()
    try:
        for _ in range(600):  # 60 s at most, long after the client has given up
            handler.wfile.write(b"<p>more</p>\n")
            handler.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass  # the client hung up, as it should


def test_a_response_that_never_ends_is_cut_off_at_the_deadline(tmp_path: Path, site: Site) -> None:
    site.routes["/forever"] = Route(handler=_never_ending)
    fetcher, _ = fetcher_for(
        tmp_path, fetch_allow_hosts=("127.0.0.1",), fetch_timeout_seconds=5, fetch_deadline_seconds=1.0
    )
    began = time.monotonic()
    with pytest.raises(FetchError, match=r"still sending after 1 s .* cut off \(CITELINE_FETCH_DEADLINE_SECONDS\)"):
        fetcher.get(site.url("/forever"))
    assert time.monotonic() - began < 3.0  # the deadline, not the 5 s read timeout


def test_a_server_that_does_not_answer_times_out(tmp_path: Path, site: Site) -> None:
    def silent(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(3)

    site.routes["/silent"] = Route(handler=silent)
    fetcher, _ = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",), fetch_timeout_seconds=0.5)
    with pytest.raises(FetchError, match=r"did not answer within 0.5 s \(CITELINE_FETCH_TIMEOUT_SECONDS\)") as failed:
        fetcher.get(site.url("/silent"))
    assert site.url("/silent") in str(failed.value)


# ----- a page as a document (the extraction child process) ------------------------------------------


def test_a_page_becomes_a_document_with_its_own_title_date_and_canonical_url(tmp_path: Path, site: Site) -> None:
    page = article("Troops move north", "2024-11-04T10:00:00Z", "The ministry said ten thousand troops moved north.")
    page = page.replace("</head>", f'<link rel="canonical" href="{site.url("/news/troops")}"></head>')
    url = site.serve("/news/troops-amp", page)
    fetcher, _ = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",))
    document = fetch_article(fetcher, url + "?utm_source=rss#comments")
    assert document.title == "Troops move north" and document.published == "2024-11-04"
    assert document.url == site.url("/news/troops") and document.source == "Test Gazette"
    assert document.id == url_doc_id(site.url("/news/troops")) and document.origin == "web page"
    assert "ten thousand troops" in document.text


def test_a_page_in_windows_1251_is_decoded(tmp_path: Path, site: Site) -> None:
    body = article(
        "Новости дня", "2024-11-05", "Министерство сообщило, что войска двинулись на север в понедельник утром."
    ).replace("<head>", '<head><meta charset="windows-1251">')
    url = site.serve("/ru.html", body.encode("cp1251"), content_type="text/html")
    fetcher, _ = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",))
    document = fetch_article(fetcher, url)
    assert document.title == "Новости дня" and "войска двинулись на север" in document.text


def test_a_page_without_article_text_is_a_clear_error(tmp_path: Path, site: Site) -> None:
    url = site.serve("/front", "<html><head><title>Home</title></head><body><a href='/a'>A</a></body></html>")
    fetcher, _ = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",))
    with pytest.raises(ArticleError, match="has no article text that could be extracted") as failed:
        fetch_article(fetcher, url)
    assert str(failed.value).startswith(url)


def test_a_page_without_a_date_is_undated_never_the_fetch_day(tmp_path: Path, site: Site) -> None:
    page = article("No date here", "", "A report without any date in its metadata or its address at all.")
    url = site.serve("/undated", page.replace('<meta property="article:published_time" content="">', ""))
    fetcher, _ = fetcher_for(tmp_path, fetch_allow_hosts=("127.0.0.1",))
    document = fetch_article(fetcher, url)
    assert document.published == "" and document.date_warning == ""
    assert undated_warning(document, url) == (
        f"{url}: the page states no publication date; stored undated (date filters and 'as of' leave it out)"
    )


def test_the_connection_goes_to_the_checked_address_with_the_host_name_kept(tmp_path: Path, site: Site) -> None:
    seen_hosts: list[str] = []

    def echo_host(handler: BaseHTTPRequestHandler) -> None:
        seen_hosts.append(handler.headers.get("Host", ""))
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        handler.wfile.write(b"<p>ok</p>")

    site.routes["/host"] = Route(handler=echo_host)
    port = int(site.base.rsplit(":", 1)[1])
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    fetcher, transport = fetcher_for(tmp_path, fetch_allow_hosts=("news.invalid",))
    fetcher.resolver = resolver
    fetched = fetcher.get(f"http://news.invalid:{port}/host")  # .invalid never resolves in DNS
    assert fetched.body == b"<p>ok</p>"
    assert lookups == ["news.invalid"]  # one lookup; httpx made none (it would have failed)
    assert seen_hosts == [f"news.invalid:{port}"]
    assert transport.sent == [f"http://127.0.0.1:{port}/host"]


def test_each_checked_address_is_tried_in_turn_and_none_answering_is_said(tmp_path: Path, site: Site) -> None:
    url = site.serve("/page", b"<p>ok</p>")
    port = int(site.base.rsplit(":", 1)[1])
    fetcher, transport = fetcher_for(tmp_path, fetch_allow_hosts=("news.invalid",))
    # 127.0.0.2 is loopback too, but nothing listens there: the next checked address is used.
    fetcher.resolver = lambda host, port: [ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.1")]
    assert fetcher.get(f"http://news.invalid:{port}/page").body == b"<p>ok</p>"
    assert transport.sent == [f"http://127.0.0.2:{port}/page", url]
    fetcher.resolver = lambda host, port: [ipaddress.ip_address("127.0.0.2")]
    with pytest.raises(FetchError, match=r"could not connect \(.*\); check the address"):
        fetcher.get(f"http://news.invalid:{port}/page")


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An HTTPS server on 127.0.0.1 whose certificate (self-signed, made by openssl) names
    news.invalid only; yields its port and the certificate to trust."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=news.invalid",
         "-addext", "subjectAltName=DNS:news.invalid", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<p>over TLS</p>")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        server.server_close()


def test_https_goes_to_the_checked_address_and_checks_the_certificate_against_the_host_name(
    tmp_path: Path, tls_site: tuple[int, Path]
) -> None:
    port, cert = tls_site
    transport = CountingTransport(verify=ssl.create_default_context(cafile=str(cert)))
    settings = Settings(store_dir=tmp_path / "store", fetch_allow_hosts=("news.invalid", "other.invalid"))
    fetcher = Fetcher(settings, resolver=lambda host, port: [ipaddress.ip_address("127.0.0.1")], transport=transport)
    assert fetcher.get(f"https://news.invalid:{port}/").body == b"<p>over TLS</p>"
    assert transport.sent == [f"https://127.0.0.1:{port}/"]  # connected to the address, SNI news.invalid
    with pytest.raises(FetchError, match="could not connect .*certificate is not valid for 'other.invalid'"):
        fetcher.get(f"https://other.invalid:{port}/")  # the certificate does not name this host
