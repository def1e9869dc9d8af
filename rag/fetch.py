"""Fetch one web page or feed safely: checked addresses, bounded size, time and redirects.

Every hop (the URL given and each redirect) is checked by rag.url_safety before any connection:
the host is resolved once, every address it resolves to must be public (or the host allowlisted
in Settings.fetch_allow_hosts), and the request then goes to the checked address itself, with the
host name kept in the Host header and in TLS (SNI and certificate check), so a second DNS answer
cannot swap in another address between the check and the connection. Redirects are followed here,
never by httpx, so each Location is checked the same way. The body is read in pieces and stopped
at Settings.fetch_max_bytes or when the whole fetch passes Settings.fetch_deadline_seconds (a
server that never ends its response), whichever comes first.
"""

from __future__ import annotations

import codecs
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from rag.config import Settings
from rag.loaders import LoadError
from rag.url_safety import (
    IPAddress,
    address_problem,
    host_allowed,
    literal_address,
    refusal,
    split_url,
)

USER_AGENT = "Citeline/1.0 (news reader; +https://github.com/citeline)"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = ("text/html", "application/xhtml+xml")
Resolver = Callable[[str, int], Sequence[IPAddress]]


class FetchError(LoadError):
    """A URL that could not be fetched (HTTP error, timeout, too large, wrong type); the message
    names the URL and what to do. Nothing stored is touched by it."""


@dataclass(frozen=True)
class Fetched:
    """One successful answer: the body read in full, or `not_modified` for a 304."""

    url: str  # as asked
    final_url: str  # after redirects
    status: int
    content_type: str  # the media type, lower-case, without parameters ('' when not given)
    charset: str  # from the Content-Type header ('' when not given)
    body: bytes
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host name resolves to (one DNS lookup), or FetchError naming the host."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(host, f"the host name could not be resolved ({error}); check the address") from None
    addresses: list[IPAddress] = []
    for info in infos:
        found = literal_address(str(info[4][0]).split("%", 1)[0])  # an IPv6 zone (%eth0) is not part of it
        if found is not None and found not in addresses:
            addresses.append(found)
    if not addresses:
        raise FetchError(host, "the host name resolves to no address; check the address")
    return addresses


