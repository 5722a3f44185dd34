"""Server-sent events: the `data:` payloads of an event stream, from arbitrary byte chunks.

One event (and the unfinished line being read) is bounded by `max_event` bytes: a provider
streaming a line that never ends fails the stream instead of filling the gateway's memory."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from nemorouter.providers.http_connection import UpstreamMalformed

# Largest single event; `Settings.max_upstream_event_mb` sets the gateway's.
DEFAULT_MAX_EVENT = 8 << 20


async def sse_data(
    chunks: AsyncIterable[bytes], max_event: int = DEFAULT_MAX_EVENT
) -> AsyncIterator[bytes]:
    """Yield each event's data (multi-line data joined with newlines), in order.

    Chunk boundaries fall anywhere: mid-line, mid-CRLF, between events."""
    partial: list[bytes] = []  # the start of a line whose end has not arrived
    partial_size = 0
    data: list[bytes] = []
    data_size = 0
    async for chunk in chunks:
        if b"\n" not in chunk:  # joined once when the line ends, never re-copied meanwhile
            partial.append(chunk)
            partial_size += len(chunk)
            if partial_size + data_size > max_event:
                raise _too_large(max_event)
            continue
        if partial:
            partial.append(chunk)
            chunk = b"".join(partial)
            partial.clear()
        *lines, pending = chunk.split(b"\n")
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:  # a blank line ends the event
                if data:
                    yield b"\n".join(data)
                    data = []
                    data_size = 0
            elif line.startswith(b"data:"):
                value = line[5:]
                value = value[1:] if value.startswith(b" ") else value
                data_size += len(value)
                if data_size > max_event:
                    raise _too_large(max_event)
                data.append(value)
            # comments (":"), event:, id: and retry: lines carry nothing we relay
        partial_size = len(pending)
        if pending:
            partial.append(pending)
    pending = b"".join(partial)
    if pending.startswith(b"data:"):
        value = pending[5:].rstrip(b"\r")
        data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield b"\n".join(data)


def _too_large(max_event: int) -> UpstreamMalformed:
    return UpstreamMalformed(f"a stream event is larger than {max_event} bytes")
