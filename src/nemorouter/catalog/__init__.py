"""The model catalog: what each known model can do, how much it holds and what it costs.

Prices depend on where a model is called: `pricing_for(provider type, location)` is the
price a deployment carries (a provider type's own price where the catalog gives one, and the
Vertex AI regional premium off the `global` endpoint). Each entry names its sources and may
carry shutdown dates (`retires_on`), which start-up warns about (core/deployments).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import yaml

from nemorouter.catalog.prices import CatalogError, parse_decimal, parse_override
from nemorouter.types.prices import Pricing
from nemorouter.types.target import NATIVE, PARAM_RULES, TOOL

__all__ = [
    "CAPABILITIES", "LONG_CONTEXT_TOKENS", "PROVIDER_TYPES", "CatalogError", "CatalogModel",
    "batch_pricing", "load_catalog", "parse_catalog", "parse_decimal",
]  # fmt: skip

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
# The provider types of the config (config.ProviderType); Vertex AI endpoints are the first two.
PROVIDER_TYPES = frozenset(
    {"vertex", "anthropic-vertex", "gemini", "anthropic", "openai", "openai-compatible"}
)
VERTEX_TYPES = frozenset({"vertex", "anthropic-vertex"})
# Google's batch APIs: the implicit-cache discount takes precedence over the batch discount
# (they do not stack), so cached input keeps its interactive rate (catalog `vertex-batch`).
CACHE_NOT_DISCOUNTED_IN_BATCH = frozenset({"vertex", "gemini"})
GLOBAL_LOCATION = "global"
_ENTRY_FIELDS = frozenset(
    {"provider_family", "capabilities", "context_window", "max_output_tokens", "pricing", "as_of",
     "unverified", "source", "sources", "pricing_by_provider", "regional_premium", "retires",
     "retires_by_provider", "nonstreaming_max_tokens", "refuses", "refuses_source",
     "structured_output", "pdf_tokens_per_page", "batch_discount"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CatalogModel:
    name: str
    provider_family: str
    capabilities: frozenset[str]
    context_window: int
    max_output_tokens: int
    pricing: Pricing  # the price on every provider type `pricing_by_provider` does not name
    as_of: datetime.date
    unverified: tuple[str, ...] = ()
    refuses: frozenset[str] = frozenset()  # types.target.PARAM_RULES: parameters it 400s on
    native_structured: frozenset[str] = frozenset()  # provider types with native json_schema
    sources: tuple[str, ...] = ()  # URLs and repository paths the facts come from
    pricing_by_provider: Mapping[str, Pricing] = field(default_factory=dict)
    # Vertex AI regional and multi-region endpoints (location not `global`) cost this share more.
    regional_premium: Decimal = Decimal(0)
    retires: datetime.date | None = None  # shutdown date on every provider type not listed below
    retires_by_provider: Mapping[str, datetime.date] = field(default_factory=dict)
    # The most max_tokens a non-streaming call may ask for, when the SDK names a limit.
    nonstreaming_max_tokens: int | None = None
    # Prompt tokens one PDF page costs when a PDF goes whole (a `file` part); None: unknown.
    pdf_tokens_per_page: int | None = None
    # The share of the price each provider type's batch API charges (deferred jobs).
    batch_discount: Mapping[str, Decimal] = field(default_factory=dict)

    def batch_pricing_for(self, provider_type: str, location: str | None) -> Pricing | None:
        """The price of a line of a provider batch on this provider type, or None when no
        batch price is known (the line then runs interactively, never at $0)."""
        share = self.batch_discount.get(provider_type)
        if share is None:
            return None
        return batch_pricing(self.pricing_for(provider_type, location), share, provider_type)

    def pricing_for(self, provider_type: str, location: str | None) -> Pricing:
        """The price of a call on this provider type at this location."""
        pricing = self.pricing_by_provider.get(provider_type, self.pricing)
        regional = (
            provider_type in VERTEX_TYPES and (location or GLOBAL_LOCATION) != GLOBAL_LOCATION
        )
        if regional and self.regional_premium:
            pricing = pricing.scaled(1 + self.regional_premium)
        return pricing

    def retires_on(self, provider_type: str) -> datetime.date | None:
        return self.retires_by_provider.get(provider_type, self.retires)


def batch_pricing(pricing: Pricing, share: Decimal, provider_type: str) -> Pricing:
    """`pricing` at a batch API's share: every rate, but cached input on Google's APIs."""
    scaled = pricing.scaled(share)
    if provider_type in CACHE_NOT_DISCOUNTED_IN_BATCH:
        return replace(
            scaled,
            cached_input_per_mtok=pricing.cached_input_per_mtok,
            tiers=tuple(
                replace(
                    t, rates=replace(t.rates, cached_input_per_mtok=o.rates.cached_input_per_mtok)
                )
                for t, o in zip(scaled.tiers, pricing.tiers, strict=True)
            ),
        )
    return scaled


def _batch_discount(raw: Any, where: str) -> dict[str, Decimal]:
    shares = {
        str(kind): parse_decimal(value, f"{where}.{kind}")
        for kind, value in _by_provider(raw, where).items()
    }
    for kind, share in shares.items():
        if not 0 < share <= 1:
            raise CatalogError(f"{where}.{kind}: a share of the price in (0, 1], got {share}")
    return shares


def _positive_int(raw: dict[str, Any], field: str, where: str, minimum: int) -> int:
    value = raw.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise CatalogError(f"{where}.{field}: must be an integer >= {minimum}, got {value!r}")
    return value


def _refuses(raw: dict[str, Any], where: str) -> frozenset[str]:
    rules = raw.get("refuses") or []
    if not isinstance(rules, list) or set(rules) - PARAM_RULES:
        raise CatalogError(f"{where}.refuses: a list of {sorted(PARAM_RULES)}, got {rules!r}")
    if rules and not isinstance(raw.get("refuses_source"), str):
        raise CatalogError(f"{where}.refuses_source: where the rules come from is required")
    return frozenset(rules)


def _native_structured(raw: dict[str, Any], where: str) -> frozenset[str]:
    """`structured_output: {provider type: native | tool}` → the types where it is native."""
    ways = raw.get("structured_output") or {}
    if not isinstance(ways, dict) or not set(ways.values()) <= {NATIVE, TOOL}:
        raise CatalogError(f"{where}.structured_output: provider type -> native | tool")
    return frozenset(str(kind) for kind, way in ways.items() if way == NATIVE)


def _by_provider(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a mapping of provider types")
    unknown = set(raw) - PROVIDER_TYPES
    if unknown:
        raise CatalogError(f"{where}: unknown provider types {sorted(unknown)}")
    return raw


def _date(value: Any, where: str) -> datetime.date:
    if not isinstance(value, datetime.date):
        raise CatalogError(f"{where}: expected a date (YYYY-MM-DD), got {value!r}")
    return value


def _sources(raw: Any, known: Mapping[str, str], where: str) -> tuple[str, ...]:
    """Each source is an id of the file's `sources` table, resolved to its URL or path."""
    if not isinstance(raw, list) or not raw:
        raise CatalogError(f"{where}: list the sources of the facts (ids of `sources`)")
    unknown = [s for s in raw if s not in known]
    if unknown:
        raise CatalogError(f"{where}: unknown source ids {unknown}")
    return tuple(known[s] for s in raw)


