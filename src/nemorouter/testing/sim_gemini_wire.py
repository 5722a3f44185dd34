"""How the simulated Gemini reads field names: in either proto-JSON spelling.

Google's APIs parse proto3 JSON, which accepts a field's lowerCamelCase name or its original
snake_case one (https://protobuf.dev/programming-guides/json/); google-genai sends both kinds
(`inlineData: {mime_type}`, `responseSchema: {property_ordering, additional_properties}`), so
requests are read with every field name in lowerCamelCase. Free-form JSON (function args and
responses, examples, defaults) and map keys (schema property names) keep their spelling.
"""

from __future__ import annotations

import re
from typing import Any

_SNAKE = re.compile(r"_([a-z0-9])")
# Values that are google.protobuf.Struct / Value (free JSON): their keys are not field names.
_FREE = frozenset(
    {"args", "response", "example", "default", "labels", "parametersJsonSchema"}
    | {"responseJsonSchema", "responseJsonSchemaOrdering"}
)
_MAPS = frozenset({"properties", "defs"})  # map<string, Schema>: keys are the client's names


def camel_fields(value: Any, key: str = "") -> Any:
    """`value` (a decoded request) with every proto field name in lowerCamelCase."""
    if isinstance(value, dict):
        if key in _FREE:
            return value
        if key in _MAPS:
            return {name: camel_fields(sub) for name, sub in value.items()}
        out = {}
        for name, sub in value.items():
            field = _SNAKE.sub(lambda m: m[1].upper(), name) if "_" in name else name
            out[field] = camel_fields(sub, field)
        return out
    if isinstance(value, list):
        return [camel_fields(item, key) for item in value]
    return value
