"""Server-sent events: the `data:` payloads of an event stream, from arbitrary byte chunks."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator


async def sse_data(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Yield each event's data (multi-line data joined with newlines), in order.

    Chunk boundaries fall anywhere: mid-line, mid-CRLF, between events."""
    pending = b""
    data: list[bytes] = []
    async for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:  # a blank line ends the event
                if data:
                    yield b"\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            # comments (":"), event:, id: and retry: lines carry nothing we relay
    if pending.startswith(b"data:"):
        value = pending[5:].rstrip(b"\r")
        data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield b"\n".join(data)
