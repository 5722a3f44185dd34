"""A nullable reference to an object or array schema (`anyOf: [{$ref}, {type: null}]`, what
pydantic and zod emit for an optional nested model) translates for Gemini: the one non-null
branch is collapsed into its parent, which then carries that branch's properties or items.
Found by the conformance tests (tests/conformance: google-genai translates the same schema)."""

from __future__ import annotations

from nemorouter.providers.gemini_schema import to_gemini_schema

PARTY = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def test_nullable_object_reference() -> None:
    schema = {
        "type": "object",
        "properties": {"vendor": {"anyOf": [{"$ref": "#/$defs/party"}, {"type": "null"}]}},
        "$defs": {"party": PARTY},
    }
    vendor = to_gemini_schema(schema)["properties"]["vendor"]
    assert vendor == {
        "type": "OBJECT",
        "properties": {"name": {"type": "STRING"}},
        "propertyOrdering": ["name"],
        "required": ["name"],
        "nullable": True,
    }


def test_nullable_array_reference() -> None:
    schema = {
        "type": "object",
        "properties": {"tags": {"anyOf": [{"$ref": "#/$defs/tags"}, {"type": "null"}]}},
        "$defs": {"tags": {"type": "array", "items": {"type": "string"}}},
    }
    tags = to_gemini_schema(schema)["properties"]["tags"]
    assert tags == {"type": "ARRAY", "items": {"type": "STRING"}, "nullable": True}
