"""HTTP/1.1 layer of the simulated provider: the connection protocol and response rendering.

Responses are built as complete byte strings so the server does a single `transport.write`; the
common path (no latency, no fault) answers inside `data_received` with no task and no timer.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import httptools
import msgspec

from nemorouter.testing.sim_answers import SimAnswer, split_stream
from nemorouter.testing.sim_tool_calls import completion_body, stream_deltas
from nemorouter.testing.sim_types import Fault

_encode = msgspec.json.encode


class Deferred:
    """A deferred reply: wait `delay` seconds, write `data` (if any), maybe close."""

    __slots__ = ("close", "data", "delay", "waited")

    def __init__(self, delay: float, data: bytes | None, close: bool) -> None:
        self.delay, self.data, self.close, self.waited = delay, data, close, False


# A request's raw headers, in order, as (name, value).
Headers = list[tuple[bytes, bytes]]
# (method, request target with its query, raw headers, body, authorization header) -> reply
Handler = Callable[[bytes, bytes, Headers, bytes, bytes | None], "bytes | Deferred"]


def error_body(message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def json_response(status: int, payload: Any, extra_headers: bytes = b"") -> bytes:
    """A complete response; `payload` may be pre-encoded bytes, `extra_headers` CRLF-terminated."""
    body = payload if isinstance(payload, bytes) else _encode(payload)
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
    return head % (status, reason(status).encode(), len(body), extra_headers) + body


def invalid_url(status: int, method: bytes, path: bytes) -> bytes:
    msg = f"Invalid URL ({method.decode('latin-1')} {path.decode('latin-1')})"
    return json_response(status, error_body(msg, "invalid_request_error", None, None))


HEALTH = json_response(200, {"status": "ok"})
UNAUTHORIZED = json_response(
    401, error_body("Incorrect API key provided", "invalid_request_error", None, "invalid_api_key")
)
BAD_JSON = json_response(
    400,
    error_body(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON.)",
        "invalid_request_error",
        None,
        None,
    ),
)
RATE_LIMITED_BODY = _encode(
    error_body("Rate limit reached for requests", "requests", None, "rate_limit_exceeded")
)
PARSER_ERROR = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
)
_JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "


def render_status_fault(fault: Fault) -> bytes:
    code = fault.code
    message = f"Simulated fault: HTTP {code} {reason(code)}"
    if code == 429:
        body = error_body(message, "requests", None, "rate_limit_exceeded")
    elif code >= 500:
        body = error_body(message, "server_error", None, None)
    else:
        body = error_body(message, "invalid_request_error", None, None)
    return json_response(code, body, retry_headers(fault))


def render_status_fault_body(code: int) -> dict[str, Any]:
    """The error body `render_status_fault` sends, for a batch's error file line."""
    message = f"Simulated fault: HTTP {code} {reason(code)}"
    return error_body(message, "server_error", None, None)


def retry_headers(fault: Fault) -> bytes:
    """The fault's `retry-after` / `retry-after-ms` header lines (OpenAI's and Anthropic's)."""
    headers = ""
    if fault.retry_after is not None:
        ra = fault.retry_after
        headers += f"retry-after: {int(ra) if float(ra).is_integer() else ra}\r\n"
    if fault.retry_after_ms is not None:
        headers += f"retry-after-ms: {fault.retry_after_ms}\r\n"
    return headers.encode()


