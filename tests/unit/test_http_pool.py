"""The upstream HTTP client: keep-alive reuse, framing variants, timeouts, drops, streams."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from nemorouter.providers import http as http_module
from nemorouter.providers.http import HTTPPool
from nemorouter.providers.http_connection import UpstreamDisconnected, UpstreamTimeout
from nemorouter.testing import Fault, SimulatedProvider

CHAT = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
STREAM = b'{"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture
def fresh_sim(sim: SimulatedProvider) -> SimulatedProvider:
    return sim  # the shared provider, reset (tests/conftest.py)


async def test_sequential_requests_reuse_one_connection(fresh_sim: SimulatedProvider) -> None:
    pool = HTTPPool(fresh_sim.base_url, max_connections=8, connect_timeout=2)
    first = await pool.post("/chat/completions", CHAT, b"", 5)
    assert first.status == 200
    assert first.headers["content-type"] == "application/json"
    conn = pool._idle[0]
    for _ in range(5):
        assert (await pool.post("/chat/completions", CHAT, b"", 5)).status == 200
    assert pool._idle == [conn]
    assert fresh_sim.requests[0].path == "/v1/chat/completions"
    assert fresh_sim.requests[0].headers["content-length"] == str(len(CHAT))
    await pool.close()


async def test_concurrent_requests_open_parallel_connections(fresh_sim: SimulatedProvider) -> None:
    fresh_sim.latency_ms = 20
    pool = HTTPPool(fresh_sim.base_url, max_connections=3, connect_timeout=2)
    try:
        answers = await asyncio.gather(
            *(pool.post("/chat/completions", CHAT, b"", 5) for _ in range(9))
        )
    finally:
        fresh_sim.latency_ms = 0
    assert {a.status for a in answers} == {200}
    assert len(pool._idle) == 3  # bounded by max_connections
    await pool.close()


async def test_idle_connections_expire(
    fresh_sim: SimulatedProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = HTTPPool(fresh_sim.base_url, max_connections=8, connect_timeout=2)
    await pool.post("/chat/completions", CHAT, b"", 5)
    old = pool._idle[0]
    monkeypatch.setattr(http_module, "IDLE_TIMEOUT_S", 0.0)
    await pool.post("/chat/completions", CHAT, b"", 5)
    assert old.closed
    assert pool._idle[0] is not old
    await pool.close()


async def test_timeout_and_drop(fresh_sim: SimulatedProvider) -> None:
    pool = HTTPPool(fresh_sim.base_url, max_connections=8, connect_timeout=2)
    fresh_sim.inject(Fault.hang(seconds=3))
    with pytest.raises(UpstreamTimeout):
        await pool.post("/chat/completions", CHAT, b"", 0.2)
    fresh_sim.inject(Fault.drop())
    with pytest.raises(UpstreamDisconnected):
        await pool.post("/chat/completions", CHAT, b"", 5)
    assert (await pool.post("/chat/completions", CHAT, b"", 5)).status == 200
    await pool.close()


async def test_connection_refused() -> None:
    pool = HTTPPool("http://127.0.0.1:9/v1", max_connections=1, connect_timeout=2)
    with pytest.raises(UpstreamDisconnected, match="cannot connect"):
        await pool.post("/chat/completions", CHAT, b"", 5)


async def test_stream_reads_chunked_events_and_cut(fresh_sim: SimulatedProvider) -> None:
    pool = HTTPPool(fresh_sim.base_url, max_connections=8, connect_timeout=2)
    response = await pool.stream("/chat/completions", STREAM, b"", 5)
    assert response.status == 200
    body = await response.read()
    assert body.rstrip().endswith(b"data: [DONE]")
    assert len(pool._idle) == 1  # read to the end: the connection is reusable
    fresh_sim.inject(Fault.cut_stream(after_chunks=1))
    response = await pool.stream("/chat/completions", STREAM, b"", 5)
    with pytest.raises(UpstreamDisconnected):
        await response.read()
    await pool.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve_once(answer: bytes) -> tuple[asyncio.Server, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1"


async def test_body_until_close_and_connection_close() -> None:
    server, url = await serve_once(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"ok": true}')
    async with server:
        pool = HTTPPool(url, max_connections=1, connect_timeout=2)
        response = await pool.post("/chat/completions", CHAT, b"", 5)
        assert response.body == b'{"ok": true}'
        assert pool._idle == []  # "Connection: close" is honoured


async def test_unrequested_gzip_is_decoded() -> None:
    packed = gzip.compress(b'{"ok": 1}')
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed)
    server, url = await serve_once(head + packed)
    async with server:
        pool = HTTPPool(url, max_connections=1, connect_timeout=2)
        assert (await pool.post("/chat/completions", CHAT, b"", 5)).body == b'{"ok": 1}'


async def test_malformed_response_is_a_disconnect() -> None:
    server, url = await serve_once(b"NOT HTTP AT ALL\r\n\r\n")
    async with server:
        pool = HTTPPool(url, max_connections=1, connect_timeout=2)
        with pytest.raises(UpstreamDisconnected):
            await pool.post("/chat/completions", CHAT, b"", 5)


def test_bad_base_url() -> None:
    with pytest.raises(ValueError, match="http"):
        asyncio.run(_make("ftp://example.com"))


async def _make(url: str) -> HTTPPool:
    return HTTPPool(url, max_connections=1, connect_timeout=1)


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_with_certificate_check(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"tls": 1}\n')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    async with server:
        trusting = ssl.create_default_context(cafile=str(cert))
        pool = HTTPPool(
            f"https://localhost:{port}/v1",
            max_connections=1,
            connect_timeout=2,
            ssl_context=trusting,
        )
        assert (await pool.post("/chat/completions", CHAT, b"", 5)).body == b'{"tls": 1}\n'
        untrusting = HTTPPool(f"https://localhost:{port}/v1", max_connections=1, connect_timeout=2)
        with pytest.raises(UpstreamDisconnected, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.post("/chat/completions", CHAT, b"", 5)


async def test_large_non_streaming_body_is_read_whole() -> None:
    big = b"x" * (5 << 20)  # past the stream high-water mark, which must not apply here
    server, url = await serve_once(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    )
    async with server:
        pool = HTTPPool(url, max_connections=1, connect_timeout=2)
        assert (await pool.post("/chat/completions", CHAT, b"", 5)).body == big


async def test_slow_stream_consumer_pauses_and_resumes_reading() -> None:
    piece = b"data: " + b"y" * 65536 + b"\n\n"
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(40)) + b"0\r\n\r\n"
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    server, url = await serve_once(head + chunks)
    async with server:
        pool = HTTPPool(url, max_connections=1, connect_timeout=2)
        response = await pool.stream("/chat/completions", STREAM, b"", 5)
        await asyncio.sleep(0.2)  # let the server run ahead: reading must pause, not buffer all
        conn = response._conn
        assert conn.reading_paused
        assert conn.buffered < 2 << 20 < 40 * len(piece)
        received = 0
        async for data in response.iter_chunks():
            received += len(data)
        assert received == 40 * len(piece)
