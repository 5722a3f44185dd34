"""200 answers that are not answers, for `Fault.malformed` faults of the simulated providers.

Shared by every wire format: a gzip bomb (a small body that inflates to `size` MiB), a body
labelled gzip that is not, and an oversized body (`size` MiB of JSON, or one SSE event that
large for a stream). Per wire format: an error object inside a 200, the answer's list
(`choices`, `candidates`, `content`) as something else, and absurd usage (`size` tokens).
"""

from __future__ import annotations

import functools
import time
import zlib
from typing import Any

import msgspec

from nemorouter.testing import sim_http as http
from nemorouter.testing.sim_types import Fault

_encode = msgspec.json.encode
_ZEROS = bytes(1 << 20)
TEXT = "Simulated answer."


@functools.lru_cache(maxsize=4)
def gzip_bomb(mib: int) -> bytes:
    """A gzip body of `mib` MiB of JSON whitespace, compressed ~1000:1 (built piecewise: the
    simulator never holds the inflated bytes)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    spaces = _ZEROS.replace(b"\0", b" ")
    parts = [packer.compress(b"{" + spaces[1:])]
    parts += [packer.compress(spaces) for _ in range(mib - 2)]
    parts.append(packer.compress(spaces[:-1] + b"}"))
    parts.append(packer.flush())
    return b"".join(parts)


def _raw(body: bytes, content_type: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n"
        % (content_type, len(body), extra)
        + body
    )


def sse(events: list[Any]) -> bytes:
    """A whole event stream (length-delimited), each event JSON or pre-encoded bytes."""
    body = b"".join(
        b"data: " + (e if isinstance(e, bytes) else _encode(e)) + b"\n\n" for e in events
    )
    return _raw(body, b"text/event-stream")


def shared(fault: Fault, stream: bool) -> bytes | None:
    """The variants that do not depend on the wire format; None for the others."""
    kind = b"text/event-stream" if stream else b"application/json"
    if fault.variant == "gzip_bomb":
        return _raw(gzip_bomb(fault.size), kind, b"content-encoding: gzip\r\n")
    if fault.variant == "garbage_gzip":
        return _raw(b"\x1f\x8b this is not gzip data " * 20, kind, b"content-encoding: gzip\r\n")
    if fault.variant == "oversized":
        pad = b'"' + b"x" * (fault.size << 20) + b'"'
        if stream:
            return _raw(b'data: {"pad": ' + pad + b"}\n\n", kind)
        return _raw(b'{"pad": ' + pad + b"}", kind)
    return None


def openai(fault: Fault, stream: bool, model: str) -> bytes:
    base = {"id": "chatcmpl-malformed", "created": int(time.time()), "model": model}
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    if fault.variant == "error_in_200":
        error = http.error_body("Simulated error inside a 200", "server_error", None, None)
        return sse([error, b"[DONE]"]) if stream else http.json_response(200, error)
    if fault.variant == "absurd_usage":
        usage = {
            "prompt_tokens": fault.size,
            "completion_tokens": 5,
            "total_tokens": fault.size + 5,
        }
    choice = {"index": 0, "logprobs": None, "finish_reason": "stop"}
    if stream:
        chunk = {**base, "object": "chat.completion.chunk"}
        if fault.variant == "choices_not_list":
            return sse([{**chunk, "choices": "not a list"}, b"[DONE]"])
        return sse(
            [
                {
                    **chunk,
                    "choices": [{**choice, "delta": {"content": TEXT}, "finish_reason": None}],
                },
                {**chunk, "choices": [{**choice, "delta": {}}]},
                {**chunk, "choices": [], "usage": usage},
                b"[DONE]",
            ]
        )
    message = {"role": "assistant", "content": TEXT, "refusal": None}
    choices: Any = [{**choice, "message": message}]
    if fault.variant == "choices_not_list":
        choices = {**choice, "message": message}
    return http.json_response(
        200, {**base, "object": "chat.completion", "choices": choices, "usage": usage}
    )


def gemini(fault: Fault, stream: bool) -> bytes:
    usage = {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}
    candidates: Any = [
        {"content": {"role": "model", "parts": [{"text": TEXT}]}, "finishReason": "STOP"}
    ]
    if fault.variant == "error_in_200":
        answer: dict[str, Any] = {
            "error": {"code": 500, "message": "Simulated error inside a 200", "status": "INTERNAL"}
        }
    else:
        if fault.variant == "absurd_usage":
            usage = {**usage, "promptTokenCount": fault.size, "totalTokenCount": fault.size + 5}
        if fault.variant == "choices_not_list":
            candidates = candidates[0]
        answer = {"candidates": candidates, "usageMetadata": usage, "responseId": "malformed"}
    return sse([answer]) if stream else http.json_response(200, answer)


def anthropic(fault: Fault, stream: bool, model: str) -> bytes:
    if fault.variant == "error_in_200":
        error = {"type": "error", "error": {"type": "api_error", "message": "Simulated error"}}
        return sse([error]) if stream else http.json_response(200, error)
    usage = {"input_tokens": 10, "output_tokens": 5}
    if fault.variant == "absurd_usage":
        usage["input_tokens"] = fault.size
    content: Any = [{"type": "text", "text": TEXT}]
    if fault.variant == "choices_not_list":
        content = TEXT
    message = {
        "id": "msg_malformed",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "end_turn",
        "usage": usage,
    }
    if not stream:
        return http.json_response(200, message)
    start = {**message, "content": [], "stop_reason": None}
    if fault.variant == "choices_not_list":
        start = TEXT  # type: ignore[assignment]
    return sse(
        [
            {"type": "message_start", "message": start},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": TEXT}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
            {"type": "message_stop"},
        ]
    )  # fmt: skip