def media_type(content_type: str) -> tuple[str, str]:
    """Pure: 'text/html; charset=windows-1251' -> ('text/html', 'windows-1251')."""
    kind, _, parameters = content_type.partition(";")
    charset = ""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
    return kind.strip().lower(), charset


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9._:-]+)""", re.IGNORECASE)


def _known(label: str) -> str:
    try:
        return codecs.lookup(label).name if label else ""
    except LookupError:
        return ""


def decode_page(body: bytes, header_charset: str = "") -> str:
    """Pure: a page's text, decoded with its byte-order mark, the charset its Content-Type header
    names, the one its <meta> (or XML declaration) names, UTF-8, or else windows-1252 (what
    browsers assume for a page that says nothing), in that order. An unknown label is passed over."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return body.decode(name, errors="replace").lstrip("\ufeff")
    head = body[:4096]
    declared = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    for label in (header_charset, declared.group(1).decode("ascii") if declared else ""):
        codec = _known(label)
        if codec:
            return body.decode(codec, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace")


class Fetcher:
    """GETs web pages and feeds under the rules above; one per process is enough.

    `resolver` and `transport` are for tests (a counting transport shows that a refused address
    was never connected to)."""

    def __init__(
        self, settings: Settings, resolver: Resolver = resolve, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.resolver = resolver
        self._client = httpx.Client(
            follow_redirects=False,
            trust_env=False,  # no proxy or .netrc from the environment: the request goes where it was checked
            transport=transport or httpx.HTTPTransport(retries=0),
            # No kept-alive connections: one made for a checked host and address is never reused
            # for another host's request.
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": USER_AGENT},
        )

    def close(self) -> None:
        self._client.close()

    def checked(self, url: str) -> tuple[httpx.URL, list[IPAddress]]:
        """The URL and the addresses to connect to for it (in the resolver's order), once all are
        checked; FetchRefused naming the URL otherwise (before any connection is made)."""
        parts = split_url(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            addresses = self.resolver(host, port)
        except FetchError as error:
            raise FetchError(url, error.reason) from None
        if not host_allowed(host, self.settings.fetch_allow_hosts, addresses):
            for address in addresses:
                problem = address_problem(address)
                if problem:
                    raise refusal(url, host, address, problem)
        return httpx.URL(url.strip()), list(addresses)

    def check(self, url: str) -> None:
        """Raise FetchRefused (or FetchError for a host that does not resolve) for a URL that
        would be refused; connects to nothing."""
        self.checked(url)

    def get(
        self,
        url: str,
        *,
        accept: Sequence[str] = HTML_TYPES,
        headers: Mapping[str, str] | None = None,
        what: str = "web page",
    ) -> Fetched:
        """GET the URL, following up to Settings.fetch_max_redirects checked redirects.

        `accept` lists the media types wanted (empty: any); another type is a FetchError that
        says what the URL is instead. `headers` are sent with the first request (conditional
        GET: If-None-Match, If-Modified-Since); a 304 comes back as `not_modified`.
        Raises FetchRefused or FetchError, each naming the URL."""
        deadline = time.monotonic() + self.settings.fetch_deadline_seconds
        current = url.strip()
        extra = dict(headers or {})
        for hop in range(self.settings.fetch_max_redirects + 1):
            try:
                target, addresses = self.checked(current)
            except LoadError as error:  # FetchRefused, or FetchError for a name that does not resolve
                if hop == 0:
                    raise
                # Named by the URL asked for, and by the redirect that was refused.
                raise type(error)(url, f"redirected to {current}, which was not fetched: {error.reason}") from None
            response = self._send(url, target, addresses, extra, deadline)
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECTS and location:
                    current = urljoin(current, location.strip())
                    extra = {}  # validators belong to the first URL only
                    continue
                return self._read(url, current, response, accept, deadline, what)
            finally:
                response.close()
        raise FetchError(
            url,
            f"redirected more than {self.settings.fetch_max_redirects} times (CITELINE_FETCH_MAX_REDIRECTS); "
            "open it in a browser and give the address it ends at",
        )

    def _send(
        self, asked: str, target: httpx.URL, addresses: Sequence[IPAddress], headers: Mapping[str, str], deadline: float
    ) -> httpx.Response:
        """Open the request to the first checked address that accepts a connection, keeping the
        host name for HTTP and TLS."""
        refused: httpx.ConnectError | None = None
        for address in addresses:
            try:
                return self._send_to(asked, target, address, headers, deadline)
            except httpx.ConnectError as error:  # e.g. an IPv6 address this machine cannot reach
                refused = error
        raise FetchError(
            asked, f"could not connect ({refused}); check the address, or try again later if the site is down"
        )

    def _send_to(
        self, asked: str, target: httpx.URL, address: IPAddress, headers: Mapping[str, str], deadline: float
    ) -> httpx.Response:
        host = target.raw_host.decode("ascii")  # an international name in its IDNA (xn--) form
        host_header = f"[{host}]" if ":" in host else host  # an IPv6 literal in brackets
        if target.port is not None:
            host_header += f":{target.port}"
        request = self._client.build_request(
            "GET",
            target.copy_with(host=str(address)),
            headers={**headers, "Host": host_header},
            extensions={"sni_hostname": host} if target.scheme == "https" else {},
        )
        request.extensions["timeout"] = self._timeouts(deadline)
        try:
            return self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise FetchError(asked, self._timeout_reason()) from None
        except httpx.ConnectError:
            raise
        except httpx.HTTPError as error:
            raise FetchError(
                asked, f"could not be fetched ({type(error).__name__}: {error}); check the address and try again"
            ) from None

    def _timeouts(self, deadline: float) -> dict[str, float]:
        left = max(0.01, min(self.settings.fetch_timeout_seconds, deadline - time.monotonic()))
        return {"connect": left, "read": left, "write": left, "pool": left}

    def _timeout_reason(self) -> str:
        return (
            f"did not answer within {self.settings.fetch_timeout_seconds:g} s (CITELINE_FETCH_TIMEOUT_SECONDS); "
            "the site may be down or slow: try again later"
        )

    def _read(
        self,
        asked: str,
        final: str,
        response: httpx.Response,
        accept: Sequence[str],
        deadline: float,
        what: str,
    ) -> Fetched:
        kind, charset = media_type(response.headers.get("content-type", ""))
        validators = {
            "etag": response.headers.get("etag", ""),
            "last_modified": response.headers.get("last-modified", ""),
        }
        if response.status_code == 304:
            return Fetched(asked, final, 304, kind, charset, b"", **validators)
        if response.status_code >= 400 or response.status_code < 200 or response.status_code in REDIRECTS:
            phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
            raise FetchError(
                asked,
                f"the server answered HTTP {response.status_code}{phrase}; check the address, or try again later",
            )
        if accept and kind and kind not in accept:
            raise FetchError(asked, _wrong_type(kind, what))
        cap = self.settings.fetch_max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FetchError(asked, _too_large(int(declared), cap))
        body = bytearray()
        try:
            for piece in response.iter_bytes():
                body.extend(piece)
                if len(body) > cap:
                    raise FetchError(asked, _too_large(len(body), cap, partial=True))
                if time.monotonic() > deadline:
                    raise FetchError(asked, self._deadline_reason(len(body)))
        except httpx.TimeoutException:
            if time.monotonic() >= deadline - 0.05:
                raise FetchError(asked, self._deadline_reason(len(body))) from None
            raise FetchError(asked, self._timeout_reason()) from None
        except httpx.HTTPError as error:
            raise FetchError(asked, f"the download broke off ({type(error).__name__}); try again later") from None
        return Fetched(asked, final, response.status_code, kind, charset, bytes(body), **validators)

    def _deadline_reason(self, received: int) -> str:
        return (
            f"was still sending after {self.settings.fetch_deadline_seconds:g} s ({received:,} bytes so far) and "
            "was cut off (CITELINE_FETCH_DEADLINE_SECONDS); the server may never end its response"
        )


def _wrong_type(kind: str, what: str) -> str:
    if kind == "application/pdf":
        return f"is a PDF, not a {what}; download it and add the file (python -m rag ingest FILE.pdf, or upload it)"
    return f"is {kind}, not a {what}; check the address"


def _too_large(size: int, cap: int, partial: bool = False) -> str:
    amount = f"more than {cap:,}" if partial else f"{size:,}"
    return (
        f"is {amount} bytes, over the {cap:,}-byte limit (CITELINE_FETCH_MAX_BYTES); "
        "the download was stopped. Save the article and add the file instead"
    )
