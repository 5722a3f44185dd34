"""The cost of a call, in exact decimal USD, from the provider's reported usage.

cost = (uncached prompt tokens x input rate + cache reads x cached-input rate
        + cache writes x input rate x the write multiplier of their TTL
        + completion tokens x output rate) / 1,000,000,
with the rates of the price tier the prompt size falls in. Image tokens are part of the
prompt tokens as the provider reports them; reasoning tokens are part of the completion.
Cache reads are `prompt_tokens_details.cached_tokens`; cache writes (Claude) are
`prompt_tokens_details.cache_creation_tokens`, split by TTL in `cache_creation_token_details`
(`ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`: LiteLLM's names); writes the split
does not place are 5-minute ones, Anthropic's default TTL. No usage reported means no cost:
never a made-up number. Costs are quantized to the picodollar (see `money`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nemorouter.types.money import quantize
from nemorouter.types.prices import Pricing

MILLION = Decimal(1_000_000)


def call_cost(pricing: Pricing | None, usage: Any) -> Decimal | None:
    if pricing is None or not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    details = usage.get("prompt_tokens_details")
    if not isinstance(details, dict):
        details = {}
    cached = min(_count(details.get("cached_tokens")) or 0, prompt)
    written = min(_count(details.get("cache_creation_tokens")) or 0, prompt - cached)
    split = details.get("cache_creation_token_details")
    hour = _count(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) else None
    hour = min(hour or 0, written)
    rates = pricing.rates(prompt)
    cached_rate = (
        rates.cached_input_per_mtok
        if rates.cached_input_per_mtok is not None
        else rates.input_per_mtok
    )
    total = (
        (prompt - cached - written) * rates.input_per_mtok
        + cached * cached_rate
        + (written - hour) * rates.input_per_mtok * pricing.cache_write_5m
        + hour * rates.input_per_mtok * pricing.cache_write_1h
        + completion * rates.output_per_mtok
    )
    return quantize(total / MILLION)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
