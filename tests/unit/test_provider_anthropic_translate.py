"""OpenAI request → Anthropic Messages body, and Messages answers → OpenAI, against hand-written JSON."""

from __future__ import annotations

from typing import Any

import pytest

from nemorouter.providers.anthropic_request import anthropic_request
from nemorouter.providers.anthropic_response import StreamTranslator, to_completion, usage
from nemorouter.providers.google_errors import classify_google
from nemorouter.providers.media import InlineMedia
from nemorouter.types.errors import GatewayError
from nemorouter.types.upstream import FailureKind, UpstreamFailure

JPEG = "/9j/4AAQSkZJRgABAQ=="


def test_text_system_and_defaults() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "You extract invoices."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": "Total?"},
        ],
        "temperature": 0,
        "stop": ["END"],
        "stream_options": {"include_usage": True},
    }
    assert anthropic_request(body, {}) == (
        {
            "max_tokens": 4096,
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi"},
                {"role": "user", "content": "Total?"},
            ],
            "system": "You extract invoices.",
            "temperature": 0,
            "stop_sequences": ["END"],
        },
        None,
    )
    assert anthropic_request(body, {}, max_output=1000)[0]["max_tokens"] == 1000
    assert anthropic_request({**body, "max_tokens": 77}, {}, max_output=1000)[0]["max_tokens"] == 77


def test_images_documents_and_several_system_messages() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "A"},
            {"role": "developer", "content": [{"type": "text", "text": "B"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Read"},
                    {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/p.png"}},
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
                ],
            },
        ],
        "max_completion_tokens": 500,
        "stream": True,
    }
    fetched = {"https://example.com/p.png": InlineMedia("image/png", "iVBORw==")}
    request, structured = anthropic_request(body, fetched)
    assert structured is None
    assert request == {
        "max_tokens": 500,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Read"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="},
                    },
                    {
                        "type": "document",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": "JVBERi0=",
                        },
                    },
                ],
            }
        ],
        "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        "stream": True,
    }


def test_json_schema_becomes_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "invoice", "schema": schema},
        },
    }
    assert anthropic_request(body, {}) == (
        {
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "invoice", "input_schema": schema}],
            "tool_choice": {"type": "tool", "name": "invoice"},
        },
        "invoice",
    )


def test_tools_calls_and_parallel_results() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "weather in Oslo and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "rain"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "sun"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": "auto",
    }
    request, _ = anthropic_request(body, {})
    assert request["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "sun"},
            ],
        },
    ]
    assert request["tools"] == [
        {
            "name": "weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert request["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "gs://bucket/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}},
        {"type": "input_audio", "input_audio": {}},
    ],
)
def test_what_claude_cannot_take_is_400(part: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as caught:
        anthropic_request({"model": "m", "messages": [{"role": "user", "content": [part]}]}, {})
    assert caught.value.status == 400


def test_usage_adds_cache_reads_and_writes_to_prompt() -> None:
    assert usage(
        {
            "input_tokens": 100,
            "cache_read_input_tokens": 900,
            "cache_creation_input_tokens": 50,
            "output_tokens": 20,
        }
    ) == {
        "prompt_tokens": 1050,
        "completion_tokens": 20,
        "total_tokens": 1070,
        "prompt_tokens_details": {"cached_tokens": 900, "cache_creation_tokens": 50},
    }


def test_usage_carries_the_cache_writes_by_ttl() -> None:
    """Anthropic's usage.cache_creation splits writes by TTL (anthropic-sdk-python
    types/cache_creation.py); the split reaches the OpenAI usage under LiteLLM's names so
    the 1-hour writes are costed at 2x input, the 5-minute ones at 1.25x."""
    out = usage(
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            "output_tokens": 5,
        }
    )
    assert out is not None and out["prompt_tokens"] == 310
    assert out["prompt_tokens_details"] == {
        "cached_tokens": 0,
        "cache_creation_tokens": 300,
        "cache_creation_token_details": {
            "ephemeral_5m_input_tokens": 100,
            "ephemeral_1h_input_tokens": 200,
        },
    }


def test_completion_text_tools_and_structured() -> None:
    data = {
        "id": "msg_1",
        "content": [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    answer = to_completion(data, "claude", None)
    assert answer["id"] == "chatcmpl-msg_1"
    assert answer["choices"][0] == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "Let me check.",
            "refusal": None,
            "tool_calls": [
                {
                    "id": "toolu_9",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    forced = {
        "content": [{"type": "tool_use", "id": "t", "name": "invoice", "input": {"total": 3}}],
        "stop_reason": "tool_use",
    }
    structured = to_completion(forced, "claude", "invoice")["choices"][0]
    assert (
        structured["message"]["content"] == '{"total":3}' and structured["finish_reason"] == "stop"
    )
    for reason, expected in [
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("end_turn", "stop"),
    ]:
        got = to_completion({"content": [], "stop_reason": reason}, "c", None)
        assert got["choices"][0]["finish_reason"] == expected


def test_stream_events_translate_to_chunks() -> None:
    t = StreamTranslator("claude", include_usage=True, structured=None)
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_7",
                "usage": {"input_tokens": 5, "cache_read_input_tokens": 10, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "1}"},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    chunks = [c for e in events for c in t.feed(e)]
    assert t.complete
    chunks += t.close()
    assert [c["choices"][0]["delta"] if c["choices"] else None for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
        {},
        None,
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 15,
        "completion_tokens": 9,
        "total_tokens": 24,
        "prompt_tokens_details": {"cached_tokens": 10},
    }
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_7"}


def test_stream_error_event_is_classified() -> None:
    t = StreamTranslator("claude", include_usage=False, structured=None)
    with pytest.raises(UpstreamFailure) as caught:
        t.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert caught.value.kind is FailureKind.SERVER_ERROR and caught.value.retryable
    with pytest.raises(UpstreamFailure) as caught:
        t.feed({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    assert caught.value.kind is FailureKind.RATE_LIMITED


def test_error_bodies_of_both_shapes() -> None:
    overloaded = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    failure = classify_google(529, {"retry-after": "3"}, overloaded)
    assert (
        failure.kind is FailureKind.SERVER_ERROR
        and failure.retry_after == 3
        and failure.message == "Overloaded"
    )
    limited = classify_google(
        429,
        {"retry-after": "12"},
        b'{"type":"error","error":{"type":"rate_limit_error","message":"rl"}}',
    )
    assert limited.kind is FailureKind.RATE_LIMITED and limited.retry_after == 12
    quota = b'[{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model","status":"RESOURCE_EXHAUSTED"}}]'
    vertex = classify_google(429, {}, quota)
    assert vertex.kind is FailureKind.RATE_LIMITED and "Quota exceeded" in vertex.message
