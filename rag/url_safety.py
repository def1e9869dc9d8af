"""Pure: which URLs and addresses Citeline may fetch, and a URL's canonical form.

A URL typed into the chat, or found in a feed or a redirect, is untrusted: fetched as it is, it
could reach the server's own network (server-side request forgery), e.g. a cloud's metadata
service at 169.254.169.254, a database on 127.0.0.1 or a router on 192.168.0.1. So only http and
https are fetched, and only from public addresses, unless Settings.fetch_allow_hosts names the
host (an intranet, or a test server on 127.0.0.1). rag/fetch.py applies these checks to every
address a host resolves to and to every redirect hop, and connects to the address it checked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from rag.loaders import LoadError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

ALLOWED_SCHEMES = ("http", "https")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Instance metadata services: AWS/GCP/Azure/OpenStack (169.254.169.254), AWS over IPv6
# (fd00:ec2::254), Alibaba Cloud (100.100.100.200), and 192.0.0.192 (listed for Oracle Cloud).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
TRACKING_PARAMETERS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid"})


class FetchRefused(LoadError):
    """A URL or address Citeline will not fetch (said before any connection to it); the message
    names the URL and what would allow it."""


def split_url(url: str) -> SplitResult:
    """The URL's parts, or FetchRefused naming it when it has no http(s) scheme and host."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        raise FetchRefused(text, f"is not a valid URL ({error}); give the address as http(s)://host/path") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"'{scheme}:'" if scheme else "no scheme"
        raise FetchRefused(
            text,
            f"refused: {shown} is not fetched, only http:// and https:// addresses "
            "(to add a file from this computer, give its path instead)",
        )
    if not parts.hostname:
        raise FetchRefused(text, f"has no host name; give the address as {scheme}://host/path")
    return parts


def address_problem(address: IPAddress) -> str:
    """Why this address may not be fetched from ('' when it is a public unicast address).

    An IPv4 address written as IPv6 (::ffff:127.0.0.1) is judged as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved, non-public address"
    return ""


def host_allowed(host: str, allow_hosts: Iterable[str], addresses: Iterable[IPAddress] = ()) -> bool:
    """Whether the allowlist names this host, by name (case-insensitive) or by one of its addresses."""
    allowed = {entry.strip().lower().strip("[]") for entry in allow_hosts if entry.strip()}
    if host.lower().strip("[]").rstrip(".") in allowed:
        return True
    return any(str(address) in allowed for address in addresses)


def refusal(url: str, host: str, address: IPAddress, problem: str) -> FetchRefused:
    """The FetchRefused for a host that resolves to an address that may not be fetched."""
    via = "" if host.strip("[]") == str(address) else f" (it resolves to {address})"
    return FetchRefused(
        url,
        f"refused: {host}{via} is {problem}; Citeline fetches only public addresses. "
        "To fetch from this host on purpose (an intranet, a test server), add it to "
        "CITELINE_FETCH_ALLOW_HOSTS, e.g. '[\"" + host.strip("[]") + "\"]'",
    )


def literal_address(host: str) -> IPAddress | None:
    """The host as an IP address when it is written as one, else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def canonical_url(url: str) -> str:
    """The URL as a document key: scheme and host lower-case, the default port, the fragment and
    tracking parameters (utm_*, fbclid, ...) dropped, an empty path written '/'. Two links to one
    article that differ only in these are one document."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    query = urlencode(
        [
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not key.lower().startswith("utm_") and key.lower() not in TRACKING_PARAMETERS
        ]
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def looks_like_url(text: str) -> bool:
    """Whether a command-line argument is meant as a URL (it starts with scheme://), not a path."""
    return _SCHEME.match(text.strip()) is not None