def _parse_entry(
    name: str, raw: Any, default_as_of: Any, known_sources: Mapping[str, str]
) -> CatalogModel:
    where = f"models.{name}"
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected a mapping")
    unknown = set(raw) - _ENTRY_FIELDS
    if unknown:
        raise CatalogError(f"{where}: unknown fields {sorted(unknown)}")
    for key in ("provider_family", "capabilities", "context_window", "max_output_tokens",
                "pricing", "sources"):  # fmt: skip
        if key not in raw:
            raise CatalogError(f"{where}: missing field {key!r}")
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
    base = parse_override(raw["pricing"], f"{where}.pricing")
    if not base.complete:
        raise CatalogError(f"{where}.pricing: input_per_mtok and output_per_mtok are required")
    pricing = base.over(None)
    by_provider = _by_provider(raw.get("pricing_by_provider"), f"{where}.pricing_by_provider")
    retiring = _by_provider(raw.get("retires_by_provider"), f"{where}.retires_by_provider")
    retires = raw.get("retires")
    limit = raw.get("nonstreaming_max_tokens")
    premium = raw.get("regional_premium")
    return CatalogModel(
        name=name,
        provider_family=str(raw["provider_family"]),
        capabilities=caps,
        context_window=window,
        max_output_tokens=_positive_int(raw, "max_output_tokens", where, 0),
        pricing=pricing,
        as_of=as_of,
        unverified=tuple(raw.get("unverified") or ()),
        refuses=_refuses(raw, where),
        native_structured=_native_structured(raw, where),
        sources=_sources(raw["sources"], known_sources, f"{where}.sources"),
        pricing_by_provider={
            kind: parse_override(block, f"{where}.pricing_by_provider.{kind}").over(pricing)
            for kind, block in by_provider.items()
        },
        regional_premium=Decimal(0)
        if premium is None
        else parse_decimal(premium, f"{where}.regional_premium"),
        retires=None if retires is None else _date(retires, f"{where}.retires"),
        retires_by_provider={
            kind: _date(day, f"{where}.retires_by_provider.{kind}")
            for kind, day in retiring.items()
        },
        nonstreaming_max_tokens=None
        if limit is None
        else _positive_int(raw, "nonstreaming_max_tokens", where, 1),
        pdf_tokens_per_page=(
            _positive_int(raw, "pdf_tokens_per_page", where, 1)
            if "pdf_tokens_per_page" in raw
            else None
        ),
        batch_discount=_batch_discount(raw.get("batch_discount"), f"{where}.batch_discount"),
    )


def parse_catalog(text: str) -> dict[str, CatalogModel]:
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise CatalogError("the catalog needs a `models` mapping")
    known = data.get("sources") or {}
    if not isinstance(known, dict) or not all(isinstance(v, str) for v in known.values()):
        raise CatalogError("sources: expected a mapping of ids to URLs or repository paths")
    default_as_of = data.get("as_of")
    return {
        str(name): _parse_entry(str(name), raw, default_as_of, known)
        for name, raw in data["models"].items()
    }


@cache
def load_catalog() -> dict[str, CatalogModel]:
    """The shipped catalog, parsed and validated once per process."""
    text = resources.files(__package__).joinpath("models.yaml").read_text(encoding="utf-8")
    return parse_catalog(text)
