"""Token prices: exact decimals in USD per million tokens, with prompt-size tiers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per one million tokens; exact decimals."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Rates that apply instead when the prompt is longer than `above_prompt_tokens`."""

    above_prompt_tokens: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class Pricing:
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()

    def rates(self, prompt_tokens: int) -> Rates:
        """The rates for a prompt of this size (the highest tier it exceeds, else base)."""
        chosen = Rates(self.input_per_mtok, self.output_per_mtok, self.cached_input_per_mtok)
        for tier in self.tiers:
            if prompt_tokens > tier.above_prompt_tokens:
                chosen = tier.rates
        return chosen
