"""Generate a value that validates against a JSON Schema (the structured-output subset).

The generator is seeded so the simulated provider answers deterministically per request while
values still differ between requests. Every result is checked with `schema_validate` (same
subset); if no valid value can be found a `ValueError` explains why.
"""

from __future__ import annotations

import datetime
import math
import random
import re
import uuid
from typing import Any

from nemorouter.testing.pattern_strings import UnsupportedPattern, parse_pattern, sample_pattern
from nemorouter.testing.schema_validate import (
    Schema,
    SchemaValidator,
    json_equal,
    schema_types,
)
from nemorouter.testing.sim_plausible import (
    PLACEHOLDER_MARK,
    money_like,
    plausible_string,
    quantity_like,
)

_MINIMAL_REF_DEPTH = 3  # past this many nested $refs only required parts are generated
_MAX_REF_DEPTH = 12  # a schema that still recurses here cannot terminate
_WORDS = [
    *("acme", "northwind", "contoso", "globex", "initech", "umbrella", "invoice", "receipt"),
    *("total", "net", "gross", "alpha", "delta", "omega", "harbor", "summit", "river"),
    *("maple", "cedar", "orion", "vega"),
]
_MIN_KEYS = ("minimum", "minLength", "minItems", "minProperties", "exclusiveMinimum")
_MAX_KEYS = ("maximum", "maxLength", "maxItems", "maxProperties", "exclusiveMaximum")


def generate_instance(schema: Schema, seed: int = 0) -> Any:
    """Return a JSON-compatible value valid under `schema` (draft 2020-12 subset)."""
    gen = _Generator(schema)
    last: Exception | None = None
    for attempt in range(6):
        gen.rng = random.Random(seed * 7919 + attempt)
        try:
            value = gen.gen(schema, 0, "")
        except _Retry as exc:
            last = exc
            continue
        if gen.valid(value, schema):
            return value
    raise ValueError(f"could not generate an instance for schema: {last or 'validation failed'}")


