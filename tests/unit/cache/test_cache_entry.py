"""Stored values, and replaying a stored completion as a stream (and back)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from nemorouter.core.cache_entry import (
    CachedCompletion,
    CompletionBuilder,
    chunks_from_completion,
    decode_entry,
    encode_entry,
    new_entry,
)

USAGE = {"prompt_tokens": 1540, "completion_tokens": 12, "total_tokens": 1552, "cost": "0.0021"}


def completion(**message: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1760000000,
        "model": "gemini-2.5-pro",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"total": "12.50"}', **message},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }


def test_entry_round_trip_keeps_exact_money() -> None:
    entry = new_entry(completion(), Decimal("0.000123456789012"), "gemini-2.5-pro", "pro-us")
    data = encode_entry(entry)
    assert b'"0.000123456789012"' in data
    back = decode_entry(data)
    assert back == entry and isinstance(back, CachedCompletion)
    assert back.cost_usd == Decimal("0.000123456789012") and back.created > 0
    assert new_entry(completion(), None, "m", "d").cost_usd == 0


def test_unreadable_values_are_a_miss() -> None:
    assert decode_entry(b"not json") is None
    assert decode_entry(b'{"response": {}}') is None  # missing fields (another version)


def test_text_completion_replays_as_role_content_finish_usage() -> None:
    chunks = chunks_from_completion(completion())
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)  # what the OpenAI SDK parses
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": '{"total": "12.50"}'},
        {},
        None,
    ]
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == USAGE and chunks[-1]["choices"] == []
    assert all(c["usage"] is None for c in chunks[:-1])
    assert {c["id"] for c in chunks} == {"chatcmpl-1"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


def test_without_usage_no_usage_chunk_and_no_usage_field() -> None:
    chunks = chunks_from_completion(completion(), include_usage=False)
    assert len(chunks) == 3 and all("usage" not in c for c in chunks)


def test_tool_calls_and_several_choices() -> None:
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
        {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
    response = completion(content=None, tool_calls=calls)
    response["choices"][0]["finish_reason"] = "tool_calls"
    second = copy.deepcopy(response["choices"][0])
    second["index"] = 1
    second["message"] = {"role": "assistant", "content": "other"}
    second["finish_reason"] = "length"
    response["choices"].append(second)
    chunks = chunks_from_completion(response)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    tool_delta = chunks[1]["choices"][0]["delta"]
    assert [c["index"] for c in tool_delta["tool_calls"]] == [0, 1]
    assert "content" not in tool_delta
    finishes = [
        (c["choices"][0]["index"], c["choices"][0]["finish_reason"])
        for c in chunks
        if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert finishes == [(0, "tool_calls"), (1, "length")]


def test_builder_puts_a_replayed_stream_back_together() -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    for original in (completion(), completion(content=None, tool_calls=calls)):
        builder = CompletionBuilder()
        for chunk in chunks_from_completion(original):
            builder.feed(chunk)
        rebuilt = builder.completion()
        ChatCompletion.model_validate(rebuilt)
        expected = copy.deepcopy(original)
        if expected["choices"][0]["message"]["content"] is None:
            expected["choices"][0]["message"]["content"] = ""  # the role chunk's ""
        assert rebuilt == expected


def test_builder_joins_split_content_and_tool_arguments() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"id": "x", "created": 1, "model": "m", "choices": [choice]}

    builder = CompletionBuilder()
    builder.feed(chunk({"role": "assistant", "content": "Hel"}))
    builder.feed(chunk({"content": "lo"}))
    call = {"index": 0, "id": "c", "type": "function", "function": {"name": "f"}}
    builder.feed(chunk({"tool_calls": [{**call, "function": {"name": "f", "arguments": '{"a"'}}]}))
    builder.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}))
    builder.feed(chunk({}, "tool_calls"))
    builder.feed({"id": "x", "created": 1, "model": "m", "choices": [], "usage": USAGE})
    out = builder.completion()
    message = out["choices"][0]["message"]
    assert message["content"] == "Hello"
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert out["choices"][0]["finish_reason"] == "tool_calls" and out["usage"] == USAGE
