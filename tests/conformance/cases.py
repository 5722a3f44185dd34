"""The matrix of canonical (OpenAI-format) chat requests every adapter is compared on.

Each case is the body a client sends to the gateway (before `model`, added per provider). Media
are real bytes (a PNG, a JPEG and a one-page PDF made here), carried as data URLs, so that the
SDK side can send the same bytes through its own media types.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image


def _image(kind: str, color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(out, kind)
    return out.getvalue()


PNG = _image("PNG", (200, 10, 10))
JPEG = _image("JPEG", (10, 200, 10))
# A minimal well-formed one-page PDF (the adapters never parse it; the gateway's PDF stage does).
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


# google-genai adds `property_ordering` to a response_schema dict it is given, in place: the SDK
# side of a test passes copies (copy.deepcopy) so that these stay as the client wrote them.
PROMPT = "Classify this page."
SYSTEM = "You read scanned business documents."

# A schema with the features clients use: $defs and $ref, anyOf with null, enums, formats,
# nested arrays of objects, and numeric bounds.
INVOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "number": {"type": "string", "description": "Invoice number"},
        "issued": {"type": "string", "format": "date"},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
        "vendor": {"anyOf": [{"$ref": "#/$defs/party"}, {"type": "null"}]},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}, "minItems": 1},
    },
    "required": ["number", "issued", "currency", "vendor", "lines"],
    "additionalProperties": False,
    "$defs": {
        "party": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "vat_id": {"type": "string"}},
            "required": ["name"],
            "additionalProperties": False,
        },
        "line": {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "amount": {"type": "number", "minimum": 0},
            },
            "required": ["text", "amount"],
            "additionalProperties": False,
        },
    },
}


def invoice_schema(**changes: Any) -> dict[str, Any]:
    """A copy of INVOICE_SCHEMA with `issued`'s format and `amount`'s minimum changed (None:
    removed), for providers whose schema subset refuses one of them."""
    import copy

    schema = copy.deepcopy(INVOICE_SCHEMA)
    for key, where in (
        ("format", schema["properties"]["issued"]),
        ("minimum", schema["$defs"]["line"]["properties"]["amount"]),
    ):
        if key in changes:
            if changes[key] is None:
                del where[key]
            else:
                where[key] = changes[key]
    return schema


WEATHER_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city"],
}
TIME_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"zone": {"type": "string"}},
    "required": ["zone"],
}
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": WEATHER_PARAMS,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Current time in a zone",
            "parameters": TIME_PARAMS,
        },
    },
]
# Two parallel calls of one assistant turn, and their two results.
CALLS = [
    ("call_1", "get_weather", {"city": "Paris", "unit": "celsius"}, '{"temp": 21}'),
    ("call_2", "get_time", {"zone": "Europe/Paris"}, '{"time": "12:00"}'),
]


def _tool_turns() -> list[dict[str, Any]]:
    import json

    calls = [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        for cid, name, args, _ in CALLS
    ]
    results = [
        {"role": "tool", "tool_call_id": cid, "content": result} for cid, _, _, result in CALLS
    ]
    return [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        *results,
    ]


CASES: dict[str, dict[str, Any]] = {
    "text": {"messages": [{"role": "user", "content": PROMPT}]},
    "image": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": PROMPT},
                    {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}},
                ],
            }
        ]
    },
    "images": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": PROMPT},
                    {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}},
                    {"type": "image_url", "image_url": {"url": data_url("image/jpeg", JPEG)}},
                ],
            }
        ]
    },
    "pdf": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": PROMPT},
                    {
                        "type": "file",
                        "file": {
                            "file_data": data_url("application/pdf", PDF),
                            "filename": "invoice.pdf",
                        },
                    },
                ],
            }
        ]
    },
    "system": {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": "An invoice."},
            {"role": "user", "content": "Which currency?"},
        ]
    },
    "json_schema": {
        "messages": [{"role": "user", "content": PROMPT}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "invoice", "schema": INVOICE_SCHEMA, "strict": True},
        },
    },
    "tools": {"messages": _tool_turns(), "tools": TOOLS, "tool_choice": "auto"},
    "tool_required": {
        "messages": [{"role": "user", "content": "Weather and time in Paris?"}],
        "tools": TOOLS,
        "tool_choice": "required",
    },
    "sampling": {
        "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END", "STOP"],
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "max_tokens": 300,
        "seed": 7,
    },
    "stream": {"messages": [{"role": "user", "content": PROMPT}], "stream": True},
}
