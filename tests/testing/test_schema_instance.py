"""generate_instance() output validates under jsonschema's Draft 2020-12 validator."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nemorouter.testing import generate_instance

FORMAT_CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER

MONEY = {"type": "number", "minimum": 0, "maximum": 100000, "multipleOf": 0.01}
ADDRESS = {
    "type": "object",
    "properties": {
        "street": {"type": "string", "minLength": 3, "maxLength": 80},
        "city": {"type": "string"},
        "postal_code": {"type": "string", "pattern": r"^\d{5}(-\d{4})?$"},
        "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
    },
    "required": ["street", "city", "country"],
    "additionalProperties": False,
}
INVOICE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": ADDRESS,
        "party": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "vat_id": {"type": ["string", "null"], "pattern": "^[A-Z]{2}[0-9A-Z]{8,12}$"},
                "email": {"type": "string", "format": "email"},
                "address": {"$ref": "#/$defs/address"},
            },
            "required": ["name", "address"],
        },
        "line": {
            "type": "object",
            "properties": {
                "description": {"type": "string"},
                "quantity": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000},
                "unit_price": MONEY,
                "tax_rate": {"enum": [0, 0.07, 0.19, 0.2]},
                "sku": {
                    "anyOf": [{"type": "string", "pattern": "^SKU-[A-Z0-9]{6}$"}, {"type": "null"}]
                },
            },
            "required": ["description", "quantity", "unit_price"],
            "additionalProperties": False,
        },
    },
    "properties": {
        "invoice_number": {"type": "string", "pattern": "^INV-[0-9]{4,10}$"},
        "issue_date": {"type": "string", "format": "date"},
        "due_date": {"type": ["string", "null"], "format": "date"},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP", "CHF"]},
        "seller": {"$ref": "#/$defs/party"},
        "buyer": {"$ref": "#/$defs/party"},
        "lines": {
            "type": "array",
            "items": {"$ref": "#/$defs/line"},
            "minItems": 1,
            "maxItems": 50,
        },
        "subtotal": MONEY,
        "tax_total": MONEY,
        "total": MONEY,
        "payment": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "method": {"const": "bank_transfer"},
                        "iban": {"type": "string"},
                    },
                    "required": ["method", "iban"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {
                        "method": {"const": "card"},
                        "last4": {"type": "string", "pattern": "^[0-9]{4}$"},
                    },
                    "required": ["method", "last4"],
                    "additionalProperties": False,
                },
            ]
        },
        "document_id": {"type": "string", "format": "uuid"},
        "source_url": {"type": "string", "format": "uri"},
        "received_at": {"type": "string", "format": "date-time"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["invoice_number", "issue_date", "currency", "seller", "lines", "total"],
    "additionalProperties": False,
}
RECEIPT = {
    "type": "object",
    "definitions": {  # draft-07 spelling
        "item": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "price": MONEY,
                "count": {"type": "integer", "minimum": 1, "default": 1},
            },
            "required": ["name", "price"],
        }
    },
    "properties": {
        "merchant": {"type": "string", "maxLength": 40},
        "time": {"type": "string", "format": "time"},
        "items": {"type": "array", "items": {"$ref": "#/definitions/item"}},
        "total": {"type": "number", "exclusiveMinimum": 0},
        "tip": {"type": "number", "nullable": True, "minimum": 0, "maximum": 50},
        "category": {"type": "string", "enum": ["food", "travel", "office", "other"]},
        "tags": {
            "type": "array",
            "items": {"type": "string"},
            "uniqueItems": True,
            "minItems": 2,
            "maxItems": 4,
        },
        "location": {
            "type": "array",
            "prefixItems": [
                {"type": "number", "minimum": -90, "maximum": 90},
                {"type": "number", "minimum": -180, "maximum": 180},
            ],
            "items": False,
        },
        "meta": {
            "allOf": [
                {
                    "type": "object",
                    "properties": {"ocr_engine": {"type": "string"}},
                    "required": ["ocr_engine"],
                },
                {
                    "properties": {"pages": {"type": "integer", "minimum": 1, "maximum": 20}},
                    "required": ["pages"],
                },
            ]
        },
    },
    "required": ["merchant", "items", "total", "category"],
}
TREE = {  # recursion must be depth-limited
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "label": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "required": ["label", "children"],
        }
    },
    "$ref": "#/$defs/node",
}
LINKED = {  # recursion that only ends through the null branch
    "$defs": {
        "cell": {
            "type": "object",
            "properties": {
                "v": {"type": "integer"},
                "next": {"anyOf": [{"$ref": "#/$defs/cell"}, {"type": "null"}]},
            },
            "required": ["v", "next"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/cell",
}


def check(schema: Any, instance: Any) -> None:
    jsonschema.Draft202012Validator(schema, format_checker=FORMAT_CHECKER).validate(instance)


@pytest.mark.parametrize(
    "schema",
    [INVOICE, RECEIPT, TREE, LINKED, ADDRESS],
    ids=["invoice", "receipt", "tree", "linked", "address"],
)
def test_realistic_schemas_validate(schema: dict[str, Any]) -> None:
    seen = set()
    for seed in range(25):
        value = generate_instance(schema, seed=seed)
        check(schema, value)
        seen.add(repr(value))
    assert len(seen) > 20  # seeds give different answers


def test_all_properties_are_present() -> None:
    value = generate_instance(INVOICE, seed=3)
    assert set(value) == set(INVOICE["properties"])
    assert set(value["seller"]) >= {"name", "vat_id", "email", "address"}


def test_deterministic_per_seed() -> None:
    assert generate_instance(INVOICE, seed=42) == generate_instance(INVOICE, seed=42)
    assert generate_instance(INVOICE, seed=42) != generate_instance(INVOICE, seed=43)


@pytest.mark.parametrize(
    "schema",
    [
        {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},  # overlapping branches
        {"type": "integer", "multipleOf": 7, "exclusiveMinimum": 10, "exclusiveMaximum": 22},
        {"type": "number", "minimum": 0.1, "maximum": 0.2},
        {"type": "number", "multipleOf": 0.25, "minimum": -3, "maximum": -2},
        {"type": "string", "minLength": 12, "maxLength": 12},
        {"type": "string", "pattern": "^(EUR|USD)-[a-f0-9]{3}\\.?$"},
        {"type": "string", "pattern": "[^a-z]+", "minLength": 8},
        {"const": {"a": [1, 2]}},
        {"enum": [None, "x"], "type": "string"},
        {"type": "array", "prefixItems": [{"type": "boolean"}, {"type": "null"}], "minItems": 2},
        {"type": ["integer", "string"], "minimum": 5, "minLength": 3},
        {"type": "object", "required": ["a"], "additionalProperties": {"type": "integer"}},
        {"type": "object", "minProperties": 2},
        {"not": {"type": "string"}, "type": ["string", "integer"]},
        {"allOf": [{"type": "number"}, {"type": "integer", "maximum": 3}]},
        True,
        {},
    ],
)
def test_edge_cases(schema: Any) -> None:
    for seed in range(10):
        check(schema, generate_instance(schema, seed=seed))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^a$", "minLength": 5},
        {"type": "integer", "minimum": 3, "maximum": 2},
        {"enum": ["a"], "type": "integer"},
        {"$ref": "#/$defs/missing"},
        {"$ref": "https://example.com/schema.json"},
        False,
    ],
)
def test_unsatisfiable_raises_value_error(schema: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any clear ValueError is the contract
        generate_instance(schema)


# ---- random schemas in the supported subset ------------------------------------------------------

PATTERNS = [
    r"^[A-Z]{3}-\d{4}$",
    r"^\d+(\.\d{2})?$",
    r"[a-z]+@[a-z]+\.com",
    r"^(EUR|USD|GBP)$",
    r"^\w{2,5}$",
    r"^INV-[0-9]{3,8}$",
    r"x[^y]z",
]
FORMATS = ["date", "date-time", "time", "email", "uri", "uuid"]


@st.composite
def strings(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["plain", "format", "pattern", "enum"]))
    if kind == "format":
        return {"type": "string", "format": draw(st.sampled_from(FORMATS))}
    if kind == "pattern":
        return {"type": "string", "pattern": draw(st.sampled_from(PATTERNS))}
    if kind == "enum":
        return {
            "type": "string",
            "enum": draw(st.lists(st.text(max_size=5), min_size=1, max_size=4, unique=True)),
        }
    schema: dict[str, Any] = {"type": "string"}
    lo = draw(st.integers(0, 30))
    if draw(st.booleans()):
        schema["minLength"] = lo
    if draw(st.booleans()):
        schema["maxLength"] = lo + draw(st.integers(0, 10))
    if draw(st.booleans()):
        schema["nullable"] = True
    return schema


@st.composite
def numbers(draw: st.DrawFn) -> dict[str, Any]:
    integer = draw(st.booleans())
    schema: dict[str, Any] = {"type": "integer" if integer else "number"}
    step = draw(st.sampled_from([1, 2, 5, 10] if integer else [None, 0.01, 0.25, 0.5, 1]))
    lo = draw(st.integers(-10_000, 10_000))
    width = draw(st.integers(3, 1000)) * step if step else draw(st.floats(0.5, 1e4))
    if step:
        schema["multipleOf"] = step
    if draw(st.booleans()):
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = lo
    if draw(st.booleans()):
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = lo + width
    return schema


SCALARS = st.one_of(
    strings(),
    numbers(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.builds(lambda v: {"const": v}, st.integers() | st.text(max_size=4)),
    st.just({"type": ["string", "null"]}),
)


@st.composite
def objects(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    props = draw(
        st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), children, max_size=4)
    )
    schema: dict[str, Any] = {"type": "object", "properties": props}
    schema["required"] = (
        draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
    )
    if draw(st.booleans()):
        schema["additionalProperties"] = False
    return schema


@st.composite
def arrays(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": draw(children)}
    lo = draw(st.integers(0, 3))
    if draw(st.booleans()):
        schema["minItems"] = lo
    if draw(st.booleans()):
        schema["maxItems"] = lo + draw(st.integers(0, 3))
    if draw(st.booleans()):
        schema = {
            "type": "array",
            "prefixItems": [draw(children), draw(children)],
            "items": draw(st.sampled_from([False, {"type": "integer"}])),
        }
    return schema


@st.composite
def disjoint_one_of(draw: st.DrawFn) -> dict[str, Any]:
    # branches of different JSON types, so exactly one matches
    kinds = draw(
        st.lists(
            st.sampled_from(["string", "integer", "boolean", "null", "array"]),
            min_size=2,
            max_size=4,
            unique=True,
        )
    )
    return {"oneOf": [{"type": k} for k in kinds]}


@st.composite
def all_of(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    a, b = draw(children), draw(children)
    return {
        "allOf": [
            {"type": "object", "properties": {"left": a}, "required": ["left"]},
            {"properties": {"right": b}, "required": ["right"]},
        ]
    }


def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        objects(children),
        arrays(children),
        st.builds(lambda xs: {"anyOf": xs}, st.lists(children, min_size=1, max_size=3)),
        disjoint_one_of(),
        all_of(children),
    )


SCHEMAS = st.recursive(SCALARS, extend, max_leaves=12)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A top-level schema, sometimes reached through `$defs` and `$ref`."""
    schema = draw(SCHEMAS)
    if draw(st.booleans()):
        return {"$defs": {"main": schema}, "$ref": "#/$defs/main"}
    return schema


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=documents(), seed=st.integers(0, 2**32))
def test_random_schemas_validate(schema: dict[str, Any], seed: int) -> None:
    check(schema, generate_instance(schema, seed=seed))
