"""Every answer body read from a provider is bounded, decompressed ones too: a gzip bomb, an
oversized or endless body, garbage labelled gzip fail the call (UpstreamMalformed, classified
`malformed`) and the connection is discarded, with memory bounded by the limit, not the bomb."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from nemorouter.providers.classify import classify_exception
from nemorouter.providers.http import HTTPPool
from nemorouter.providers.http_connection import UpstreamMalformed
from nemorouter.providers.sse import sse_data
from nemorouter.testing.sim_malformed import gzip_bomb
from nemorouter.types.upstream import FailureKind

CHAT = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
LIMIT = 4 << 20


async def serve(answer: bytes) -> tuple[asyncio.Server, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        except ConnectionError:
            pass  # the client hung up on purpose
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1"


def answer(body: bytes, headers: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), headers) + body


GZIP = b"Content-Encoding: gzip\r\n"


async def post(raw: bytes, max_body: int = LIMIT) -> bytes:
    server, url = await serve(raw)
    async with server:
        pool = HTTPPool(url, max_connections=1, connect_timeout=2, max_body=max_body)
        try:
            return (await pool.post("/chat/completions", CHAT, b"", 5)).body
        except UpstreamMalformed:
            assert pool._idle == []  # a failed answer's connection is never reused
            raise
        finally:
            await pool.close()


async def test_gzip_bomb_fails_within_the_bound_of_memory() -> None:
    bomb = gzip_bomb(200)  # 200 MiB inflated
    assert len(bomb) < 400_000
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamMalformed, match="decompresses to more than") as caught:
            await post(answer(bomb, GZIP))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * LIMIT, f"peak {peak / 2**20:.1f} MiB"
    assert classify_exception(caught.value).kind is FailureKind.MALFORMED


@pytest.mark.parametrize(
    "raw",
    [
        answer(b"\x1f\x8b this is not gzip " * 10, GZIP),
        answer(gzip.compress(b'{"ok": true}' * 100)[:-30], GZIP),  # ends early
        answer(b'{"ok": 1}', b"Content-Encoding: br\r\n"),  # not asked for, not decodable
        answer(b"x" * (LIMIT + 1)),
    ],
    ids=["garbage-gzip", "truncated-gzip", "brotli", "oversized"],
)
async def test_bodies_that_break_the_rules_are_malformed(raw: bytes) -> None:
    with pytest.raises(UpstreamMalformed):
        await post(raw)


async def test_a_body_at_the_limit_and_small_gzip_are_read() -> None:
    assert await post(answer(b"y" * LIMIT)) == b"y" * LIMIT
    assert await post(answer(gzip.compress(b'{"ok": 1}'), GZIP)) == b'{"ok": 1}'


async def test_a_compressed_stream_is_decoded_and_bounded() -> None:
    events = b"".join(b'data: {"n": %d}\n\n' % i for i in range(50))
    head = b"Content-Type: text/event-stream\r\n" + GZIP
    server, url = await serve(answer(gzip.compress(events), head))
    async with server:
        pool = HTTPPool(url, max_connections=1, connect_timeout=2, max_body=LIMIT)
        response = await pool.stream("/chat/completions", CHAT, b"", 5)
        got = [e async for e in sse_data(response.iter_chunks())]
        assert got[0] == b'{"n": 0}' and len(got) == 50
    server, url = await serve(answer(gzip_bomb(50), head))
    async with server:
        pool = HTTPPool(url, max_connections=1, connect_timeout=2, max_body=LIMIT)
        response = await pool.stream("/chat/completions", CHAT, b"", 5)
        with pytest.raises(UpstreamMalformed):
            async for _ in sse_data(response.iter_chunks()):
                pass


async def test_a_streamed_error_body_is_bounded() -> None:
    raw = b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 10) + b"z" * (LIMIT + 10)
    server, url = await serve(raw)
    async with server:
        pool = HTTPPool(url, max_connections=1, connect_timeout=2, max_body=LIMIT)
        response = await pool.stream("/chat/completions", CHAT, b"", 5)
        with pytest.raises(UpstreamMalformed):
            await response.read()


async def _pieces(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_an_event_beyond_the_bound_fails_the_stream() -> None:
    endless = [b"data: " + b"x" * 1000] * 200  # one line that never ends
    with pytest.raises(UpstreamMalformed, match="stream event is larger"):
        async for _ in sse_data(_pieces(*endless), max_event=100_000):
            pass
    many_lines = [b"data: " + b"x" * 1000 + b"\n"] * 200  # one event of many data lines
    with pytest.raises(UpstreamMalformed):
        async for _ in sse_data(_pieces(*many_lines), max_event=100_000):
            pass
    fine = [b"data: " + b"x" * 1000 + b"\n\n"] * 200  # many events, each small
    assert len([e async for e in sse_data(_pieces(*fine), max_event=100_000)]) == 200
    split = [b"da", b"ta: {", b'"a"', b": 1}\r", b"\n", b"\r\n", b"data: 2"]
    assert [e async for e in sse_data(_pieces(*split))] == [b'{"a": 1}', b"2"]
