"""Which JSON Schemas Claude takes as a native structured-output format (the subset the
Anthropic SDK's transform_schema passes through; anything else is a 400, req_llm#302)."""

from __future__ import annotations

from typing import Any

import pytest

from nemorouter.providers.anthropic_schema import native_schema


def test_objects_are_closed_and_nested_schemas_kept() -> None:
    schema = {
        "type": "object",
        "title": "Invoice",
        "properties": {
            "date": {"type": "string", "format": "date"},
            "lines": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "properties": {"amount": {"type": "number"}}},
            },
            "vendor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "kind": {"enum": ["invoice", "receipt"]},
            "party": {"$ref": "#/$defs/party"},
        },
        "required": ["date"],
        "$defs": {"party": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    out = native_schema(schema)
    assert out is not None
    assert out["additionalProperties"] is False
    assert out["properties"]["lines"]["items"]["additionalProperties"] is False
    assert out["$defs"]["party"]["additionalProperties"] is False
    assert out["properties"]["vendor"] == schema["properties"]["vendor"]  # type: ignore[index]
    assert "additionalProperties" not in schema  # the client's schema is not changed


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 1},
        {"type": "string", "pattern": "^INV-"},
        {"type": "string", "maxLength": 5},
        {"type": "string", "format": "iban"},
        {"type": "array", "minItems": 2},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"type": ["string", "null"]},
        {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        {"const": "x"},
        {"type": "object", "properties": {"a": {"type": "number", "multipleOf": 2}}},
        {"anyOf": [{"type": "string", "minLength": 1}]},
    ],
)
def test_keywords_outside_the_subset_refused(schema: dict[str, Any]) -> None:
    assert native_schema(schema) is None
