"""Anthropic Messages answers (whole, or as stream events) → OpenAI completions and chunks.

With a forced structured-output tool (see `anthropic_request`), that tool's input is the
answer: it becomes the message content, and the stream relays its `input_json_delta`s as
content deltas. A 200 this cannot read (an error object, content or events of the wrong
shape, impossible token counts) is malformed: the provider's failure, never a success.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from nemorouter.providers.answer_check import check_usage, malformed, token_count
from nemorouter.types.envelopes import chunk, completion, delta_choice, message_choice, usage_chunk
from nemorouter.types.upstream import FailureKind, UpstreamFailure

WHO = "Claude"

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
    if data is None:
        return None
    if not isinstance(data, dict):
        raise malformed(WHO, "usage that is not an object")
    read = _count(data, "cache_read_input_tokens")
    written = _count(data, "cache_creation_input_tokens")
    prompt = _count(data, "input_tokens") + read + written
    completion = _count(data, "output_tokens")
    details: dict[str, Any] = {"cached_tokens": read}
    if written:  # priced above the input rate by TTL (core/cost), under LiteLLM's names
        details["cache_creation_tokens"] = written
        split = _object(data.get("cache_creation"), "usage.cache_creation")
        if split:
            details["cache_creation_token_details"] = {
                name: _count(split, name)
                for name in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
            }
    out = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
    }
    check_usage(out, WHO)  # the sums too
    return out


def _count(data: dict[str, Any], name: str) -> int:
    return token_count(data.get(name), f"usage.{name}", WHO)


def _object(value: Any, what: str) -> dict[str, Any]:
    """`value` when it is an object; absent: {}; anything else is malformed."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise malformed(WHO, f"{what} that is not an object")
    return value


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise malformed(WHO, f"{what} that is not a string")
    return value


def to_completion(data: dict[str, Any], model: str, structured: str | None) -> dict[str, Any]:
    if data.get("type") == "error" or data.get("error") is not None:
        raise malformed(WHO, f"an error object: {str(data.get('error'))[:200]}")
    content = data.get("content")
    if not isinstance(content, list):
        raise malformed(WHO, "content that is not a list")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            raise malformed(WHO, "a content block that is not an object")
        if block.get("type") == "text":
            texts.append(_text(block.get("text"), "a text block"))
        elif block.get("type") == "tool_use":
            if not isinstance(block.get("name"), str):
                raise malformed(WHO, "a tool_use block without a name")
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
    reason = finish_reason(data.get("stop_reason"), structured)
    return completion(
        _completion_id(data.get("id")),
        int(time.time()),
        model,
        [message_choice(0, message, reason)],
        usage(data.get("usage")),
    )


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
        choices = [] if delta is None else [delta_choice(0, delta, finish)]
        return chunk(self.id, self.created, self.model, choices, self.include_usage)

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            message = _object(event.get("message"), "a message_start message")
            self.id = _completion_id(message.get("id"))
            self._merge_usage(message.get("usage"))
            usage(self.usage_in)  # checked as it comes, before any content is relayed
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            self._merge_usage(event.get("usage"))
            usage(self.usage_in)
            reason = _object(event.get("delta"), "a message_delta delta").get("stop_reason")
            if reason is None:
                return []
            self.finished = True
            return [self._chunk({}, finish_reason(reason, self.structured))]
        if kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            raise event_failure(event.get("error"))
        return []  # ping, content_block_stop

    def _merge_usage(self, data: Any) -> None:
        """A message_delta's counts replace the running ones (output_tokens is cumulative),
        but a field it sends as null keeps its value, as the SDK's accumulator does
        (anthropic lib/streaming/_messages.py accumulate_event: `if ... is not None`)."""
        fields = _object(data, "usage")
        self.usage_in.update({k: v for k, v in fields.items() if v is not None})

    def _block_start(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        block = _object(event.get("content_block"), "a content_block")
        index = event.get("index", 0)
        if block.get("type") != "tool_use" or (
            self.structured and block.get("name") == self.structured
        ):
            self._blocks[index] = None
            text = _text(block.get("text"), "a text block") if block.get("type") == "text" else ""
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
        delta = _object(event.get("delta"), "a content_block_delta delta")
        call = self._blocks.get(event.get("index", 0))
        if delta.get("type") == "text_delta":
            text = _text(delta.get("text"), "a text_delta")
            return [self._chunk({"content": text})] if text else []
        if delta.get("type") == "input_json_delta":
            piece = _text(delta.get("partial_json"), "an input_json_delta")
            if not piece:
                return []
            if call is None:  # the structured-output tool: its JSON is the content
                return [self._chunk({"content": piece})]
            return [
                self._chunk({"tool_calls": [{"index": call, "function": {"arguments": piece}}]})
            ]
        return []  # thinking and signature deltas are not part of the answer

    def close(self) -> list[dict[str, Any]]:
        if not self.include_usage:
            return []
        return [usage_chunk(self.id, self.created, self.model, usage(self.usage_in))]

    @property
    def complete(self) -> bool:
        return self.finished and self.stopped
