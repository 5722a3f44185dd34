"""The model catalog: what each known model can do, how much it holds and what it costs."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

import yaml

from nemorouter.types.prices import PriceTier, Pricing, Rates

CAPABILITIES = frozenset(
    {
        "vision",
        "pdf",
        "long-context",
        "structured-output",
        "tools",
        "streaming",
        "audio",
        "embedding",
    }
)
# DESIGN §2.2: `long-context` means a window of at least this many tokens.
LONG_CONTEXT_TOKENS = 200_000
_ENTRY_FIELDS = frozenset(
    {"provider_family", "capabilities", "context_window", "max_output_tokens", "pricing", "as_of",
     "unverified", "source", "pdf_tokens_per_page"}
)  # fmt: skip
_PRICE_FIELDS = frozenset({"input_per_mtok", "output_per_mtok", "cached_input_per_mtok"})


@dataclass(frozen=True, slots=True)
class CatalogModel:
    name: str
    provider_family: str
    capabilities: frozenset[str]
    context_window: int
    max_output_tokens: int
    pricing: Pricing
    as_of: datetime.date
    unverified: tuple[str, ...] = ()
    # Prompt tokens one PDF page costs on this model (None: it does not read PDFs).
    pdf_tokens_per_page: int | None = None


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


def _rates(raw: Any, where: str) -> Rates:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a mapping of prices")
    for field in ("input_per_mtok", "output_per_mtok"):
        if field not in raw:
            raise CatalogError(f"{where}: missing field {field!r}")
    cached = raw.get("cached_input_per_mtok")
    return Rates(
        parse_decimal(raw["input_per_mtok"], f"{where}.input_per_mtok"),
        parse_decimal(raw["output_per_mtok"], f"{where}.output_per_mtok"),
        None if cached is None else parse_decimal(cached, f"{where}.cached_input_per_mtok"),
    )


def _pricing(raw: Any, where: str) -> Pricing:
    base = _rates(raw, where)
    unknown = set(raw) - _PRICE_FIELDS - {"tiers"}
    if unknown:
        raise CatalogError(f"{where}: unknown fields {sorted(unknown)}")
    tiers = []
    previous = 0
    for i, tier in enumerate(raw.get("tiers") or ()):
        here = f"{where}.tiers[{i}]"
        above = tier.get("above_prompt_tokens") if isinstance(tier, dict) else None
        if not isinstance(above, int) or isinstance(above, bool) or above <= previous:
            raise CatalogError(f"{here}.above_prompt_tokens: must be an integer above {previous}")
        previous = above
        tiers.append(PriceTier(above, _rates(tier, here)))
    return Pricing(
        base.input_per_mtok, base.output_per_mtok, base.cached_input_per_mtok, tuple(tiers)
    )


def _positive_int(raw: dict[str, Any], field: str, where: str, minimum: int) -> int:
    value = raw.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise CatalogError(f"{where}.{field}: must be an integer >= {minimum}, got {value!r}")
    return value


def _parse_entry(name: str, raw: Any, default_as_of: Any) -> CatalogModel:
    where = f"models.{name}"
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a mapping")
    unknown = set(raw) - _ENTRY_FIELDS
    if unknown:
        raise CatalogError(f"{where}: unknown fields {sorted(unknown)}")
    for field in (
        "provider_family",
        "capabilities",
        "context_window",
        "max_output_tokens",
        "pricing",
    ):
        if field not in raw:
            raise CatalogError(f"{where}: missing field {field!r}")
    caps = frozenset(raw["capabilities"])
    if caps - CAPABILITIES:
        raise CatalogError(f"{where}.capabilities: unknown {sorted(caps - CAPABILITIES)}")
    window = _positive_int(raw, "context_window", where, 1)
    if ("long-context" in caps) != (window >= LONG_CONTEXT_TOKENS):
        raise CatalogError(
            f"{where}.capabilities: long-context must be listed exactly when the window is "
            f">= {LONG_CONTEXT_TOKENS} tokens (window {window})"
        )
    as_of = raw.get("as_of", default_as_of)
    if not isinstance(as_of, datetime.date):
        raise CatalogError(f"{where}.as_of: the date the facts were taken (YYYY-MM-DD) is required")
    return CatalogModel(
        name=name,
        provider_family=str(raw["provider_family"]),
        capabilities=caps,
        context_window=window,
        max_output_tokens=_positive_int(raw, "max_output_tokens", where, 0),
        pricing=_pricing(raw["pricing"], f"{where}.pricing"),
        as_of=as_of,
        unverified=tuple(raw.get("unverified") or ()),
        pdf_tokens_per_page=_pdf_tokens(raw, caps, where),
    )


def _pdf_tokens(raw: dict[str, Any], caps: frozenset[str], where: str) -> int | None:
    """Every model that reads PDFs says what a page costs; no other model does."""
    if "pdf" not in caps:
        if "pdf_tokens_per_page" in raw:
            raise CatalogError(f"{where}.pdf_tokens_per_page: only for models with `pdf`")
        return None
    return _positive_int(raw, "pdf_tokens_per_page", where, 1)


def parse_catalog(text: str) -> dict[str, CatalogModel]:
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise CatalogError("the catalog needs a `models` mapping")
    default_as_of = data.get("as_of")
    return {
        str(name): _parse_entry(str(name), raw, default_as_of)
        for name, raw in data["models"].items()
    }


@cache
def load_catalog() -> dict[str, CatalogModel]:
    """The shipped catalog, parsed and validated once per process."""
    text = resources.files(__package__).joinpath("models.yaml").read_text(encoding="utf-8")
    return parse_catalog(text)
