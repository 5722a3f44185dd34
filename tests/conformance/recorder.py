"""A recording server for the conformance tests: a tiny threaded HTTP server on a loopback port
that keeps every request it receives (method, path with query, headers, JSON body) and answers
each with a canned, valid response of the wire format its path names.

The canned answers are minimal but complete, so that both the official SDKs and the gateway's
adapters accept them (each is checked by the SDK tests against the SDK's own response types):
- Gemini `generateContent` / `streamGenerateContent?alt=sse` (`GenerateContentResponse`),
- Anthropic Messages, direct and on Vertex (`Message`, and its stream events),
- OpenAI chat completions (`ChatCompletion`, `ChatCompletionChunk`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # the JSON body, decoded


GEMINI_ANSWER = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "ok"}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
    "modelVersion": "recorded",
}
ANTHROPIC_ANSWER = {
    "id": "msg_recorded",
    "type": "message",
    "role": "assistant",
    "model": "recorded",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
OPENAI_ANSWER = {
    "id": "chatcmpl-recorded",
    "object": "chat.completion",
    "created": 0,
    "model": "recorded",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "ok"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def _anthropic_events(tool: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    start = {**ANTHROPIC_ANSWER, "content": [], "stop_reason": None}
    if tool is None:
        block: dict[str, Any] = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": "ok"}
        stop = "end_turn"
    else:  # a forced tool (json_schema as a tool): its input is the answer
        block = {"type": "tool_use", "id": "toolu_recorded", "name": tool["name"], "input": {}}
        delta = {"type": "input_json_delta", "partial_json": "{}"}
        stop = "tool_use"
    return [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 1},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def _forced_tool(body: Any) -> dict[str, Any] | None:
    choice = body.get("tool_choice") if isinstance(body, dict) else None
    if isinstance(choice, dict) and choice.get("type") == "tool":
        return {"name": choice["name"]}
    return None


def canned(path: str, query: str, body: Any) -> tuple[str, bytes]:
    """(content type, body) of the canned answer for a request to `path`."""
    streamed = isinstance(body, dict) and body.get("stream") is True
    if ":streamGenerateContent" in path:
        return "text/event-stream", b"data: " + json.dumps(GEMINI_ANSWER).encode() + b"\r\n\r\n"
    if ":generateContent" in path:
        return "application/json", json.dumps(GEMINI_ANSWER).encode()
    if path.endswith("/messages") or ":rawPredict" in path or ":streamRawPredict" in path:
        tool = _forced_tool(body)
        if streamed:
            frames = [
                f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                for name, data in _anthropic_events(tool)
            ]
            return "text/event-stream", b"".join(frames)
        answer = dict(ANTHROPIC_ANSWER)
        if tool is not None:
            answer["content"] = [{"type": "tool_use", "id": "toolu_recorded", **tool, "input": {}}]
            answer["stop_reason"] = "tool_use"
        return "application/json", json.dumps(answer).encode()
    if path.endswith("/chat/completions"):
        if streamed:
            chunk = {
                "id": "chatcmpl-recorded",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "recorded",
            }
            events = [
                {
                    **chunk,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}}],
                },
                {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {**chunk, "choices": [], "usage": OPENAI_ANSWER["usage"]},
            ]
            frames = [f"data: {json.dumps(e)}\n\n".encode() for e in events]
            return "text/event-stream", b"".join([*frames, b"data: [DONE]\n\n"])
        return "application/json", json.dumps(OPENAI_ANSWER).encode()
    raise LookupError(path)


class Recorder:
    """The server's address and what it received."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def take(self) -> Recorded:
        """The one request received since the last `take` (and forget it)."""
        with self._lock:
            got, self.requests = self.requests, []
        assert len(got) == 1, f"expected one request, recorded {len(got)}: {got}"
        return got[0]


def _handler(recorder_box: list[Recorder]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as both the SDKs and the adapters use

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            body = json.loads(raw) if raw else None
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorder_box[0].add(Recorded("POST", parts.path, parts.query, headers, body))
            try:
                kind, payload = canned(parts.path, parts.query, body)
            except LookupError:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


@contextmanager
def recording_server() -> Iterator[Recorder]:
    box: list[Recorder] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(box))
    server.daemon_threads = True
    box.append(Recorder(server))
    thread = threading.Thread(target=server.serve_forever, name="recorder", daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
