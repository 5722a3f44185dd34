"""The shipped catalog loads, and malformed entries are refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nemorouter.catalog import CAPABILITIES, CatalogError, load_catalog, parse_catalog

ENTRY = """
as_of: 2026-08-21
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


def test_tiers_pick_the_rates_for_the_prompt_size() -> None:
    text = ENTRY.replace("PRICE", '"1.25"').replace(
        'output_per_mtok: "2"}',
        'output_per_mtok: "10", tiers: [{above_prompt_tokens: 200000, input_per_mtok: "2.50", '
        'output_per_mtok: "15"}]}',
    )
    pricing = parse_catalog(text)["m"].pricing
    assert pricing.rates(1000).input_per_mtok == Decimal("1.25")
    assert pricing.rates(200_000).output_per_mtok == Decimal("10")
    assert pricing.rates(200_001).input_per_mtok == Decimal("2.50")
    assert pricing.rates(900_000).output_per_mtok == Decimal("15")


def test_long_context_tag_matches_the_window() -> None:
    with pytest.raises(CatalogError, match="long-context"):
        parse_catalog(ENTRY.replace("PRICE", '"1"').replace("[vision]", "[vision, long-context]"))


def test_date_required() -> None:
    with pytest.raises(CatalogError, match="as_of"):
        parse_catalog(ENTRY.replace("PRICE", '"1"').replace("as_of: 2026-08-21\n", ""))


def test_missing_field_and_unknown_capability() -> None:
    with pytest.raises(CatalogError, match="missing field 'context_window'"):
        parse_catalog(ENTRY.replace("PRICE", '"1"').replace("    context_window: 1000\n", ""))
    with pytest.raises(CatalogError, match="unknown"):
        parse_catalog(ENTRY.replace("PRICE", '"1"').replace("[vision]", "[vision, telepathy]"))


def test_pdf_models_say_what_a_page_costs() -> None:
    for model in load_catalog().values():
        assert ("pdf" in model.capabilities) == (model.pdf_tokens_per_page is not None)
    entry = ENTRY.replace("PRICE", '"1"')
    with pytest.raises(CatalogError, match="pdf_tokens_per_page"):
        parse_catalog(entry.replace("[vision]", "[vision, pdf]"))
    with pytest.raises(CatalogError, match="only for models with `pdf`"):
        parse_catalog(
            entry.replace("    context_window", "    pdf_tokens_per_page: 5\n    context_window")
        )
    paged = parse_catalog(entry.replace("[vision]", "[vision, pdf]\n    pdf_tokens_per_page: 258"))
    assert paged["m"].pdf_tokens_per_page == 258
