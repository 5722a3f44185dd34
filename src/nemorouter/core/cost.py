"""The cost of a call, in exact decimal USD, from the provider's reported usage.

cost = (uncached prompt tokens x input rate + cached prompt tokens x cached-input rate
        + completion tokens x output rate) / 1,000,000,
with the rates of the price tier the prompt size falls in. Image tokens are part of the
prompt tokens as the provider reports them; reasoning tokens are part of the completion.
No usage reported means no cost: never a made-up number. Costs are quantized to the
picodollar (see `money`).
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
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
    cached = min(cached or 0, prompt)
    rates = pricing.rates(prompt)
    cached_rate = (
        rates.cached_input_per_mtok
        if rates.cached_input_per_mtok is not None
        else rates.input_per_mtok
    )
    total = (
        (prompt - cached) * rates.input_per_mtok
        + cached * cached_rate
        + completion * rates.output_per_mtok
    )
    return quantize(total / MILLION)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
