"""The shipped catalog loads, and malformed entries are refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nemorouter.catalog import CAPABILITIES, CatalogError, load_catalog, parse_catalog

ENTRY = """
models:
  m:
    provider_family: gemini
    capabilities: [vision]
    context_window: 1000
    max_output_tokens: 100
    pricing: {input_per_mtok: PRICE, output_per_mtok: "2"}
"""


def test_shipped_catalog_is_valid() -> None:
    catalog = load_catalog()
    assert "gemini-2.5-pro" in catalog
    for model in catalog.values():
        assert model.capabilities <= CAPABILITIES
        assert model.context_window > 0
        assert isinstance(model.pricing.input_per_mtok, Decimal)
    pro = catalog["gemini-2.5-pro"]
    assert pro.pricing.input_per_mtok == Decimal("1.25")
    assert {"vision", "long-context"} <= pro.capabilities


@pytest.mark.parametrize("price", ["1.25", "0"])
def test_decimal_prices_accepted(price: str) -> None:
    model = parse_catalog(ENTRY.replace("PRICE", f'"{price}"'))["m"]
    assert model.pricing.input_per_mtok == Decimal(price)


@pytest.mark.parametrize(
    ("price", "words"),
    [
        ("1.25", "decimal string"),
        ('"abc"', "not a decimal"),
        ('"-1"', "non-negative"),
        ('"NaN"', "non-negative"),
    ],
)
def test_bad_prices_refused(price: str, words: str) -> None:
    with pytest.raises(CatalogError, match=words):
        parse_catalog(ENTRY.replace("PRICE", price))


def test_missing_field_and_unknown_capability() -> None:
    with pytest.raises(CatalogError, match="missing field 'context_window'"):
        parse_catalog(ENTRY.replace("PRICE", '"1"').replace("    context_window: 1000\n", ""))
    with pytest.raises(CatalogError, match="unknown"):
        parse_catalog(ENTRY.replace("PRICE", '"1"').replace("[vision]", "[vision, telepathy]"))
