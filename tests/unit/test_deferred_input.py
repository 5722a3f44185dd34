"""Deferred jobs: the batch input file checks, multipart forms, and batch prices."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from nemorouter.catalog import CatalogError, load_catalog, parse_catalog
from nemorouter.config import parse_config
from nemorouter.core.deferred.input import read_lines
from nemorouter.core.deployments import DeploymentPool
from nemorouter.types.errors import GatewayError
from nemorouter.types.multipart import build_form, parse_form


def line(i: int, **changes: object) -> bytes:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    data = {"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
    return orjson.dumps({**data, **changes}) + b"\n"


def test_input_lines_are_read_and_bad_ones_named() -> None:
    assert [c for c, _ in read_lines(line(0) + b"\n" + line(1), 10)] == ["c0", "c1"]
    cases = {
        line(0) + b"[1]\n": "Line 2 of the input file: expected a JSON object",
        line(0) + line(0): "Line 2 of the input file: duplicate custom_id 'c0'",
        line(0, method="GET"): "Line 1 of the input file: 'method'",
        line(0, body="x"): "Line 1 of the input file: 'body'",
        line(0, custom_id=""): "Line 1 of the input file: 'custom_id'",
        b"": "no request lines",
        line(0) + line(1) + line(2): "more than 2 requests",
    }
    for content, message in cases.items():
        with pytest.raises(GatewayError, match=message):
            read_lines(content, 2)


def test_multipart_round_trip_and_non_forms() -> None:
    kind, body = build_form({"purpose": "batch"}, {"file": ("a.jsonl", b"x\r\ny\n", "text/plain")})
    form = parse_form(kind, body)
    assert form is not None
    assert form["purpose"].data == b"batch"
    assert (form["file"].filename, form["file"].data) == ("a.jsonl", b"x\r\ny\n")
    assert parse_form("application/json", b"{}") is None


def test_batch_prices_from_the_catalog() -> None:
    catalog = load_catalog()
    pro = catalog["gemini-2.5-pro"]
    vertex = pro.batch_pricing_for("vertex", "global")
    assert vertex is not None
    assert vertex.input_per_mtok == pro.pricing.input_per_mtok / 2
    assert vertex.output_per_mtok == pro.pricing.output_per_mtok / 2
    # Google: the implicit-cache discount takes precedence; the two do not stack
    assert vertex.cached_input_per_mtok == pro.pricing.cached_input_per_mtok
    assert (
        vertex.tiers[0].rates.cached_input_per_mtok
        == pro.pricing.tiers[0].rates.cached_input_per_mtok
    )
    sonnet = catalog["claude-sonnet-4-5"]
    claude = sonnet.batch_pricing_for("anthropic", None)
    assert claude is not None and claude.cached_input_per_mtok == Decimal("0.150")
    assert pro.batch_pricing_for("openai-compatible", None) is None  # no known batch price
    assert sonnet.batch_pricing_for("anthropic-vertex", "us-east5") is None


def test_a_batch_share_outside_0_to_1_is_refused() -> None:
    text = """
sources: {s: "x"}
as_of: 2026-01-01
models:
  m:
    provider_family: openai
    capabilities: [vision]
    context_window: 1000
    max_output_tokens: 100
    pricing: {input_per_mtok: "1", output_per_mtok: "2"}
    sources: [s]
    batch_discount: {openai: "1.5"}
"""
    with pytest.raises(CatalogError, match=r"batch_discount\.openai"):
        parse_catalog(text)


def test_deployment_batch_prices() -> None:
    config = parse_config(
        {
            "settings": {"master_key": "k" * 16, "database_url": "sqlite:///:memory:"},
            "providers": {
                "oai": {"type": "openai", "api_key": "sk-x"},
                "vllm": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"},
            },
            "deployments": [
                {"id": "a", "model": "gpt-4o-mini", "provider": "oai"},
                {"id": "b", "model": "gpt-4o", "provider": "oai", "batch": False},
                {"id": "c", "model": "gemini-2.5-flash", "provider": "vllm"},
                {"id": "d", "model": "gemini-2.5-pro", "provider": "vllm", "batch_discount": "0.5"},
            ],
        },
        env={},
    )
    from nemorouter.providers import build_adapter

    adapters = {n: build_adapter(n, p, config.settings) for n, p in config.providers.items()}
    found = {d.id: d for ds in DeploymentPool(config, adapters).by_model.values() for d in ds}
    assert found["a"].batch_pricing is not None
    assert found["a"].batch_pricing.input_per_mtok == Decimal("0.075")
    assert found["b"].batch_pricing is None  # batch: false
    assert found["c"].batch_pricing is None  # no batch price known on this type
    assert found["d"].batch_pricing is not None  # the operator's own share
    assert found["d"].batch_pricing.output_per_mtok == Decimal("5.000")