class _Retry(ValueError):
    """A random choice led to a dead end; another seed may work."""


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Conjunction of two schemas as one schema (good enough to generate from)."""
    out = dict(a)
    for k, v in b.items():
        if k not in out:
            out[k] = v
            continue
        cur = out[k]
        if k == "properties":
            props = dict(cur)
            for name, sub in v.items():
                props[name] = {"allOf": [props[name], sub]} if name in props else sub
            out[k] = props
        elif k == "required":
            out[k] = list(dict.fromkeys([*cur, *v]))
        elif k == "type":
            ta, tb = schema_types(a), schema_types(b)
            common = [t for t in ta if t in tb]
            if "integer" in ta + tb and "number" in ta + tb:  # integers are numbers too
                common.append("integer")
            if not common:
                raise ValueError(f"allOf combines incompatible types {cur!r} and {v!r}")
            out[k] = list(dict.fromkeys(common))
        elif k in _MIN_KEYS and not isinstance(v, bool):
            out[k] = max(cur, v)
        elif k in _MAX_KEYS and not isinstance(v, bool):
            out[k] = min(cur, v)
        elif k == "enum":
            out[k] = [x for x in cur if any(json_equal(x, y) for y in v)]
        elif k in ("anyOf", "oneOf"):
            out[k] = [{"allOf": [x, y]} for x in cur for y in v]
        elif k in ("items", "additionalProperties"):
            out[k] = False if cur is False or v is False else {"allOf": [cur, v]}
    return out


class _Generator(SchemaValidator):
    def __init__(self, root: Schema) -> None:
        super().__init__(root)
        self.rng = random.Random(0)

    # ---- references and combinators -------------------------------------------------------

    def flatten(self, schema: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Inline `$ref` and `allOf`; returns the flat schema and how many refs were followed."""
        refs = 0
        while "$ref" in schema or "allOf" in schema:
            if "$ref" in schema:
                rest = {k: v for k, v in schema.items() if k != "$ref"}
                target = self.resolve(schema["$ref"])
                if target is False:
                    raise ValueError("$ref points to the false schema")
                schema = _merge(target, rest) if isinstance(target, dict) else rest
                refs += 1
                if refs > _MAX_REF_DEPTH:
                    raise ValueError("$ref cycle without a terminating branch")
            if "allOf" in schema:
                merged = {k: v for k, v in schema.items() if k != "allOf"}
                for part in schema["allOf"]:
                    if part is False:
                        raise ValueError("allOf contains the false schema")
                    if isinstance(part, dict):
                        flat, n = self.flatten(part)
                        refs += n
                        merged = _merge(merged, flat)
                schema = merged
        return schema, refs

    # ---- generation -------------------------------------------------------------------------

    def gen(self, schema: Schema, depth: int, hint: str) -> Any:
        if schema is False:
            raise ValueError("the false schema admits no value")
        if schema is True or not schema:
            return self.string({}, hint)
        schema, refs = self.flatten(schema)
        depth += refs
        if depth > _MAX_REF_DEPTH:
            raise ValueError("schema recursion does not terminate")
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            rest = {k: v for k, v in schema.items() if k != "enum"}
            options = [v for v in schema["enum"] if self.valid(v, rest)]
            if not options:
                raise ValueError(f"no enum value satisfies the schema: {schema['enum']!r}")
            return self.rng.choice(options)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.branch(schema, key, depth, hint)
        types = schema_types(schema)
        minimal = depth >= _MINIMAL_REF_DEPTH
        if minimal:
            # stop recursion: prefer leaf types so nested $refs terminate
            leaf = [t for t in types if t not in ("object", "array")]
            t = "null" if "null" in types else (leaf or types)[0]
        else:
            real = [t for t in types if t != "null"] or types
            t = self.rng.choice(real)
        return self.typed(t, schema, depth, hint, minimal)

    def branch(self, schema: dict[str, Any], key: str, depth: int, hint: str) -> Any:
        rest = {k: v for k, v in schema.items() if k != key}
        branches = list(schema[key])
        self.rng.shuffle(branches)
        if depth >= _MINIMAL_REF_DEPTH:
            # recursion guard: try branches without references first
            branches.sort(key=lambda b: "$ref" in str(b))
        for b in branches:
            try:
                merged = _merge(rest, b) if isinstance(b, dict) else (rest if b else False)
                value = self.gen(merged, depth, hint)
            except ValueError:
                continue
            if self.valid(value, schema):
                return value
        raise _Retry(f"no {key} branch produced a valid value")

    def typed(self, t: str, schema: dict[str, Any], depth: int, hint: str, minimal: bool) -> Any:
        if t == "null":
            return None
        if t == "boolean":
            return self.rng.random() < 0.5
        if t in ("integer", "number"):
            return self.number(schema, t == "integer", hint)
        if t == "object":
            return self.obj(schema, depth, minimal)
        if t == "array":
            return self.array(schema, depth, minimal, hint)
        if t == "string":
            return self.string(schema, hint)
        raise ValueError(f"unsupported type {t!r}")

    def obj(self, schema: dict[str, Any], depth: int, minimal: bool) -> dict[str, Any]:
        props: dict[str, Schema] = schema.get("properties") or {}
        required: list[str] = schema.get("required") or []
        extra = schema.get("additionalProperties", True)
        out: dict[str, Any] = {}
        for name, sub in props.items():
            # all properties (not only required) so extraction answers look complete
            if sub is False or (minimal and name not in required):
                continue
            out[name] = self.gen(sub, depth, name)
        for name in required:
            if name not in out:
                if extra is False:
                    raise ValueError(f"required property {name!r} is not allowed")
                out[name] = self.gen(extra if isinstance(extra, dict) else {}, depth, name)
        i = 0
        while len(out) < schema.get("minProperties", 0) and extra is not False:
            i += 1
            out.setdefault(
                f"extra_{i}", self.gen(extra if isinstance(extra, dict) else {}, depth, "")
            )
        return out

    def array(self, schema: dict[str, Any], depth: int, minimal: bool, hint: str) -> list[Any]:
        items = schema.get("items", True)
        prefix: list[Schema] = schema.get("prefixItems") or []
        if isinstance(items, list):  # draft-07 tuple form
            prefix, items = items, schema.get("additionalItems", True)
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems")
        n = max(lo, 0 if minimal else max(len(prefix), self.rng.randint(1, 3)))
        if hi is not None:
            n = min(n, hi)
        if items is False:
            n = min(n, len(prefix))
        if n < lo:
            raise ValueError(f"minItems={lo} cannot be met")
        out: list[Any] = []
        for i in range(n):
            sub = prefix[i] if i < len(prefix) else items
            value = self.gen(sub, depth, hint)
            for _ in range(10):  # best effort for uniqueItems
                if not schema.get("uniqueItems") or not any(json_equal(value, o) for o in out):
                    break
                value = self.gen(sub, depth, hint)
            out.append(value)
        return out

    def number(self, schema: dict[str, Any], integer: bool, hint: str = "") -> float:
        lo, hi = schema.get("minimum"), schema.get("maximum")
        xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if xlo is True:  # draft-04 boolean form
            xlo, lo = lo, None
        if xhi is True:
            xhi, hi = hi, None
        floor_ = max(
            (v for v in (lo, xlo) if isinstance(v, int | float) and v is not False), default=None
        )
        ceil_ = min(
            (v for v in (hi, xhi) if isinstance(v, int | float) and v is not False), default=None
        )
        if floor_ is None:
            floor_ = 0 if ceil_ is None or ceil_ > 0 else ceil_ - 1000
        if ceil_ is None:
            ceil_ = floor_ + 1000
        m = schema.get("multipleOf")
        rng = self.rng
        candidates: list[float] = []
        if m:
            k_lo, k_hi = math.ceil(floor_ / m), math.floor(ceil_ / m)
            ks = [k_lo, k_hi, k_lo + 1, k_hi - 1] if k_lo <= k_hi else []
            ks = [rng.randint(k_lo, k_hi) for _ in range(30)] + ks if ks else []
            decimals = max(0, -math.floor(math.log10(abs(m)))) + 2 if m < 1 else 0
            for k in ks:
                candidates += [k * m, round(k * m, decimals)]
        elif integer:
            a, b = math.ceil(floor_), math.floor(ceil_)
            candidates = (
                [rng.randint(a, b) for _ in range(5)] + [a, a + 1, b, b - 1] if a <= b else []
            )
        else:
            candidates = [round(rng.uniform(floor_, ceil_), 2) for _ in range(5)]
            candidates += [rng.uniform(floor_, ceil_), (floor_ + ceil_) / 2]
        if not m:
            candidates = self.plausible_numbers(hint, integer, floor_, ceil_) + candidates
        for v in candidates:
            if integer:
                if not float(v).is_integer():
                    continue
                v = int(v)
            elif isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
                v = int(v)  # 12.0 → 12 keeps answers tidy
            if self.valid_number(v, schema):
                return v
        raise ValueError(f"no number satisfies the bounds in {schema!r}")

    def plausible_numbers(self, hint: str, integer: bool, lo: float, hi: float) -> list[float]:
        """An amount of money (cents) or a small count, when the field's name says so."""
        if money_like(hint) and not integer:
            a, b = max(lo, 12.0), min(hi, 4800.0)
            return [round(self.rng.uniform(a, b), 2)] if a <= b else []
        if quantity_like(hint) or money_like(hint):
            a, b = max(math.ceil(lo), 1), min(math.floor(hi), 50)
            return [self.rng.randint(a, b)] if a <= b else []
        return []

    def valid_number(self, v: float, schema: dict[str, Any]) -> bool:
        return self.valid(v, {k: schema[k] for k in schema if k not in ("type", "enum", "const")})

    def string(self, schema: dict[str, Any], hint: str) -> str:
        rng = self.rng
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        fmt, pattern = schema.get("format"), schema.get("pattern")
        if pattern is not None:
            return self.pattern_string(pattern, lo, hi)
        if fmt and (value := self.formatted(fmt)) is not None:
            return value
        value = plausible_string(hint, rng) if not fmt else None
        if value is not None and lo <= len(value) and (hi is None or len(value) <= hi):
            return value
        words = [w for w in re.split(r"[_\W]+", hint) if w] or [rng.choice(_WORDS)]
        text = " ".join([*words, rng.choice(_WORDS), str(rng.randint(1, 9999))]).capitalize()
        if hi is None or len(text) + len(PLACEHOLDER_MARK) <= hi:
            text += PLACEHOLDER_MARK
        if len(text) < lo:
            text += "x" * (lo - len(text))
        return text if hi is None else text[:hi]

    def formatted(self, fmt: str) -> str | None:
        rng = self.rng
        day = datetime.date(2020, 1, 1) + datetime.timedelta(days=rng.randint(0, 2000))
        clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        n = rng.randint(1, 999)
        return {
            "date": day.isoformat(),
            "date-time": f"{day.isoformat()}T{clock}Z",
            "time": f"{clock}Z",
            "email": f"{rng.choice(_WORDS)}{n}@example.com",
            "idn-email": f"{rng.choice(_WORDS)}{n}@example.com",
            "uri": f"https://example.com/{rng.choice(_WORDS)}/{n}",
            "uri-reference": f"https://example.com/{rng.choice(_WORDS)}/{n}",
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "hostname": f"{rng.choice(_WORDS)}{n}.example.com",
            "ipv4": f"192.0.2.{n % 256}",
            "ipv6": f"2001:db8::{n:x}",
            "duration": f"P{n % 30 + 1}D",
        }.get(fmt)

    def pattern_string(self, pattern: str, lo: int, hi: int | None) -> str:
        def fits(s: str) -> bool:
            return len(s) >= lo and (hi is None or len(s) <= hi) and bool(re.search(pattern, s))

        try:
            parsed = parse_pattern(pattern)
            for attempt in range(24):
                s = sample_pattern(parsed, self.rng, attempt * 4 + 3)
                pad = "x" * max(0, lo - len(s))
                for cand in (s, s + pad, pad + s):
                    if fits(cand):
                        return cand
        except (re.error, UnsupportedPattern, IndexError, ValueError):
            pass
        for cand in ("", "a", "A", "0", "example", "x" * lo, "0" * lo, "A" * lo):
            if fits(cand):
                return cand
        raise ValueError(
            f"cannot generate a string matching pattern {pattern!r} "
            f"with minLength={lo}, maxLength={hi}"
        )
