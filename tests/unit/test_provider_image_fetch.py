"""Fetching http(s) images behind the SSRF guard."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
from collections.abc import AsyncIterator

import pytest

from nemorouter.providers import image_fetch
from nemorouter.providers.image_fetch import fetch_image, is_public
from nemorouter.types.errors import GatewayError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _reply(status: str, body: bytes, headers: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    return head.encode() + body


ROUTES = {
    "/page.png": _reply("200 OK", PNG, "Content-Type: image/png\r\n"),
    "/blob": _reply("200 OK", PNG, "Content-Type: application/octet-stream\r\n"),
    "/page.html": _reply("200 OK", b"<html></html>", "Content-Type: text/html\r\n"),
    "/missing": _reply("404 Not Found", b"nope"),
    "/moved": _reply("302 Found", b"", "Location: /page.png\r\n"),
    "/to-metadata": _reply("302 Found", b"", "Location: http://169.254.169.254/latest\r\n"),
    "/loop": _reply("302 Found", b"", "Location: /loop\r\n"),
    "/huge": _reply("200 OK", b"", "Content-Type: image/png\r\n").replace(
        b"Content-Length: 0", b"Content-Length: 999999999"
    ),
    "/chunked-huge": b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"10000\r\n"
    + b"\x00" * 0x10000
    + b"\r\n",
}


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ")[1].decode().split("?")[0]
        if path == "/hang":
            await asyncio.sleep(5)
        elif path == "/chunked-huge":
            writer.write(ROUTES[path])
            for _ in range(40):  # 40 x 64 KiB, never finished
                writer.write(b"10000\r\n" + b"\x00" * 0x10000 + b"\r\n")
                await writer.drain()
        else:
            writer.write(ROUTES[path])
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    monkeypatch.setattr(image_fetch, "ALLOWED_NETWORKS", (ipaddress.ip_network("127.0.0.0/8"),))
    yield f"http://127.0.0.1:{port}"
    srv.close()


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1", "fd00::1",
     "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1", "224.0.0.1"],
)  # fmt: skip
def test_private_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254 (cloud metadata)
        "::127.0.0.1",  # IPv4-compatible loopback
        "::ffff:a9fe:a9fe",  # IPv4-mapped
        "::ffff:0:7f00:1",  # IPv4-translated (SIIT) 127.0.0.1
        "::ffff:0:a00:1",  # IPv4-translated 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix
        "64:ff9b::7f00:1",
        "64:ff9b:1::a9fe:a9fe",  # NAT64 local-use prefix: never public
        "64:ff9b:1:808:8:800::",  # ... whatever it embeds (8.8.8.8 at /48)
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::",  # 6to4 of 192.168.1.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, client 192.0.2.45 (documentation)
        "2001:0:a9fe:a9fe::1",  # Teredo with server 169.254.169.254
    ],
)
def test_ipv6_forms_embedding_a_private_ipv4_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


def test_public_addresses_are_public() -> None:
    assert is_public(ipaddress.ip_address("8.8.8.8"))
    assert is_public(ipaddress.ip_address("2001:4860:4860::8888"))
    # Embedded forms of a public IPv4 address stay public.
    assert is_public(ipaddress.ip_address("64:ff9b::808:808"))
    assert is_public(ipaddress.ip_address("2002:808:808::1"))
    assert is_public(ipaddress.ip_address("::ffff:8.8.8.8"))


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://127.0.0.1/x.png", "non-public"),
        ("http://localhost:8080/x.png", "non-public"),
        ("http://169.254.169.254/computeMetadata/v1/", "non-public"),
        ("http://[::1]/x.png", "non-public"),
        ("http://10.0.0.7/x.png", "non-public"),
        ("http://user:pw@example.com/x.png", "credentials"),
        ("http://no-such-host.invalid/x.png", "does not resolve"),
    ],
)
async def test_refused_urls_are_400(url: str, complaint: str) -> None:
    with pytest.raises(GatewayError) as caught:
        await fetch_image(url)
    assert caught.value.status == 400
    assert complaint in caught.value.message


async def test_fetches_and_sniffs_images(server: str) -> None:
    image = await fetch_image(f"{server}/page.png?sig=secret")
    assert image.mime == "image/png" and base64.b64decode(image.data) == PNG
    assert (await fetch_image(f"{server}/blob")).mime == "image/png"
    assert (await fetch_image(f"{server}/moved")).mime == "image/png"


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("/page.html", "not an image"),
        ("/missing", "HTTP 404"),
        ("/to-metadata", "non-public"),
        ("/loop", "redirects"),
        ("/huge", "larger than"),
        ("/chunked-huge", "larger than"),
    ],
)
async def test_bad_answers_are_400(
    server: str, path: str, complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_fetch, "MAX_IMAGE_BYTES", 1 << 20)
    with pytest.raises(GatewayError) as caught:
        await fetch_image(f"{server}{path}?token=abc")
    assert complaint in caught.value.message
    assert "token=abc" not in caught.value.message  # signed-URL secrets stay out of messages


async def test_slow_host_times_out(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_fetch, "FETCH_TIMEOUT_S", 0.2)
    with pytest.raises(GatewayError, match="longer than"):
        await fetch_image(f"{server}/hang")
