"""SSE data extraction survives any chunking of the byte stream."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from nemorouter.providers.sse import sse_data

STREAM = (
    b": keep-alive comment\n\n"
    b'data: {"a": 1}\n\n'
    b"event: message\r\n"
    b'data: {"b": 2}\r\n\r\n'
    b"data: line one\n"
    b"data: line two\n\n"
    b"data:[DONE]\n\n"
)
EXPECTED = [b'{"a": 1}', b'{"b": 2}', b"line one\nline two", b"[DONE]"]


async def collect(chunks: list[bytes]) -> list[bytes]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return [data async for data in sse_data(source())]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted({0, len(STREAM), *cuts})
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert asyncio.run(collect(chunks)) == EXPECTED


def test_last_event_without_blank_line() -> None:
    assert asyncio.run(collect([b"data: x\n\ndata: tail"])) == [b"x", b"tail"]
