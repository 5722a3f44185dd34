"""A small JSON Schema validator for the subset `schema_instance` generates from.

It lets the generator check `oneOf`/`enum`/`pattern` choices and its own output without a
runtime dependency on `jsonschema` (a test-only dependency). Semantics follow draft 2020-12 as
implemented by `jsonschema`, plus OpenAPI's `nullable` and draft-04/07 spellings.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import unquote

Schema = dict[str, Any] | bool


def schema_types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return list(t)
    if any(k in schema for k in ("properties", "required", "additionalProperties")):
        return ["object"]
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return ["array"]
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return ["number"]
    return ["string"]


def is_type(value: Any, t: str) -> bool:
    if t == "string":
        return isinstance(value, str)
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return t == "number" or isinstance(value, int) or value.is_integer()


def json_equal(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0 but true != 1
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    same = type(a) is type(b) or (is_type(a, "number") and is_type(b, "number"))
    return same and a == b


def is_multiple(value: float, m: float) -> bool:
    # mirrors jsonschema: float divisors are checked by an integral quotient
    if isinstance(m, float):
        q = value / m
        return math.isfinite(q) and int(q) == q
    return not value % m


class SchemaValidator:
    def __init__(self, root: Schema) -> None:
        self.root = root

    def resolve(self, ref: str) -> Schema:
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref!r} (only local JSON pointers)")
        node: Any = self.root
        for raw in ref[2:].split("/"):
            key = unquote(raw).replace("~1", "/").replace("~0", "~")
            try:
                node = node[int(key)] if isinstance(node, list) else node[key]
            except (KeyError, IndexError, ValueError, TypeError):
                raise ValueError(f"unresolvable $ref {ref!r}") from None
        return node

    def valid(self, value: Any, schema: Schema) -> bool:
        if isinstance(schema, bool):
            return schema
        s = schema
        if "$ref" in s and not self.valid(value, self.resolve(s["$ref"])):
            return False
        if "type" in s:
            ok = any(is_type(value, t) for t in schema_types(s))
            if not ok and not (value is None and s.get("nullable")):
                return False
        if "const" in s and not json_equal(value, s["const"]):
            return False
        if "enum" in s and not any(json_equal(value, e) for e in s["enum"]):
            return False
        if not all(self.valid(value, sub) for sub in s.get("allOf", ())):
            return False
        if "anyOf" in s and not any(self.valid(value, sub) for sub in s["anyOf"]):
            return False
        if "oneOf" in s and sum(self.valid(value, sub) for sub in s["oneOf"]) != 1:
            return False
        if "not" in s and self.valid(value, s["not"]):
            return False
        if isinstance(value, str):
            return self.valid_string(value, s)
        if is_type(value, "number"):
            return self.valid_num(value, s)
        if isinstance(value, list):
            return self.valid_array(value, s)
        if isinstance(value, dict):
            return self.valid_object(value, s)
        return True

    def valid_string(self, value: str, s: dict[str, Any]) -> bool:
        if len(value) < s.get("minLength", 0) or len(value) > s.get("maxLength", math.inf):
            return False
        return "pattern" not in s or re.search(s["pattern"], value) is not None

    def valid_num(self, v: float, s: dict[str, Any]) -> bool:
        lo, hi = s.get("minimum"), s.get("maximum")
        xlo, xhi = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
        if xlo is True:
            xlo, lo = lo, None
        if xhi is True:
            xhi, hi = hi, None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return False
        if isinstance(xlo, int | float) and xlo is not False and v <= xlo:
            return False
        if isinstance(xhi, int | float) and xhi is not False and v >= xhi:
            return False
        return not s.get("multipleOf") or is_multiple(v, s["multipleOf"])

    def valid_array(self, value: list[Any], s: dict[str, Any]) -> bool:
        if len(value) < s.get("minItems", 0) or len(value) > s.get("maxItems", math.inf):
            return False
        prefix, items = s.get("prefixItems") or [], s.get("items", True)
        if isinstance(items, list):
            prefix, items = items, s.get("additionalItems", True)
        for i, v in enumerate(value):
            if not self.valid(v, prefix[i] if i < len(prefix) else items):
                return False
        if s.get("uniqueItems"):
            return not any(json_equal(a, b) for i, a in enumerate(value) for b in value[i + 1 :])
        return True

    def valid_object(self, value: dict[str, Any], s: dict[str, Any]) -> bool:
        if any(k not in value for k in s.get("required", ())):
            return False
        n = len(value)
        if n < s.get("minProperties", 0) or n > s.get("maxProperties", math.inf):
            return False
        props, patterns = s.get("properties") or {}, s.get("patternProperties") or {}
        extra = s.get("additionalProperties", True)
        for k, v in value.items():
            matched = [sub for p, sub in patterns.items() if re.search(p, k)]
            if k in props:
                matched.append(props[k])
            elif not matched:
                matched.append(extra)
            if not all(self.valid(v, sub) for sub in matched):
                return False
        return True