def duration(seconds: float) -> str:
    """OpenAI's reset-time format: "20ms", "8.64s", "6m0s"."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return f"{int(seconds // 60)}m{int(seconds % 60)}s"


_ID_PREFIX = "chatcmpl-" + os.urandom(6).hex()  # per process; a counter makes ids unique
_ids = itertools.count(1)

# what msgspec makes of the OpenAI completion object, with the variable parts left open
_COMPLETION = (
    b'{"id":"%s","object":"chat.completion","created":%d,"model":%s,"choices":[{"index":0,'
    b'"message":{"role":"assistant","content":%s,"refusal":null},"logprobs":null,'
    b'"finish_reason":"%s"}],"usage":{"prompt_tokens":%d,"completion_tokens":%d,'
    b'"total_tokens":%d},"system_fingerprint":null}'
)


def _completion_id() -> str:
    return f"{_ID_PREFIX}{next(_ids):012x}"


def render_completion(
    model: str, a: SimAnswer, extra: bytes, cut: int | None, calls: list[Any] | None = None
) -> bytes:
    if calls:
        body = completion_body(model, calls, a, _completion_id())
    else:
        body = _COMPLETION % (
            _completion_id().encode(),
            int(time.time()),
            _encode(model),
            _encode(a.content),
            a.finish_reason.encode(),
            a.prompt_tokens,
            a.completion_tokens,
            a.prompt_tokens + a.completion_tokens,
        )
    head = b"%s%d\r\n%s\r\n" % (_JSON_HEAD, len(body), extra)
    if cut is not None:  # announce the full length, deliver half: a truncated body
        return head + body[: len(body) // 2]
    return head + body


def render_stream(
    model: str,
    a: SimAnswer,
    include_usage: bool,
    extra: bytes,
    cut: int | None,
    calls: list[Any] | None = None,
) -> bytes:
    """The whole SSE stream, one HTTP chunk per event; `cut` keeps only N content events
    (tool-call deltas when the answer is `calls`)."""
    base: dict[str, Any] = {
        "id": _completion_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
    }

    def event(delta: dict[str, Any], finish: str | None) -> bytes:
        chunk: dict[str, Any] = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:  # real OpenAI only sends `usage: null` when usage was requested
            chunk["usage"] = None
        return _sse(chunk)

    opening = {"role": "assistant", "content": None if calls else ""}
    parts = [_SSE_HEAD, extra, b"\r\n", event(opening, None)]
    texts = [{"content": p} for p in split_stream(a.content)]
    deltas = stream_deltas(calls) if calls else texts
    parts += [event(d, None) for d in deltas[:cut]]
    if cut is not None:
        return b"".join(parts)
    parts.append(event({}, a.finish_reason))
    if include_usage:
        parts.append(_sse({**base, "choices": [], "usage": a.usage()}))
    parts.append(_frame(b"data: [DONE]\n\n"))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def _sse(payload: dict[str, Any]) -> bytes:
    return _frame(b"data: " + _encode(payload) + b"\n\n")


def _frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class HttpConnection(asyncio.Protocol):
    """One HTTP/1.1 connection; replies go out strictly in request order (pipelining-safe)."""

    __slots__ = ("auth", "body", "conns", "handle", "headers", "parser", "queue", "timer")
    __slots__ += ("transport", "url")

    def __init__(self, handle: Handler, conns: set[HttpConnection]) -> None:
        self.handle = handle
        self.conns = conns  # the server's live connections, so stop() can abort them
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: Headers = []
        self.body: list[bytes] = []
        self.auth: bytes | None = None
        self.queue: deque[Deferred] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        # client went away: drop pending replies silently
        self.conns.discard(self)
        self.transport = None
        self.queue.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.abort()
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(PARSER_ERROR)
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.body = []
        self.auth = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        n = len(name)
        if n == 13 and name.lower() == b"authorization":
            self.auth = value
        elif n == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            # curl waits ~1 s for this before sending large bodies
            self._write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # pipelined after a drop/close: nobody will read the answer
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body = []
        reply = self.handle(self.parser.get_method(), self.url, self.headers, body, self.auth)
        keep = self.parser.should_keep_alive()
        if type(reply) is bytes:
            if not self.queue:  # fast path: answer right now
                self.transport.write(reply)
                if not keep:
                    self.transport.close()
                return
            reply = Deferred(0.0, reply, not keep)
        elif not keep:
            reply.close = True
        self.queue.append(reply)
        if len(self.queue) == 1 and self.timer is None:
            self._next()

    def _next(self) -> None:
        self.timer = None
        while self.queue and self.transport is not None:
            act = self.queue[0]
            if act.delay > 0 and not act.waited:
                act.waited = True
                self.timer = asyncio.get_running_loop().call_later(act.delay, self._next)
                return
            self.queue.popleft()
            if act.data:
                self.transport.write(act.data)
            if act.close:
                self.transport.close()
                self.queue.clear()
