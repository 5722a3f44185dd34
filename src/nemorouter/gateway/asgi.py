"""Small raw-ASGI helpers for the hot path (no per-request framework objects)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from nemorouter.core.record import MAX_REQUEST_ID
from nemorouter.types.errors import GatewayError, invalid_request, request_too_large

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]

JSON = b"application/json"


class ClientGone(Exception):
    """The client disconnected before its request was read."""


_ID_PREFIX = "req_" + os.urandom(6).hex()
_id_counter = itertools.count(1)


def new_request_id() -> str:
    """Unique per process run (random prefix) and cheap (no syscall per request)."""
    return f"{_ID_PREFIX}{next(_id_counter):010x}"


def client_request_id(value: bytes | None) -> str | None:
    """Keep a caller's own request id when it is printable (it goes into logs) and fits the
    spend row; otherwise the caller gets an id of ours (in the x-request-id header)."""
    if value and len(value) <= MAX_REQUEST_ID and value.isascii():
        text = value.decode("ascii")
        if text.isprintable():
            return text
    return None


async def read_body(receive: Receive, limit: int, content_length: bytes | None) -> bytes:
    """The whole request body, refused with 413 as soon as it exceeds `limit`."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise invalid_request("Invalid Content-Length header.") from None
        if declared > limit:
            raise request_too_large(limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise request_too_large(limit)
        return body
    parts = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise request_too_large(limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    ctype: bytes = JSON,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", ctype),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: GatewayError, request_id: str) -> None:
    headers = [(b"x-request-id", request_id.encode())]
    headers += [(k.encode(), v.encode()) for k, v in error.headers.items()]
    await send_bytes(send, error.status, error.to_json(), headers)
