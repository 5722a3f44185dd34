"""Anthropic Messages answers (whole, or as stream events) → OpenAI completions and chunks.

With a forced structured-output tool (see `anthropic_request`), that tool's input is the
answer: it becomes the message content, and the stream relays its `input_json_delta`s as
content deltas.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from nemorouter.providers.base import FailureKind, UpstreamFailure

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_FAILURES = {
    "rate_limit_error": FailureKind.RATE_LIMITED,
    "overloaded_error": FailureKind.SERVER_ERROR,
    "api_error": FailureKind.SERVER_ERROR,
    "timeout_error": FailureKind.TIMEOUT,
}


def finish_reason(stop_reason: Any, structured: str | None) -> str:
    reason = _FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    return "stop" if structured and reason == "tool_calls" else reason


def usage(data: Any) -> dict[str, Any] | None:
    """OpenAI usage: Anthropic's input_tokens leave out cache reads and writes, so the
    prompt total adds them back; cache reads are the cached tokens."""
    if not isinstance(data, dict):
        return None
    read = _int(data.get("cache_read_input_tokens"))
    written = _int(data.get("cache_creation_input_tokens"))
    prompt = _int(data.get("input_tokens")) + read + written
    completion = _int(data.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def to_completion(data: dict[str, Any], model: str, structured: str | None) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in data.get("content") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            if structured and block.get("name") == structured:
                texts = [arguments]  # the forced tool's input is the whole answer
                continue
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    answer: dict[str, Any] = {
        "id": _completion_id(data.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(data.get("stop_reason"), structured),
            }
        ],
    }
    found = usage(data.get("usage"))
    if found is not None:
        answer["usage"] = found
    return answer


def _completion_id(message_id: Any) -> str:
    return f"chatcmpl-{message_id}" if isinstance(message_id, str) else "chatcmpl-anthropic"


def event_failure(error: Any) -> UpstreamFailure:
    """An `error` event inside a 200 stream (e.g. overloaded_error)."""
    kind = error.get("type") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return UpstreamFailure(
        _FAILURES.get(kind, FailureKind.SERVER_ERROR)
        if isinstance(kind, str)
        else FailureKind.SERVER_ERROR,
        f"provider reported an error mid-stream: {kind}: {message}",
    )


class StreamTranslator:
    """Messages stream events → OpenAI chunks, then (when asked) a usage-only chunk."""

    def __init__(self, model: str, include_usage: bool, structured: str | None) -> None:
        self.model = model
        self.include_usage = include_usage
        self.structured = structured
        self.id = "chatcmpl-anthropic"
        self.created = int(time.time())
        self.usage_in: dict[str, Any] = {}
        self.finished = False
        self.stopped = False
        self._blocks: dict[int, int | None] = {}  # block index -> tool call index (None: text)
        self._calls = 0

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = _completion_id(message.get("id"))
            self.usage_in.update(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            self.usage_in.update(event.get("usage") or {})  # output_tokens: running total
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason is None:
                return []
            self.finished = True
            return [self._chunk({}, finish_reason(reason, self.structured))]
        if kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            raise event_failure(event.get("error"))
        return []  # ping, content_block_stop

    def _block_start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        block = event.get("content_block") or {}
        index = event.get("index", 0)
        if block.get("type") != "tool_use" or (
            self.structured and block.get("name") == self.structured
        ):
            self._blocks[index] = None
            text = block.get("text") if block.get("type") == "text" else None
            return [self._chunk({"content": text})] if text else []
        self._blocks[index] = self._calls
        self._calls += 1
        call = {
            "index": self._blocks[index],
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        delta = event.get("delta") or {}
        call = self._blocks.get(event.get("index", 0))
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            piece = delta["partial_json"]
            if call is None:  # the structured-output tool: its JSON is the content
                return [self._chunk({"content": piece})]
            return [
                self._chunk({"tool_calls": [{"index": call, "function": {"arguments": piece}}]})
            ]
        return []  # thinking and signature deltas are not part of the answer

    def close(self) -> list[dict[str, Any]]:
        if not self.include_usage:
            return []
        chunk = self._chunk(None)
        chunk["usage"] = usage(self.usage_in)
        return [chunk]

    @property
    def complete(self) -> bool:
        return self.finished and self.stopped
