"""Fetch an http(s) image for a provider that only takes inline bytes, behind an SSRF guard.

A client-supplied URL makes the gateway open a connection, so it must not reach the gateway's
own network: the host is resolved once, every address it resolves to must be public, and the
connection goes to that checked address (no second lookup a rebinding DNS could answer
differently). Redirects are followed a few times, each hop checked the same way. The body is
capped in size and the whole fetch in time. Every refusal is a 400 naming the reason.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import ssl
from typing import Any
from urllib.parse import urljoin, urlsplit

import httptools

from nemorouter.providers.media import InlineMedia, bad_part, remote_image_urls

MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Vertex takes 7-20 MB inline; a page scan is far below
FETCH_TIMEOUT_S = 15.0
MAX_REDIRECTS = 3
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Private networks a deployment trusts anyway (tests serve images on loopback); empty in
# production, where only globally routable addresses are fetched.
ALLOWED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


# IPv6 forms that carry an IPv4 address in their last 32 bits; a packet to one of them may
# end at that IPv4 address (a kernel, NAT64 gateway or relay translates), so the IPv4 rule
# decides. `is_global` alone calls most of them public, e.g. ::a9fe:a9fe (169.254.169.254).
_LOW32_FORMS = (
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated): ::127.0.0.1
    ipaddress.IPv6Network("::ffff:0:0/96"),  # IPv4-mapped: ::ffff:127.0.0.1
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT): ::ffff:0:7f00:1
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64 well-known prefix
)
# NAT64 local-use prefix (RFC 8215): the operator picks where the IPv4 bits sit, and it is
# never globally routable, so it is refused whatever it embeds.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (6to4, Teredo, mapped, NAT64, ...)."""
    found = []
    if any(address in network for network in _LOW32_FORMS):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:  # 2002:AABB:CCDD::/48
        found.append(address.sixtofour)
    if address.teredo is not None:  # 2001::/32: the relay server and the client behind NAT
        found.extend(address.teredo)
    return found


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return False
        embedded = embedded_ipv4(address)
        if embedded:
            return all(is_public(inner) for inner in embedded)
    if any(address in network for network in ALLOWED_NETWORKS):
        return True
    return address.is_global and not address.is_multicast


def _short(url: str) -> str:
    """The URL without its query (signed URLs carry secrets there), for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:120]


async def fetch_remote_images(body: dict[str, Any]) -> dict[str, InlineMedia]:
    """Every http(s) image of the request, fetched concurrently (behind the SSRF guard)."""
    urls = remote_image_urls(body)
    if not urls:
        return {}
    images = await asyncio.gather(*(fetch_image(url) for url in urls))
    return dict(zip(urls, images, strict=True))


async def fetch_image(url: str) -> InlineMedia:
    """The image at `url` as base64; GatewayError 400 when refused or unreachable."""
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_S):
            for _ in range(MAX_REDIRECTS + 1):
                status, headers, body = await _get(url)
                location = headers.get("location")
                if status in (301, 302, 303, 307, 308) and location:
                    url = urljoin(url, location)
                    continue
                if status != 200:
                    raise bad_part(f"fetching image {_short(url)} failed: HTTP {status}")
                mime = _media_type(headers.get("content-type", ""), body)
                if mime is None:
                    raise bad_part(f"{_short(url)} is not an image or PDF")
                return InlineMedia(mime, base64.b64encode(body).decode("ascii"))
    except TimeoutError:
        raise bad_part(
            f"fetching image {_short(url)} took longer than {FETCH_TIMEOUT_S:g}s"
        ) from None
    raise bad_part(f"fetching image {_short(url)}: more than {MAX_REDIRECTS} redirects")


def _media_type(content_type: str, body: bytes) -> str | None:
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime.startswith("image/") or mime == "application/pdf":
        return mime
    for magic, sniffed in _MAGIC:  # servers often say application/octet-stream
        if body.startswith(magic):
            return sniffed
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "image/webp"
    return None


async def _resolve(host: str, port: int) -> IPAddress:
    """The address to connect to; refuses hosts with any non-public address."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise bad_part(f"image host {host!r} does not resolve") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses:
        raise bad_part(f"image host {host!r} does not resolve")
    for address in addresses:
        if not is_public(address):
            raise bad_part(
                f"image host {host!r} resolves to a non-public address: the gateway only "
                "fetches images from public hosts (send the image inline as a data URL)"
            )
    return addresses[0]


async def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_part(f"image URL {_short(url)} is not http(s)")
    if parts.username or parts.password:
        raise bad_part("image URLs may not carry credentials")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise bad_part(f"image URL {_short(url)} has a bad port") from None
    address = await _resolve(host, port)
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    try:
        reader, writer = await asyncio.open_connection(
            str(address), port, ssl=tls, server_hostname=host if tls else None
        )
    except OSError as exc:
        raise bad_part(f"cannot connect to image host {host!r}: {exc.strerror or exc}") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = host if parts.port is None else f"{host}:{port}"
    if ":" in host and parts.port is None:
        host_header = f"[{host}]"
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nAccept: image/*, application/pdf\r\n"
        "Accept-Encoding: identity\r\nUser-Agent: nemorouter\r\nConnection: close\r\n\r\n".encode(
            "latin-1"
        )
    )
    try:
        return await _read_response(reader, host)
    finally:
        writer.close()


class _Collector:
    """httptools callbacks gathering one response, refusing bodies over the cap."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        length = self.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_IMAGE_BYTES:
            raise _TooLarge

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_IMAGE_BYTES:
            raise _TooLarge
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _TooLarge(Exception):
    pass


async def _read_response(
    reader: asyncio.StreamReader, host: str
) -> tuple[int, dict[str, str], bytes]:
    collector = _Collector()
    parser = httptools.HttpResponseParser(collector)
    too_large = bad_part(f"image from {host!r} is larger than {MAX_IMAGE_BYTES >> 20} MB")
    try:
        while not collector.done:
            data = await reader.read(1 << 16)
            if not data:
                if collector.headers and "content-length" not in collector.headers:
                    break  # body delimited by the end of the connection
                raise bad_part(f"image host {host!r} closed the connection early")
            parser.feed_data(data)
    except _TooLarge:
        raise too_large from None
    except httptools.HttpParserCallbackError as exc:
        if isinstance(exc.__context__, _TooLarge):
            raise too_large from None
        raise bad_part(f"image host {host!r} sent a malformed response") from None
    except httptools.HttpParserError:
        raise bad_part(f"image host {host!r} sent a malformed response") from None
    except (OSError, ssl.SSLError) as exc:
        raise bad_part(f"reading the image from {host!r} failed: {exc}") from None
    return parser.get_status_code(), collector.headers, b"".join(collector.body)
