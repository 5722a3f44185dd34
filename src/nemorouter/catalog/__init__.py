"""The model catalog: what each known model can do, how much it holds and what it costs."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources

import yaml

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


@dataclass(frozen=True, slots=True)
class Pricing:
    """USD per one million tokens; exact decimals."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CatalogModel:
    name: str
    provider_family: str
    capabilities: frozenset[str]
    context_window: int
    max_output_tokens: int
    pricing: Pricing


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


def _parse_entry(name: str, raw: dict) -> CatalogModel:
    where = f"models.{name}"
    try:
        caps = frozenset(raw["capabilities"])
        unknown = caps - CAPABILITIES
        if unknown:
            raise CatalogError(f"{where}.capabilities: unknown {sorted(unknown)}")
        price = raw["pricing"]
        cached = price.get("cached_input_per_mtok")
        return CatalogModel(
            name=name,
            provider_family=str(raw["provider_family"]),
            capabilities=caps,
            context_window=int(raw["context_window"]),
            max_output_tokens=int(raw["max_output_tokens"]),
            pricing=Pricing(
                input_per_mtok=parse_decimal(price["input_per_mtok"], f"{where}.pricing"),
                output_per_mtok=parse_decimal(price["output_per_mtok"], f"{where}.pricing"),
                cached_input_per_mtok=None
                if cached is None
                else parse_decimal(cached, f"{where}.pricing"),
            ),
        )
    except KeyError as exc:
        raise CatalogError(f"{where}: missing field {exc.args[0]!r}") from None


def parse_catalog(text: str) -> dict[str, CatalogModel]:
    data = yaml.safe_load(text)
    return {name: _parse_entry(name, raw) for name, raw in data["models"].items()}


@cache
def load_catalog() -> dict[str, CatalogModel]:
    """The shipped catalog, parsed and validated once per process."""
    text = resources.files(__package__).joinpath("models.yaml").read_text(encoding="utf-8")
    return parse_catalog(text)
