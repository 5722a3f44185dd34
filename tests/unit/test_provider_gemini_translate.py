"""OpenAI request → Gemini body, and Gemini answers → OpenAI, against hand-written JSON."""

from __future__ import annotations

from typing import Any

import pytest

from nemorouter.providers.gemini_request import gemini_request
from nemorouter.providers.gemini_response import StreamTranslator, to_completion, usage
from nemorouter.providers.gemini_schema import to_gemini_schema
from nemorouter.providers.google_errors import classify_google, parse_duration
from nemorouter.providers.media import InlineMedia
from nemorouter.types.errors import GatewayError
from nemorouter.types.upstream import FailureKind

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def test_text_with_system_and_sampling() -> None:
    body = {
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "You extract invoices."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": [{"type": "text", "text": "Total?"}]},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 256,
        "stop": "END",
        "seed": 7,
        "stream_options": {"include_usage": True},
    }
    assert gemini_request(body, {}) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hello"}]},
            {"role": "model", "parts": [{"text": "Hi"}]},
            {"role": "user", "parts": [{"text": "Total?"}]},
        ],
        "systemInstruction": {"parts": [{"text": "You extract invoices."}]},
        "generationConfig": {
            "temperature": 0.2,
            "topP": 0.9,
            "seed": 7,
            "maxOutputTokens": 256,
            "stopSequences": ["END"],
        },
    }


def test_images_data_url_gs_and_fetched() -> None:
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Read these pages"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "gs://bucket/scan-2.jpg"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/p3.webp"}},
                    {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "a.pdf"}},
                ],
            }
        ],
        "max_completion_tokens": 50,
    }
    fetched = {"https://example.com/p3.webp": InlineMedia("image/webp", "UklGRg==")}
    assert gemini_request(body, fetched) == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Read these pages"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/scan-2.jpg"}},
                    {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
                    {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
                ],
            }
        ],
        "generationConfig": {"maxOutputTokens": 50},
    }


INVOICE = {
    "type": "object",
    "properties": {
        "number": {"type": "string", "pattern": "^INV-[0-9]+$"},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
        "total": {"type": "number", "minimum": 0},
        "vendor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "lines": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/line"}},
        "paid": {"type": ["boolean", "null"]},
    },
    "required": ["number", "total"],
    "additionalProperties": False,
    "$defs": {
        "line": {
            "type": "object",
            "properties": {"text": {"type": "string"}, "qty": {"type": "integer"}},
            "required": ["text", "qty"],
        }
    },
}


def test_json_schema_becomes_response_schema() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "invoice", "strict": True, "schema": INVOICE},
        },
    }
    assert gemini_request(body, {})["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {
                "number": {"type": "STRING", "pattern": "^INV-[0-9]+$"},
                "currency": {"type": "STRING", "enum": ["EUR", "USD"]},
                "total": {"type": "NUMBER", "minimum": 0},
                "vendor": {"type": "STRING", "nullable": True},
                "lines": {
                    "type": "ARRAY",
                    "minItems": 1,
                    "items": {
                        "type": "OBJECT",
                        "properties": {"text": {"type": "STRING"}, "qty": {"type": "INTEGER"}},
                        "propertyOrdering": ["text", "qty"],
                        "required": ["text", "qty"],
                    },
                },
                "paid": {"type": "BOOLEAN", "nullable": True},
            },
            "propertyOrdering": ["number", "currency", "total", "vendor", "lines", "paid"],
            "required": ["number", "total"],
        },
    }


@pytest.mark.parametrize(
    ("schema", "complaint"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "number", "multipleOf": 0.01}}},
            "multipleOf",
        ),
        ({"type": "object", "additionalProperties": {"type": "string"}}, "arbitrary keys"),
        (
            {
                "$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}},
                "$ref": "#/$defs/n",
            },
            "recursive",
        ),
        ({"type": "string", "enum": [1, 2]}, "strings only"),
        ({"type": "object", "properties": {"a": {}}}, "without a type"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
        ({"not": {"type": "string"}}, "'not'"),
    ],
)
def test_schema_gemini_cannot_express_is_a_400(schema: dict[str, Any], complaint: str) -> None:
    with pytest.raises(GatewayError) as caught:
        to_gemini_schema(schema)
    assert caught.value.status == 400
    assert caught.value.param == "response_format"
    assert complaint in caught.value.message


