"""Gemini tool turns, thought signatures, empty texts and schema formats, against hand-written
JSON (issue 18: audit rows 4, 5 and 7)."""

from __future__ import annotations

import re
from typing import Any

from nemorouter.providers.gemini_request import gemini_request
from nemorouter.providers.gemini_response import StreamTranslator, to_completion
from nemorouter.providers.gemini_schema import to_gemini_schema

SIG = "CiQB4/H/Xt5tdo+i0VpVKLh7ostYBjJuoS=="  # the shape of a real signature: base64
IN_ID = "CiQB4_H_Xt5tdo-i0VpVKLh7ostYBjJuoS"  # as the tool call id carries it
DUMMY = "skip_thought_signature_validator"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    for name in ("weather", "time")
]


def call(call_id: str, name: str, city: str) -> dict[str, Any]:
    arguments = f'{{"city": "{city}"}}'
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def parallel_answer() -> dict[str, Any]:
    """A Gemini 3 parallel function call answer: only the first call is signed."""
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "weather", "args": {"city": "Oslo"}},
                            "thoughtSignature": SIG,
                        },
                        {"functionCall": {"name": "time", "args": {"city": "Oslo"}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ]
    }


def test_parallel_tool_results_become_one_user_content() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "weather and time?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [call("a", "weather", "Oslo"), call("b", "time", "Oslo")],
            },
            {"role": "tool", "tool_call_id": "a", "content": "rain"},
            {"role": "tool", "tool_call_id": "b", "content": "noon"},
            {"role": "user", "content": "thanks"},
        ],
        "tools": TOOLS,
    }
    contents = gemini_request(body, {})["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "user"]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "weather", "response": {"content": "rain"}}},
        {"functionResponse": {"name": "time", "response": {"content": "noon"}}},
    ]
    # `content: ""` beside the calls sends no empty text part; a missing signature gets
    # Google's stand-in on the first call only
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}, "thoughtSignature": DUMMY},
        {"functionCall": {"name": "time", "args": {"city": "Oslo"}}},
    ]


def test_signature_survives_the_openai_round_trip() -> None:
    answer = to_completion(parallel_answer(), "gemini-3-flash-preview")
    calls = answer["choices"][0]["message"]["tool_calls"]
    assert calls[0]["id"] == f"call_0__thought__{IN_ID}"
    assert calls[1]["id"] == "call_1"
    # within the id pattern Anthropic requires, should the conversation move on to Claude
    assert re.fullmatch(r"[A-Za-z0-9_-]+", calls[0]["id"])
    # what the openai SDK sends back: id, type and function, nothing else
    sent_back = [{k: c[k] for k in ("id", "type", "function")} for c in calls]
    body = {
        "messages": [
            {"role": "user", "content": "weather and time?"},
            {"role": "assistant", "content": None, "tool_calls": sent_back},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "rain"},
            {"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"},
        ],
        "tools": TOOLS,
    }
    contents = gemini_request(body, {})["contents"]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}, "thoughtSignature": SIG},
        {"functionCall": {"name": "time", "args": {"city": "Oslo"}}},
    ]
    assert len(contents) == 3 and len(contents[2]["parts"]) == 2


def test_streamed_calls_carry_the_signature() -> None:
    translator = StreamTranslator("gemini-3-flash-preview", include_usage=False)
    answer = parallel_answer()
    first, second = answer["candidates"][0]["content"]["parts"]
    one = {"candidates": [{"content": {"role": "model", "parts": [first]}}]}
    two = {"candidates": [{"content": {"role": "model", "parts": [second]}}]}
    chunks = translator.feed(one) + translator.feed(two)
    calls = [c for ch in chunks for choice in ch["choices"] for c in choice["delta"]["tool_calls"]]
    assert [(c["index"], c["id"]) for c in calls] == [
        (0, f"call_0__thought__{IN_ID}"),
        (1, "call_1"),
    ]


def test_signature_read_from_provider_fields() -> None:
    litellm = {
        **call("x", "weather", "Oslo"),
        "provider_specific_fields": {"thought_signature": "L"},
    }
    google = {
        **call("y", "weather", "Rome"),
        "extra_content": {"google": {"thought_signature": "G"}},
    }
    for sent, signature in ((litellm, "L"), (google, "G")):
        body = {
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "tool_calls": [sent]},
                {"role": "tool", "tool_call_id": sent["id"], "content": "sun"},
            ],
            "tools": TOOLS,
        }
        part = gemini_request(body, {})["contents"][1]["parts"][0]
        assert part["thoughtSignature"] == signature


def test_empty_texts_are_never_sent() -> None:
    body = {
        "messages": [
            {"role": "system", "content": ""},
            {"role": "developer", "content": [{"type": "text", "text": ""}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Hi"}],
            },
        ]
    }
    assert gemini_request(body, {}) == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_schema_keeps_only_the_formats_gemini_accepts() -> None:
    schema = {
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email"},
            "day": {"type": "string", "format": "date"},
            "at": {"type": "string", "format": "date-time"},
            "count": {"type": "integer", "format": "int64"},
            "ratio": {"type": "number", "format": "double"},
            "kind": {"type": ["string", "null"], "format": "uuid"},
        },
    }
    properties = to_gemini_schema(schema)["properties"]
    assert properties == {
        "email": {"type": "STRING"},
        "day": {"type": "STRING"},
        "at": {"type": "STRING", "format": "date-time"},
        "count": {"type": "INTEGER", "format": "int64"},
        "ratio": {"type": "NUMBER"},
        "kind": {"type": "STRING", "nullable": True},
    }


def test_schema_refs_are_inlined() -> None:
    schema = {
        "$defs": {
            "money": {
                "type": "object",
                "properties": {"amount": {"type": "number"}, "at": {"$ref": "#/$defs/when"}},
                "required": ["amount"],
                "additionalProperties": False,
            },
            "when": {"type": "string", "format": "date-time"},
        },
        "type": "object",
        "properties": {
            "total": {"$ref": "#/$defs/money", "description": "the total"},
            "tax": {"anyOf": [{"$ref": "#/$defs/money"}, {"type": "null"}]},
            "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        },
    }
    money = {
        "type": "OBJECT",
        "properties": {
            "amount": {"type": "NUMBER"},
            "at": {"type": "STRING", "format": "date-time"},
        },
        "propertyOrdering": ["amount", "at"],
        "required": ["amount"],
    }
    assert to_gemini_schema(schema)["properties"] == {
        "total": {**money, "description": "the total"},
        "tax": {**money, "nullable": True},
        "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "nullable": True},
    }
