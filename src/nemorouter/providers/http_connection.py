"""One upstream HTTP/1.1 connection (an asyncio protocol over httptools), the response it
reads, and the ways a response can fail. The keep-alive pool over these is `http.py`;
its module docstring says why the gateway has its own client and how answers are bounded.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from typing import Protocol

import httptools


class Owner(Protocol):
    """What a connection needs of its pool: the loop, the body bound, and to be told when
    it is lost (so it is never reused)."""

    loop: asyncio.AbstractEventLoop
    max_body: int

    def forget(self, conn: Connection) -> None: ...


# Pause reading a stream the consumer has not caught up with beyond this many bytes.
_STREAM_HIGH_WATER = 1 << 20
# Largest answer body read (decompressed); `Settings.max_upstream_body_mb` sets the gateway's.
DEFAULT_MAX_BODY = 32 << 20
# Decompressed output is taken in pieces of at most this size.
_INFLATE_STEP = 1 << 20
# Response headers beyond this many bytes are no answer a provider gives.
MAX_HEADER_BYTES = 64 << 10


class UpstreamTimeout(TimeoutError):
    """The upstream did not connect, answer or continue a stream in time."""


class UpstreamDisconnected(ConnectionError):
    """The connection closed before the response was complete."""


class UpstreamMalformed(UpstreamDisconnected):
    """The answer broke HTTP or its content-encoding, or went past a size bound; the
    connection was discarded."""


class Response:
    """A complete upstream response."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Connection(asyncio.Protocol):
    """One keep-alive connection; serves one request at a time."""

    def __init__(self, pool: Owner) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.max_body = pool.max_body
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.received = 0  # body bytes as sent
        self.decoded = 0  # body bytes after decompression
        self.decoder: zlib._Decompress | None = None  # set for a gzip/deflate body
        self.error: BaseException | None = None  # why this response failed, once it did
        self.streaming = False
        self.status = 0
        self.got_headers = False
        self.complete = False
        self.keep_alive = False
        self.headers_done: asyncio.Future[None] | None = None
        self.done: asyncio.Future[None] | None = None
        self.waiter: asyncio.Future[None] | None = None  # a stream reader waiting for data
        self.reading_paused = False

    # --- asyncio protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._malformed(f"malformed HTTP response: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.complete:
            return
        if self.got_headers and self._until_close():
            self.on_message_complete()  # a body delimited by the end of the connection
            return
        self._fail(UpstreamDisconnected("the provider closed the connection"))

    def pause_writing(self) -> None:  # large request bodies: the transport buffers them
        pass

    def resume_writing(self) -> None:
        pass

    # --- httptools callbacks ---------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > MAX_HEADER_BYTES:
            if self.error is None:
                self._malformed(f"response headers larger than {MAX_HEADER_BYTES} bytes")
            return
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.error is not None:
            return
        self.got_headers = True
        self.status = self.parser.get_status_code()
        for name, value in self.headers:
            if name == b"content-encoding":
                encoding = value.strip().lower()
                if encoding in (b"gzip", b"x-gzip", b"deflate"):  # though we did not ask
                    self.decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)
                elif encoding not in (b"", b"identity"):
                    self._malformed(f"unsupported content-encoding {encoding.decode('latin-1')!r}")
                    return
        if self.headers_done is not None and not self.headers_done.done():
            self.headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.error is not None:
            return  # the rest of a response already failed
        self.received += len(body)
        if self.received > self.max_body and not self.streaming:
            self._malformed(f"the body is larger than {self.max_body} bytes")
            return
        if self.decoder is not None:
            self._inflate(body)
            if self.error is not None:
                return
        else:
            self.body.append(body)
            self.buffered += len(body)
        self._wake()
        if (
            self.streaming
            and self.buffered > _STREAM_HIGH_WATER
            and self.transport
            and not self.reading_paused
        ):
            self.reading_paused = True
            self.transport.pause_reading()

    def _inflate(self, data: bytes) -> None:
        """Decompress in steps of at most _INFLATE_STEP bytes and never more than one byte
        past the bound, however well the body compresses."""
        decoder = self.decoder
        assert decoder is not None
        while True:
            step = min(self.max_body - self.decoded + 1, _INFLATE_STEP)
            try:
                out = decoder.decompress(data, step)
            except zlib.error as exc:
                self._malformed(f"the compressed body does not decompress ({exc})")
                return
            self.decoded += len(out)
            if self.decoded > self.max_body:
                self._malformed(f"the body decompresses to more than {self.max_body} bytes")
                return
            if out:
                self.body.append(out)
                self.buffered += len(out)
            data = decoder.unconsumed_tail
            if not data and len(out) < step:  # all input read, no output held back
                return

    def on_message_complete(self) -> None:
        if self.error is not None:
            return
        if self.decoder is not None and self.received and not self.decoder.eof:
            self._malformed("the compressed body ends before its end")
            return
        # Read it now: the parser forgets the message's keep-alive flag once it resets.
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True
        if self.done is not None and not self.done.done():
            self.done.set_result(None)
        self._wake()

    # --- used by the pool ------------------------------------------------------------

    def send(self, head: bytes, body: bytes, streaming: bool) -> None:
        self._reset()
        self.streaming = streaming
        # Only the future the caller will await: a failure set on another would go unread.
        self.headers_done = self.loop.create_future() if streaming else None
        self.done = None if streaming else self.loop.create_future()
        assert self.transport is not None
        # One gathered write: no copy of a large body into a joined buffer.
        self.transport.writelines((head, body))

    def header_map(self) -> dict[str, str]:
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in self.headers}

    def take_body(self) -> bytes:
        data = b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def timed_out(self, what: str) -> None:
        self._fail(UpstreamTimeout(f"the provider did not {what} in time"))
        self.close()

    def _malformed(self, message: str) -> None:
        self._fail(UpstreamMalformed(message))
        self.close()
        # Let go of what was read now: the failure's traceback may keep this connection
        # alive until the cycle collector runs.
        self.body.clear()
        self.buffered = 0
        self.decoder = None

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        for future in (self.headers_done, self.done, self.waiter):
            if future is not None and not future.done():
                future.set_exception(error)

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _until_close(self) -> bool:
        names = {k for k, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names
