"""Whether a JSON Schema can go to Claude as a native structured-output format.

`output_config.format.schema` takes a subset of JSON Schema: a keyword outside it is a 400
("output_config.format.schema: For 'integer' type, property 'minimum' is not supported",
agentjido/req_llm#302). The subset is what the Anthropic SDK's `transform_schema`
(anthropic-sdk-python src/anthropic/lib/_parse/_transform.py) passes through: type, enum,
anyOf, allOf, $ref/$defs, description, title; for objects properties, required and
additionalProperties (always false); string formats from a fixed list; array items and
minItems 0 or 1. The SDK moves anything else into the description, which would let an answer
break the client's schema, so such a schema takes the forced-tool way instead (a tool's
input_schema takes any JSON Schema).
"""

from __future__ import annotations

from typing import Any

_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
_STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
_ANY = frozenset({"type", "enum", "anyOf", "allOf", "$ref", "$defs", "description", "title"})
_BY_TYPE = {
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "string": frozenset({"format"}),
    "array": frozenset({"items", "minItems"}),
}
_MAX_DEPTH = 64


class _Unfit(Exception):
    pass


def native_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """`schema` as Claude's native format takes it (objects closed with additionalProperties
    false, as the SDK sends them), or None when it holds a keyword outside the subset."""
    try:
        return _fit(schema, 0)
    except _Unfit:
        return None


def _fit(schema: Any, depth: int) -> dict[str, Any]:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        raise _Unfit
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind not in _TYPES):  # e.g. a list
        raise _Unfit
    if kind is None and not {"enum", "anyOf", "allOf", "$ref"} & set(schema):
        raise _Unfit
    if set(schema) - _ANY - _BY_TYPE.get(kind, frozenset()):
        raise _Unfit
    out = dict(schema)
    for key in ("anyOf", "allOf"):
        if key in schema:
            if not isinstance(schema[key], list):
                raise _Unfit
            out[key] = [_fit(s, depth + 1) for s in schema[key]]
    if "$defs" in schema:
        defs = schema["$defs"]
        if not isinstance(defs, dict):
            raise _Unfit
        out["$defs"] = {name: _fit(s, depth + 1) for name, s in defs.items()}
    if kind == "object":
        if schema.get("additionalProperties", False) is not False:
            raise _Unfit
        props = schema.get("properties") or {}
        if not isinstance(props, dict):
            raise _Unfit
        out["properties"] = {name: _fit(s, depth + 1) for name, s in props.items()}
        out["additionalProperties"] = False
    elif kind == "string" and "format" in schema and schema["format"] not in _STRING_FORMATS:
        raise _Unfit
    elif kind == "array":
        if schema.get("minItems", 0) not in (0, 1):
            raise _Unfit
        if "items" in schema:
            out["items"] = _fit(schema["items"], depth + 1)
    return out
