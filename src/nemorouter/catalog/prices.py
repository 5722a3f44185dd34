"""Price blocks of the catalog file: exact decimals, tiers, cache-write multipliers.

A block is `{input_per_mtok, output_per_mtok, cached_input_per_mtok?, tiers?,
cache_write_multiplier?: {5m, 1h}}`, every price a decimal string (never a float). A model's
`pricing` must state input and output; a `pricing_by_provider` block states only what differs
for that provider type and is laid over it (`PriceOverride`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from nemorouter.types.prices import PriceOverride, PriceTier, Rates

_FIELDS = frozenset(
    {"input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "tiers",
     "cache_write_multiplier"}
)  # fmt: skip
_TIER_FIELDS = frozenset(
    {"above_prompt_tokens", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok"}
)
_WRITE_TTLS = {"5m": "cache_write_5m", "1h": "cache_write_1h"}


class CatalogError(ValueError):
    """The catalog data file is malformed."""


def parse_decimal(value: object, where: str) -> Decimal:
    """Prices must be exact: decimal strings or integers, never floats."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CatalogError(f"{where}: price must be a decimal string, got {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise CatalogError(f"{where}: {value!r} is not a decimal") from None
    if not result.is_finite() or result < 0:
        raise CatalogError(f"{where}: {value!r} is not a non-negative decimal")
    return result


def _optional(raw: dict[str, Any], field: str, where: str) -> Decimal | None:
    value = raw.get(field)
    return None if value is None else parse_decimal(value, f"{where}.{field}")


def _rates(raw: Any, where: str) -> Rates:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a mapping of prices")
    unknown = set(raw) - _TIER_FIELDS
    if unknown:
        raise CatalogError(f"{where}: unknown fields {sorted(unknown)}")
    for field in ("input_per_mtok", "output_per_mtok"):
        if field not in raw:
            raise CatalogError(f"{where}: missing field {field!r}")
    return Rates(
        parse_decimal(raw["input_per_mtok"], f"{where}.input_per_mtok"),
        parse_decimal(raw["output_per_mtok"], f"{where}.output_per_mtok"),
        _optional(raw, "cached_input_per_mtok", where),
    )


def parse_tiers(raw: Any, where: str) -> tuple[PriceTier, ...]:
    """Tiers in rising order of prompt size."""
    if not isinstance(raw, list):
        raise CatalogError(f"{where}: expected a list of tiers")
    tiers = []
    previous = 0
    for i, tier in enumerate(raw):
        here = f"{where}[{i}]"
        above = tier.get("above_prompt_tokens") if isinstance(tier, dict) else None
        if not isinstance(above, int) or isinstance(above, bool) or above <= previous:
            raise CatalogError(f"{here}.above_prompt_tokens: must be an integer above {previous}")
        previous = above
        tiers.append(PriceTier(above, _rates(tier, here)))
    return tuple(tiers)


def parse_override(raw: Any, where: str) -> PriceOverride:
    """A price block; fields it leaves out are None (kept from what it is laid over)."""
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a mapping of prices")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise CatalogError(f"{where}: unknown fields {sorted(unknown)}")
    writes: dict[str, Decimal] = {}
    multipliers = raw.get("cache_write_multiplier")
    if multipliers is not None:
        if not isinstance(multipliers, dict) or set(map(str, multipliers)) - set(_WRITE_TTLS):
            raise CatalogError(f"{where}.cache_write_multiplier: expected {{5m: .., 1h: ..}}")
        for ttl, value in multipliers.items():
            here = f"{where}.cache_write_multiplier.{ttl}"
            writes[_WRITE_TTLS[str(ttl)]] = parse_decimal(value, here)
    tiers = raw.get("tiers")
    return PriceOverride(
        input_per_mtok=_optional(raw, "input_per_mtok", where),
        output_per_mtok=_optional(raw, "output_per_mtok", where),
        cached_input_per_mtok=_optional(raw, "cached_input_per_mtok", where),
        tiers=None if tiers is None else parse_tiers(tiers, f"{where}.tiers"),
        **writes,
    )
