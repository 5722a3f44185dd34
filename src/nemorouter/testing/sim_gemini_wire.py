"""What the simulated Gemini reads beyond plain text answers: proto-JSON field names in either
spelling, and forced function calls.

- Google's APIs parse proto3 JSON, which accepts a field's lowerCamelCase name or its original
  snake_case one (https://protobuf.dev/programming-guides/json/); google-genai sends both kinds
  (`inlineData: {mime_type}`, `responseSchema: {property_ordering, additional_properties}`), so
  requests are read with every field name in lowerCamelCase. Free-form JSON (function args and
  responses, examples, defaults) and map keys (schema property names) keep their spelling.
- A request whose `toolConfig.functionCallingConfig.mode` is `ANY` is answered with function
  calls: one per allowed function (`allowedFunctionNames`, else every declared function, the
  parallel case), their `args` generated valid for the declaration's `parameters` (a Gemini
  Schema) or `parametersJsonSchema` (a JSON Schema), as `types.FunctionCall` reads them.
"""

from __future__ import annotations

import re
from typing import Any

from nemorouter.testing.schema_instance import generate_instance

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


def forced_calls(req: dict[str, Any], seed: int) -> list[dict[str, Any]] | None:
    """The functionCall parts answering a request that forces function calling, else None.
    Raises ValueError when no declared function may be called."""
    config = (req.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if config.get("mode") != "ANY":
        return None
    declared = [
        d for tool in req.get("tools") or () for d in tool.get("functionDeclarations") or ()
    ]
    allowed = config.get("allowedFunctionNames")
    chosen = [d for d in declared if not allowed or d.get("name") in allowed]
    if not chosen:
        raise ValueError("functionCallingConfig mode ANY needs a declared, allowed function")
    calls = []
    for i, declaration in enumerate(chosen):
        schema = declaration.get("parametersJsonSchema")
        if schema is None:
            schema = json_schema(declaration.get("parameters") or {"type": "OBJECT"})
        args = generate_instance(schema, seed=seed + i) if schema.get("properties") else {}
        calls.append({"functionCall": {"name": declaration["name"], "args": args}})
    return calls


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A Gemini Schema back in JSON Schema form, to generate a conforming answer."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            out["type"] = value.lower()
        elif key == "properties":
            out["properties"] = {k: json_schema(v) for k, v in value.items()}
        elif key == "items":
            out["items"] = json_schema(value)
        elif key == "anyOf":
            out["anyOf"] = [json_schema(v) for v in value]
        elif key not in ("nullable", "propertyOrdering", "example", "title", "format"):
            out[key] = value
    if out.get("type") == "object":
        out["additionalProperties"] = False
    if schema.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out