def test_tools_and_tool_results() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Weather now",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": "required",
    }
    assert gemini_request(body, {}) == {
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"name": "weather", "args": {"city": "Oslo"}},
                        # no signature came with the call: Google's documented stand-in
                        "thoughtSignature": "skip_thought_signature_validator",
                    }
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "weather", "response": {"content": "rain"}}}
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "weather",
                        "description": "Weather now",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"city": {"type": "STRING"}},
                            "propertyOrdering": ["city"],
                        },
                    }
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}],
        },
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
        {"role": "narrator", "content": "x"},
    ],
)
def test_untranslatable_messages_are_400(message: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as caught:
        gemini_request({"model": "m", "messages": [message]}, {})
    assert caught.value.status == 400


def test_usage_counts_cached_and_thinking_tokens() -> None:
    assert usage(
        {
            "promptTokenCount": 1000,
            "cachedContentTokenCount": 600,
            "candidatesTokenCount": 50,
            "thoughtsTokenCount": 20,
            "toolUsePromptTokenCount": 5,
            "totalTokenCount": 1075,
        }
    ) == {
        "prompt_tokens": 1005,
        "completion_tokens": 70,
        "total_tokens": 1075,
        "prompt_tokens_details": {"cached_tokens": 600},
        "completion_tokens_details": {"reasoning_tokens": 20},
    }


def test_completion_with_finish_reasons_and_blocks() -> None:
    answer = to_completion(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "plan", "thought": True},
                            {"text": "Hello"},
                            {"text": " world"},
                        ],
                    },
                    "finishReason": "MAX_TOKENS",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 3,
                "candidatesTokenCount": 2,
                "totalTokenCount": 5,
            },
            "responseId": "abc",
        },
        "gemini-2.5-pro",
    )
    assert answer["id"] == "chatcmpl-abc"
    assert answer["model"] == "gemini-2.5-pro"
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello world", "refusal": None},
            "logprobs": None,
            "finish_reason": "length",
        }
    ]
    assert answer["usage"]["total_tokens"] == 5
    safety = to_completion(
        {"candidates": [{"content": {"parts": []}, "finishReason": "SAFETY"}]}, "m"
    )
    assert safety["choices"][0]["finish_reason"] == "content_filter"
    blocked = to_completion({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}, "m")
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    assert blocked["choices"][0]["message"]["content"] is None


def test_function_call_answer_becomes_tool_calls() -> None:
    answer = to_completion(
        {
            "candidates": [
                {
                    "content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
                    "finishReason": "STOP",
                }
            ]
        },
        "m",
    )
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    ]


def test_stream_translation_ends_with_usage_chunk() -> None:
    t = StreamTranslator("m", include_usage=True)
    meta = {"promptTokenCount": 4, "totalTokenCount": 4}
    chunks = t.feed(
        {
            "candidates": [{"content": {"parts": [{"text": "Hel"}]}}],
            "usageMetadata": meta,
            "responseId": "r1",
        }
    )
    chunks += t.feed(
        {
            "candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}],
            "usageMetadata": {
                "promptTokenCount": 4,
                "candidatesTokenCount": 2,
                "totalTokenCount": 6,
            },
        }
    )
    assert t.complete
    chunks += t.close()
    assert [c["choices"] for c in chunks] == [
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "Hel"},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        [{"index": 0, "delta": {"content": "lo"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
        [],
    ]
    assert {c["id"] for c in chunks} == {"chatcmpl-r1"}
    assert [c["usage"] for c in chunks[:3]] == [None, None, None]
    assert chunks[-1]["usage"]["completion_tokens"] == 2


def test_stream_without_usage_request_has_no_usage_chunk() -> None:
    t = StreamTranslator("m", include_usage=False)
    chunks = t.feed(
        {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]}
    )
    assert "usage" not in chunks[0]
    assert t.close() == []


def test_google_errors_carry_retry_info() -> None:
    raw = (
        b'{"error":{"code":429,"message":"You exceeded your current quota","status":"RESOURCE_EXHAUSTED",'
        b'"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},'
        b'{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}'
    )
    failure = classify_google(429, {}, raw)
    assert failure.kind is FailureKind.RATE_LIMITED
    assert failure.retry_after == 37.0
    assert "RESOURCE_EXHAUSTED" in failure.message
    wrapped = b'[{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}]'
    unavailable = classify_google(503, {}, wrapped)
    assert unavailable.kind is FailureKind.SERVER_ERROR and unavailable.retryable
    bad = classify_google(
        400, {}, b'{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}'
    )
    assert bad.kind is FailureKind.CLIENT_ERROR
    assert parse_duration("0.5s") == 0.5
    assert parse_duration({"seconds": 2, "nanos": 500000000}) == 2.5
    assert parse_duration("soon") is None
