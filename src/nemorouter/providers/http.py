"""A lean HTTP/1.1 client for upstream calls: keep-alive pool per origin, TLS, streaming.

Why not aiohttp (DESIGN §4 names it): measured on this project's benchmark, a bare
uvicorn proxy adds +1.35 ms p50 at concurrency 16 with aiohttp's client and +0.60 ms with
a protocol-level client like this one; aiohttp's per-request machinery alone would break
the gateway's 1 ms latency budget. This client does only what provider APIs need:
POST a prepared body, read a Content-Length or chunked answer, or stream it.

Every answer is bounded (`max_body`): a whole body, and a compressed one (a stream too: we
ask for identity, so a compressed stream is an oddity) once decompressed, incrementally and
never more than the bound plus one byte. An error body read from a stream is bounded alike;
a stream's events are bounded by the SSE reader (`sse.py`). A provider going past it, or
sending a body its content-encoding does not decode, fails the call with `UpstreamMalformed`
and the connection is discarded: one provider's gzip bomb cannot take the gateway's memory.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Coroutine
from typing import Any
from urllib.parse import urlsplit

from nemorouter.providers.http_connection import (
    DEFAULT_MAX_BODY,
    Connection,
    Response,
    UpstreamDisconnected,
    UpstreamMalformed,
    UpstreamTimeout,
)

# Idle keep-alive connections older than this are closed rather than reused (aiohttp's
# default; servers commonly keep connections 5-75 s).
IDLE_TIMEOUT_S = 15.0


class HTTPPool:
    """Keep-alive connections to one origin (scheme, host, port)."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        self.host_header = self.host if default_port else f"{self.host}:{self.port}"
        self.base_path = parts.path.rstrip("/")
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context()
        self.connect_timeout = connect_timeout
        self.max_body = max_body
        self.max_connections = max_connections
        self.loop = asyncio.get_running_loop()
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    def head(self, path: str, extra: bytes, length: int) -> bytes:
        """The request head for a JSON POST; `extra` holds pre-encoded header lines."""
        return (
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Accept-Encoding: identity\r\nContent-Length: %d\r\n%s\r\n"
        ) % ((self.base_path + path).encode(), self.host_header.encode(), length, extra)

    # `post` and `request` are plain functions returning `_exchange`'s coroutine, not
    # coroutines awaiting it: an awaiting frame would hold the (image-sized) body for the
    # whole call, where `_exchange` lets go of it once sent. Measured with bench/overhead:
    # +0.08 ms CPU per image request and RSS after the throughput runs 135 -> 290 MiB.
    def post(
        self, path: str, body: bytes, extra: bytes, deadline_s: float
    ) -> Coroutine[Any, Any, Response]:
        """POST and read the whole answer within `deadline_s` seconds."""
        return self._exchange(self.head(path, extra, len(body)), body, deadline_s)

    def request(
        self, method: str, path: str, body: bytes, extra: bytes, deadline_s: float
    ) -> Coroutine[Any, Any, Response]:
        """Any method (a provider's batch and file APIs); `extra` holds pre-encoded header
        lines, the content type among them when there is a body."""
        head = (
            b"%s %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\n"
            b"Content-Length: %d\r\n%s\r\n"
        ) % (
            method.encode(),
            (self.base_path + path).encode(),
            self.host_header.encode(),
            len(body),
            extra,
        )
        return self._exchange(head, body, deadline_s)

    async def _exchange(self, head: bytes, body: bytes, deadline_s: float) -> Response:
        async with self._slots:
            conn = await self._acquire()
            conn.send(head, body, streaming=False)
            del head, body  # the transport holds what it has not sent yet
            timer = self.loop.call_later(deadline_s, conn.timed_out, "answer")
            try:
                assert conn.done is not None
                await conn.done
            except BaseException:
                conn.close()
                raise
            finally:
                timer.cancel()
            response = Response(conn.status, conn.header_map(), conn.take_body())
            self._release(conn)
            return response

    async def stream(
        self, path: str, body: bytes, extra: bytes, gap: float, method: str = "POST"
    ) -> StreamResponse:
        """POST (or `method`: a batch API's results file) and return once the status line and
        headers are in; the body follows."""
        if method == "POST":
            head = self.head(path, extra, len(body))
        else:  # no content type: `extra` carries one if the body needs it
            head = b"%s %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\n" % (
                method.encode(),
                (self.base_path + path).encode(),
                self.host_header.encode(),
            )
            head += b"Content-Length: %d\r\n%s\r\n" % (len(body), extra)
        await self._slots.acquire()
        try:
            conn = await self._acquire()
            conn.send(head, body, streaming=True)
            del head, body  # the transport holds what it has not sent yet
            timer = self.loop.call_later(gap, conn.timed_out, "start answering")
            try:
                assert conn.headers_done is not None
                await conn.headers_done
            except BaseException:
                conn.close()
                raise
            finally:
                timer.cancel()
        except BaseException:
            self._slots.release()
            raise
        return StreamResponse(self, conn, gap)

    async def _acquire(self) -> Connection:
        now = self.loop.time()
        while self._idle:
            conn = self._idle.pop()
            # A connection idle for long may be closing at the server's end right now; a
            # POST sent into that race cannot be resent safely, so don't take the chance.
            if not conn.closed and now - conn.idle_since < IDLE_TIMEOUT_S:
                return conn
            conn.close()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: Connection(self),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError:
            raise UpstreamTimeout(f"cannot connect to {self.host_header} in time") from None
        except OSError as exc:
            raise UpstreamDisconnected(f"cannot connect to {self.host_header}: {exc}") from None
        return conn

    def _release(self, conn: Connection) -> None:
        if conn.reusable():
            conn.idle_since = self.loop.time()
            self._idle.append(conn)
        else:
            conn.close()

    def finish_stream(self, conn: Connection) -> None:
        self._release(conn)
        self._slots.release()

    def forget(self, conn: Connection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)

    async def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


class StreamResponse:
    """An upstream answer whose body is read as it arrives."""

    def __init__(self, pool: HTTPPool, conn: Connection, gap: float) -> None:
        self._pool = pool
        self._conn = conn
        self._gap = gap
        self.status = conn.status
        self.headers = conn.header_map()
        self._finished = False

    async def read(self) -> bytes:
        """The whole remaining body (error answers), at most the pool's `max_body`."""
        parts = []
        size = 0
        async for piece in self.iter_chunks():
            size += len(piece)
            if size > self._pool.max_body:
                raise UpstreamMalformed(f"the body is larger than {self._pool.max_body} bytes")
            parts.append(piece)
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        loop = self._pool.loop
        try:
            while True:
                if conn.error is not None:
                    raise conn.error
                if conn.body:
                    yield conn.take_body()
                    continue
                if conn.complete:
                    break
                conn.waiter = loop.create_future()
                timer = loop.call_later(self._gap, conn.timed_out, "continue the stream")
                try:
                    await conn.waiter
                finally:
                    timer.cancel()
                    conn.waiter = None
        finally:
            self.release()

    def release(self) -> None:
        """Hand the connection back (or close it if the body was not read to the end)."""
        if self._finished:
            return
        self._finished = True
        if not self._conn.complete:
            self._conn.close()
        self._pool.finish_stream(self._conn)
