"""JSON Schema (OpenAI `response_format.json_schema.schema`) → Gemini's `responseSchema`.

Gemini takes a subset of the OpenAPI 3.0 Schema object: upper-case `type`, `nullable`,
string-only `enum`, `anyOf`, `properties`/`required`/`propertyOrdering`, `items`, and the
min/max keywords. What it has no word for is refused with a 400 that names the keyword and
where it sits, rather than dropped: a constraint the model silently ignores would come back
as output the client's validator rejects, after it was paid for. Annotations that constrain
nothing (`$schema`, `examples`, `additionalProperties: false`, a `format` Gemini refuses, ...)
are dropped. `$defs`/`$ref` are inlined (Gemini's Schema has no references); a recursive
schema is refused.

`responseSchema` (this OpenAPI subset) rather than `responseJsonSchema`: python-genai documents
the latter (GenerateContentConfig.response_json_schema) as a JSON Schema subset "Cyclic
references are unrolled to a limited degree" and the Gemini API docs introduce it for Gemini
2.5 and later, while `responseSchema` is accepted by every Gemini model on both Vertex and the
Gemini API: one form for every deployment.
"""

from __future__ import annotations

from typing import Any

from nemorouter.types.errors import GatewayError, invalid_request

_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
}
_COPIED = (
    "title",
    "description",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "pattern",
    "minProperties",
    "maxProperties",
    "default",
    "example",
)
_DROPPED = frozenset(
    {"$schema", "$id", "$comment", "$defs", "definitions", "examples", "readOnly", "writeOnly"}
    | {"deprecated", "strict", "discriminator"}
)
_HANDLED = frozenset(
    {"type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "properties", "required"}
    | {"items", "additionalProperties", "uniqueItems", "nullable", "format"}
)
# The `format` values the API takes, by type; it refuses the rest with a 400 ("only 'enum' and
# 'date-time' are supported for STRING type"). The table of google/adk-python
# tools/_gemini_schema_util.py `_sanitize_schema_formats_for_gemini`, which drops the others:
# a JSON Schema `format` is an annotation, asserted only by choice (JSON Schema 2020-12 §7.2).
_FORMATS = {
    "STRING": frozenset({"date-time", "enum"}),
    "INTEGER": frozenset({"int32", "int64"}),
    "NUMBER": frozenset({"int32", "int64"}),
}
_MAX_DEPTH = 64


def to_gemini_schema(schema: Any, field: str = "response_format") -> dict[str, Any]:
    """The Gemini form of `schema` (the request's `field`: the response format, or a tool's
    `tools[k].function.parameters`); GatewayError 400 naming it when Gemini cannot express it."""
    converter = _Converter(schema, field)
    if not isinstance(schema, dict):
        raise converter.refuse("", "the schema must be a JSON object")
    return converter.convert(schema, "", ())


class _Converter:
    def __init__(self, root: dict[str, Any], field: str) -> None:
        self.root = root
        self.field = field
        self.label = "response_format.json_schema" if field == "response_format" else field
        self.depth = 0

    def refuse(self, path: str, why: str) -> GatewayError:
        where = f" at {path}" if path else ""
        return invalid_request(
            f"{self.label} cannot be sent to Gemini{where}: {why}", param=self.field
        )

    def convert(self, node: Any, path: str, refs: tuple[str, ...]) -> dict[str, Any]:
        self.depth += 1
        try:
            return self._convert(node, path, refs)
        finally:
            self.depth -= 1

    def _convert(self, node: Any, path: str, refs: tuple[str, ...]) -> dict[str, Any]:
        if self.depth > _MAX_DEPTH:
            raise self.refuse(path, "the schema nests too deeply")
        if not isinstance(node, dict):
            raise self.refuse(
                path, "every subschema must be an object (true/false schemas are not)"
            )
        if len(refs) > _MAX_DEPTH:
            raise self.refuse(path, "the schema nests too deeply")
        if "$ref" in node:
            return self._ref(node, path, refs)
        if "allOf" in node:
            node = self._all_of(node, path)
        for key in node:
            if key not in _HANDLED and key not in _DROPPED and key not in _COPIED:
                raise self.refuse(path, f"Gemini has no equivalent of {key!r}")
        out: dict[str, Any] = {}
        nullable = node.get("nullable") is True
        for key in ("anyOf", "oneOf"):  # oneOf's exclusivity is lost: branches rarely overlap
            if key in node:
                branches, has_null = self._branches(node[key], f"{path}/{key}", refs)
                nullable = nullable or has_null
                if len(branches) == 1:
                    out.update(branches[0])
                elif branches:
                    out["anyOf"] = branches
        types = node.get("type")
        type_list = types if isinstance(types, list) else [types] if types is not None else []
        if not all(isinstance(t, str) for t in type_list):
            raise self.refuse(path, "type must be a string or a list of strings")
        if "null" in type_list:
            nullable = True
            type_list = [t for t in type_list if t != "null"]
        for t in type_list:
            if t not in _TYPES:
                raise self.refuse(path, f"unknown type {t!r}")
        if len(type_list) > 1:  # ["string", "integer"]: one branch per type
            shared = {k: v for k, v in node.items() if k != "type"}
            out["anyOf"] = [self.convert({**shared, "type": t}, path, refs) for t in type_list]
            type_list = []
        if type_list:
            out["type"] = _TYPES[type_list[0]]
        self._enum(node, out, path)
        fmt = node.get("format")
        if fmt in _FORMATS.get(out.get("type", ""), ()):
            out["format"] = fmt
        for key in _COPIED:
            if key in node:
                out[key] = node[key]
        self._object(node, out, path, refs)
        self._array(node, out, path, refs)
        if node.get("uniqueItems") is True:
            raise self.refuse(path, "Gemini has no equivalent of 'uniqueItems'")
        if "type" not in out and "anyOf" not in out:
            if nullable:
                out["type"] = "NULL"
                return out
            raise self.refuse(path, "a subschema without a type (any value) cannot be expressed")
        if nullable:
            out["nullable"] = True
        return out

    def _ref(self, node: dict[str, Any], path: str, refs: tuple[str, ...]) -> dict[str, Any]:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise self.refuse(path, f"only local $refs can be inlined, not {ref!r}")
        if ref in refs:
            raise self.refuse(
                path, f"recursive schemas cannot be expressed ({ref} refers to itself)"
            )
        target: Any = self.root
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or token not in target:
                raise self.refuse(path, f"$ref {ref!r} points nowhere")
            target = target[token]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if isinstance(target, dict) and siblings:  # e.g. a description beside the $ref
            target = {**target, **siblings}
        return self.convert(target, path, (*refs, ref))

    def _all_of(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        parts = node["allOf"]
        if not isinstance(parts, list) or len(parts) != 1:
            raise self.refuse(path, "allOf with more than one subschema cannot be expressed")
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return {**parts[0], **rest} if isinstance(parts[0], dict) else rest

    def _branches(
        self, branches: Any, path: str, refs: tuple[str, ...]
    ) -> tuple[list[dict[str, Any]], bool]:
        if not isinstance(branches, list) or not branches:
            raise self.refuse(path, "must be a non-empty list")
        out, has_null = [], False
        for i, branch in enumerate(branches):
            if isinstance(branch, dict) and branch.get("type") == "null" and len(branch) == 1:
                has_null = True
                continue
            out.append(self.convert(branch, f"{path}/{i}", refs))
        return out, has_null

    def _enum(self, node: dict[str, Any], out: dict[str, Any], path: str) -> None:
        values = node.get("enum")
        if "const" in node:
            values = [node["const"]]
        if values is None:
            return
        if not isinstance(values, list) or not values:
            raise self.refuse(path, "enum must be a non-empty list")
        strings = [v for v in values if v is not None]
        if not all(isinstance(v, str) for v in strings):
            raise self.refuse(path, "Gemini enums hold strings only")
        out["type"] = "STRING"
        out["enum"] = strings
        if len(strings) < len(values):
            out["nullable"] = True

    def _object(
        self, node: dict[str, Any], out: dict[str, Any], path: str, refs: tuple[str, ...]
    ) -> None:
        extra = node.get("additionalProperties")
        properties = node.get("properties")
        if isinstance(extra, dict) or (extra is True and not properties):
            raise self.refuse(
                path, "objects with arbitrary keys (additionalProperties) cannot be expressed"
            )
        if properties is None:  # (a single anyOf branch merged in above brought its own)
            if out.get("type") == "OBJECT" and "properties" not in out:
                raise self.refuse(path, "Gemini objects need at least one property")
            return
        if not isinstance(properties, dict) or not properties:
            raise self.refuse(path, "Gemini objects need at least one property")
        out["properties"] = {
            name: self.convert(sub, f"{path}/properties/{name}", refs)
            for name, sub in properties.items()
        }
        # Gemini orders keys alphabetically unless told: keep the schema's order.
        out["propertyOrdering"] = list(properties)
        required = node.get("required")
        if required:
            if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
                raise self.refuse(path, "required must be a list of property names")
            out["required"] = required

    def _array(
        self, node: dict[str, Any], out: dict[str, Any], path: str, refs: tuple[str, ...]
    ) -> None:
        items = node.get("items")
        if items is None:
            if out.get("type") == "ARRAY" and "items" not in out:
                raise self.refuse(path, "Gemini arrays need an items schema")
            return
        if isinstance(items, list):
            raise self.refuse(path, "tuple-typed items cannot be expressed")
        out["items"] = self.convert(items, f"{path}/items", refs)
