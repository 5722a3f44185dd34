"""The one place that builds OpenAI envelopes: what it builds is what the official SDK reads."""

from __future__ import annotations

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from nemorouter.core.cache_entry import CompletionBuilder, chunks_from_completion
from nemorouter.types.envelopes import (
    chunk,
    completion,
    delta_choice,
    message_choice,
    usage_chunk,
)

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
MESSAGE = {"role": "assistant", "content": "hi", "refusal": None}


def test_a_completion_is_an_sdk_chat_completion() -> None:
    answer = completion("chatcmpl-1", 7, "m", [message_choice(0, MESSAGE, "stop")], USAGE)
    parsed = ChatCompletion.model_validate(answer)
    assert parsed.choices[0].message.content == "hi"
    assert parsed.usage is not None and parsed.usage.total_tokens == 5
    assert "usage" not in completion("c", 7, "m", [], None)  # unknown usage is left out


def test_chunks_carry_null_usage_only_when_a_usage_chunk_follows() -> None:
    first = chunk("c", 7, "m", [delta_choice(0, {"role": "assistant", "content": ""})], True)
    assert first["usage"] is None
    assert "usage" not in chunk("c", 7, "m", [], False)
    last = usage_chunk("c", 7, "m", USAGE)
    for item in (first, last):
        ChatCompletionChunk.model_validate(item)
    assert last["choices"] == [] and last["usage"] == USAGE


def test_a_cached_completion_replays_and_rebuilds_through_the_same_builders() -> None:
    message = {"role": "assistant", "content": "hi"}  # (a null refusal is not replayed)
    answer = completion(
        "c", 7, "m", [message_choice(0, message, "stop")], USAGE, system_fingerprint="fp"
    )
    chunks = chunks_from_completion(answer, include_usage=True)
    builder = CompletionBuilder()
    for item in chunks:
        ChatCompletionChunk.model_validate(item)
        assert item["system_fingerprint"] == "fp"
        builder.feed(item)
    assert builder.completion() == answer
