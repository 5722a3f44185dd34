"""A deployment's `pricing` block: its own prices, laid over the catalog's.

Kept apart from config.py (which holds the rest of the schema) so the price rules sit
together: the fields, how they override the catalog, and what makes them invalid.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated

import msgspec

from nemorouter.config_sections import Section
from nemorouter.types.prices import PriceOverride, PriceTier, Rates

PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class PriceTierConfig(Section):
    above_prompt_tokens: PositiveInt
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None


class CacheWriteConfig(Section, rename={"five_minutes": "5m", "one_hour": "1h"}):
    five_minutes: Decimal | None = None
    one_hour: Decimal | None = None


class PricingConfig(Section):
    """A deployment's own prices, laid over the catalog's for its provider type and location
    (types/prices `PriceOverride`): each field stated replaces the catalog's, each left out is
    kept; stated `tiers` replace the catalog's (`tiers: []` removes them). Stated prices are
    charged as they are (no regional premium is added to them). A model the catalog does not
    know must state input and output."""

    input_per_mtok: Decimal | None = None
    output_per_mtok: Decimal | None = None
    cached_input_per_mtok: Decimal | None = None
    tiers: tuple[PriceTierConfig, ...] | None = None
    cache_write_multiplier: CacheWriteConfig | None = None

    def override(self) -> PriceOverride:
        writes = self.cache_write_multiplier or CacheWriteConfig()
        return PriceOverride(
            self.input_per_mtok,
            self.output_per_mtok,
            self.cached_input_per_mtok,
            None
            if self.tiers is None
            else tuple(
                PriceTier(
                    t.above_prompt_tokens,
                    Rates(t.input_per_mtok, t.output_per_mtok, t.cached_input_per_mtok),
                )
                for t in self.tiers
            ),
            writes.five_minutes,
            writes.one_hour,
        )

    def decimals(self) -> list[tuple[str, Decimal | None]]:
        """(key path below `pricing`, value) of every price and multiplier."""
        out: list[tuple[str, Decimal | None]] = [
            (name, getattr(self, name))
            for name in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok")
        ]
        for i, tier in enumerate(self.tiers or ()):
            for name in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok"):
                out.append((f"tiers[{i}].{name}", getattr(tier, name)))
        writes = self.cache_write_multiplier or CacheWriteConfig()
        out += [
            ("cache_write_multiplier.5m", writes.five_minutes),
            ("cache_write_multiplier.1h", writes.one_hour),
        ]
        return out

    def problems(self) -> Iterator[tuple[str, str]]:
        """(key path below `pricing`, what is wrong) of each invalid value."""
        for where, value in self.decimals():
            if value is not None and (not value.is_finite() or value < 0):
                yield where, "must be a non-negative decimal"
        previous = 0
        for i, tier in enumerate(self.tiers or ()):
            if tier.above_prompt_tokens <= previous:
                yield f"tiers[{i}].above_prompt_tokens", f"tiers rise: must be above {previous}"
            previous = tier.above_prompt_tokens
