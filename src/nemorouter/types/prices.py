"""Token prices: exact decimals in USD per million tokens, with prompt-size tiers.

A `Pricing` is what one deployment charges (its provider type and endpoint applied); a
`PriceOverride` is a partial price sheet laid over another (a deployment's `pricing`, or a
catalog entry's price for one provider type): every field it states replaces the one below,
every field it leaves out is kept. `tiers` is replaced as a whole (`tiers: []` removes them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per one million tokens; exact decimals."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None

    def scaled(self, factor: Decimal) -> Rates:
        cached = self.cached_input_per_mtok
        return Rates(
            self.input_per_mtok * factor,
            self.output_per_mtok * factor,
            None if cached is None else cached * factor,
        )


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Rates that apply instead when the prompt is longer than `above_prompt_tokens`."""

    above_prompt_tokens: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class Pricing:
    """Rates, and what writing the prompt cache costs as a multiple of the input rate
    (Claude: 1.25 for the 5-minute cache, 2 for the 1-hour one; 1 where writes are not
    reported or not charged extra)."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()
    cache_write_5m: Decimal = ONE
    cache_write_1h: Decimal = ONE

    def rates(self, prompt_tokens: int) -> Rates:
        """The rates for a prompt of this size (the highest tier it exceeds, else base)."""
        chosen = Rates(self.input_per_mtok, self.output_per_mtok, self.cached_input_per_mtok)
        for tier in self.tiers:
            if prompt_tokens > tier.above_prompt_tokens:
                chosen = tier.rates
        return chosen

    def scaled(self, factor: Decimal) -> Pricing:
        """Every token rate times `factor` (an endpoint's premium); multipliers unchanged."""
        base = Rates(self.input_per_mtok, self.output_per_mtok, self.cached_input_per_mtok)
        base = base.scaled(factor)
        return replace(
            self,
            input_per_mtok=base.input_per_mtok,
            output_per_mtok=base.output_per_mtok,
            cached_input_per_mtok=base.cached_input_per_mtok,
            tiers=tuple(
                PriceTier(t.above_prompt_tokens, t.rates.scaled(factor)) for t in self.tiers
            ),
        )


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """A partial price sheet: None leaves the field below as it is."""

    input_per_mtok: Decimal | None = None
    output_per_mtok: Decimal | None = None
    cached_input_per_mtok: Decimal | None = None
    tiers: tuple[PriceTier, ...] | None = None
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None

    @property
    def complete(self) -> bool:
        """It prices a call on its own (a model the catalog does not know)."""
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    def over(self, base: Pricing | None) -> Pricing:
        """This sheet laid over `base`; without a base it must state input and output."""
        if base is None:
            if self.input_per_mtok is None or self.output_per_mtok is None:
                raise ValueError("a price without a catalog entry needs input and output rates")
            base = Pricing(self.input_per_mtok, self.output_per_mtok)
        return Pricing(
            _first(self.input_per_mtok, base.input_per_mtok),
            _first(self.output_per_mtok, base.output_per_mtok),
            self.cached_input_per_mtok
            if self.cached_input_per_mtok is not None
            else base.cached_input_per_mtok,
            self.tiers if self.tiers is not None else base.tiers,
            _first(self.cache_write_5m, base.cache_write_5m),
            _first(self.cache_write_1h, base.cache_write_1h),
        )


def _first(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value
