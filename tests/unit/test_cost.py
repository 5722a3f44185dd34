"""Cost per call, hand-computed from the catalog's prices: tiers, cached input, images."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from nemorouter.catalog import load_catalog
from nemorouter.core.cost import call_cost
from nemorouter.types.money import usd


def usage(prompt: int, completion: int, cached: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached is not None:
        body["prompt_tokens_details"] = {"cached_tokens": cached}
    return body


# (model, usage, expected USD) — each computed by hand, per 1M tokens:
CASES = [
    # 1000 x 1.25 + 500 x 10.00
    ("gemini-2.5-pro", usage(1000, 500), "0.00625"),
    # above 200k prompt tokens, the upper tier: 250000 x 2.50 + 1000 x 15.00
    ("gemini-2.5-pro", usage(250_000, 1000), "0.64"),
    # exactly 200k is not above it: 200000 x 1.25
    ("gemini-2.5-pro", usage(200_000, 0), "0.25"),
    # cached input: 2000 x 1.25 + 8000 x 0.125 + 100 x 10.00
    ("gemini-2.5-pro", usage(10_000, 100, cached=8000), "0.0045"),
    # tier and cache together: 200000 x 2.50 + 100000 x 0.25
    ("gemini-2.5-pro", usage(300_000, 0, cached=100_000), "0.525"),
    # one scanned page (image tokens as reported): 1548 x 0.30 + 120 x 2.50
    ("gemini-2.5-flash", usage(1548, 120), "0.0007644"),
    # 1600 x 3.00 + 200 x 15.00
    ("claude-sonnet-4-5", usage(1600, 200), "0.0078"),
    # 976 x 0.15 + 1024 x 0.075 + 50 x 0.60
    ("gpt-4o-mini", usage(2000, 50, cached=1024), "0.0002532"),
    # no cached-input price: cached tokens at the input rate, 1000 x 5.00 + 10 x 16.00
    ("llama-3.1-405b-instruct-maas", usage(1000, 10, cached=500), "0.00516"),
    # more cached than prompt tokens is capped at the prompt: 1000 x 0.03 + 1 x 2.50
    ("gemini-2.5-flash", usage(1000, 1, cached=5000), "0.0000325"),
    # nothing used, nothing owed
    ("gemini-2.5-flash-lite", usage(0, 0), "0"),
]


@pytest.mark.parametrize(("model", "used", "expected"), CASES)
def test_hand_computed_costs(model: str, used: dict[str, Any], expected: str) -> None:
    cost = call_cost(load_catalog()[model].pricing, used)
    assert cost == Decimal(expected)
    assert usd(cost) == expected


def test_no_usage_means_no_cost() -> None:
    pricing = load_catalog()["gemini-2.5-pro"].pricing
    assert call_cost(pricing, None) is None
    assert call_cost(pricing, {"prompt_tokens": 10}) is None
    assert call_cost(pricing, {"prompt_tokens": -1, "completion_tokens": 1}) is None
    assert call_cost(pricing, {"prompt_tokens": 1.5, "completion_tokens": 1}) is None
    assert call_cost(None, usage(1, 1)) is None


def test_usd_is_plain_notation() -> None:
    assert usd(Decimal("1E-7")) == "0.0000001"
    assert usd(Decimal("12.5000")) == "12.5"
    assert usd(Decimal("3")) == "3"


def claude_usage(
    prompt: int, completion: int, read: int, written: int, hour: int | None = None
) -> dict[str, Any]:
    """OpenAI usage as anthropic_response builds it (cache writes under LiteLLM's names)."""
    details: dict[str, Any] = {"cached_tokens": read, "cache_creation_tokens": written}
    if hour is not None:
        details["cache_creation_token_details"] = {
            "ephemeral_5m_input_tokens": written - hour,
            "ephemeral_1h_input_tokens": hour,
        }
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "prompt_tokens_details": details}  # fmt: skip


# Anthropic pricing: cache writes cost 1.25x input (5 minutes) or 2x input (1 hour), reads 0.1x.
CLAUDE_CACHE_CASES = [
    # Sonnet 4.5 (3 in, 15 out, reads 0.30): 100 uncached x 3 + 1000 written (5 min) x 3.75
    # + 200 x 15
    ("claude-sonnet-4-5", claude_usage(1100, 200, 0, 1000, hour=0), "0.00705"),
    # 1-hour writes at 2x: 100 x 3 + 1000 x 6 + 200 x 15
    ("claude-sonnet-4-5", claude_usage(1100, 200, 0, 1000, hour=1000), "0.0093"),
    # mixed, with reads: 50 x 3 + 2000 x 0.30 + 400 x 3.75 + 600 x 6 + 10 x 15
    ("claude-sonnet-4-5", claude_usage(3050, 10, 2000, 1000, hour=600), "0.006"),
    # no TTL split reported: the writes are 5-minute ones (Anthropic's default TTL)
    ("claude-sonnet-4-5", claude_usage(1100, 200, 0, 1000), "0.00705"),
    # Haiku 4.5 (1 in, 5 out): 10 x 1 + 90 x 2 + 0 out
    ("claude-haiku-4-5", claude_usage(100, 0, 0, 90, hour=90), "0.00019"),
    # writes are never more than the prompt left after reads: 100 x 0.30 + 0 x ...
    ("claude-sonnet-4-5", claude_usage(100, 0, 100, 50, hour=50), "0.00003"),
]


@pytest.mark.parametrize(("model", "used", "expected"), CLAUDE_CACHE_CASES)
def test_claude_cache_writes_cost_more_than_input(
    model: str, used: dict[str, Any], expected: str
) -> None:
    assert call_cost(load_catalog()[model].pricing, used) == Decimal(expected)


def test_cache_writes_of_models_without_multipliers_cost_the_input_rate() -> None:
    # gemini-2.5-flash: 0.30 in; 1000 "written" tokens are charged as input, nothing more
    used = claude_usage(1000, 0, 0, 1000, hour=1000)
    assert call_cost(load_catalog()["gemini-2.5-flash"].pricing, used) == Decimal("0.0003")


def test_the_provider_types_price_is_the_one_charged() -> None:
    """gemini-2.0-flash: 1000 in + 1000 out costs 0.0005 on the Gemini API, 0.00075 on Vertex;
    Sonnet 4.5 on a regional Vertex endpoint costs 1.1x the global price."""
    flash = load_catalog()["gemini-2.0-flash"]
    used = usage(1000, 1000)
    assert call_cost(flash.pricing_for("gemini", None), used) == Decimal("0.0005")
    assert call_cost(flash.pricing_for("vertex", "us-central1"), used) == Decimal("0.00075")
    sonnet = load_catalog()["claude-sonnet-4-5"]
    regional = call_cost(sonnet.pricing_for("anthropic-vertex", "europe-west1"), used)
    global_ = call_cost(sonnet.pricing_for("anthropic-vertex", "global"), used)
    assert global_ == Decimal("0.018") and regional == Decimal("0.0198")
