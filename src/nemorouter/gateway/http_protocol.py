"""uvicorn's httptools protocol with a bound on the request head (request line + headers).

Neither uvicorn nor httptools (llhttp) limits header size, and httptools gathers a header
value in memory until it ends, so one request could hold as much memory as it sends. Here
the bytes received while a request's head is still incomplete are counted, and past
MAX_HEAD_BYTES the request is answered 431 and the connection closed.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from nemorouter.types.errors import GatewayError

# nginx allows 4 x 8 KiB of header buffers, Node 16 KiB; 64 KiB leaves room for long
# cookies and tracing headers.
MAX_HEAD_BYTES = 64 * 1024


def _too_large_response() -> bytes:
    body = GatewayError(
        431,
        "request_header_too_large",
        f"The request line and headers exceed {MAX_HEAD_BYTES} bytes.",
    ).to_json()
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


class _HeadTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    _head_bytes = 0  # bytes received while the current head is incomplete
    _head_parsed = 0  # request line and header bytes the parser handed over
    _head_overflow = False
    _in_head = True

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # A head still incomplete past the bound: refuse before it grows further. (A chunk
        # that completes the head is judged by the parsed count below instead.)
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse()

    def on_message_begin(self) -> None:
        self._head_parsed = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._head_parsed += size
        if self._head_parsed > MAX_HEAD_BYTES:
            self._head_overflow = True
            raise _HeadTooLarge  # the parser stops; uvicorn answers via send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._head_overflow:
            self._refuse()
        else:
            super().send_400_response(msg)

    def _refuse(self) -> None:
        transport: asyncio.Transport = self.transport
        if not transport.is_closing():
            transport.write(_too_large_response())
            transport.close()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # a pipelined request's head comes next
        self._head_bytes = 0
