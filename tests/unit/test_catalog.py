"""The shipped catalog loads, and malformed entries are refused."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from nemorouter.catalog import CAPABILITIES, CatalogError, load_catalog, parse_catalog

ENTRY = """
as_of: 2026-08-21
sources:
  doc: "https://example.com/pricing"
models:
  m:
    provider_family: gemini
    capabilities: [vision]
    context_window: 1000
    max_output_tokens: 100
    pricing: {input_per_mtok: PRICE, output_per_mtok: "2"}
    sources: [doc]
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


def _with(extra: str) -> str:
    return ENTRY.replace("PRICE", '"1"') + "".join(f"    {line}\n" for line in extra.splitlines())


def test_parameter_rules_and_structured_output_parsed() -> None:
    model = parse_catalog(
        _with(
            'refuses: [top_p_with_temperature]\nrefuses_source: "issue"\n'
            "structured_output: {anthropic: native, anthropic-vertex: tool}"
        )
    )["m"]
    assert model.refuses == {"top_p_with_temperature"}
    assert model.native_structured == {"anthropic"}


@pytest.mark.parametrize(
    "extra",
    [
        'refuses: [seed]\nrefuses_source: "x"',  # not a rule the adapters know
        "refuses: [temperature]",  # a rule without its source
        "structured_output: {anthropic: maybe}",
        "structured_output: native",
    ],
)
def test_malformed_parameter_rules_refused(extra: str) -> None:
    with pytest.raises(CatalogError):
        parse_catalog(_with(extra))


def entry(extra: str) -> str:
    return ENTRY.replace("PRICE", '"1"') + extra


def test_provider_prices_are_laid_over_the_default() -> None:
    model = parse_catalog(
        entry(
            "    pricing_by_provider:\n"
            '      gemini: {input_per_mtok: "0.5"}\n'
            '    regional_premium: "0.10"\n'
        )
    )["m"]
    assert model.pricing_for("gemini", None).input_per_mtok == Decimal("0.5")
    assert model.pricing_for("gemini", None).output_per_mtok == Decimal(2)  # kept
    assert model.pricing_for("vertex", "global").input_per_mtok == Decimal(1)
    assert model.pricing_for("vertex", "us-central1").input_per_mtok == Decimal("1.10")
    assert model.pricing_for("anthropic", None).input_per_mtok == Decimal(1)  # not Vertex


def test_cache_write_multipliers_are_parsed() -> None:
    text = ENTRY.replace("PRICE", '"3"').replace(
        'output_per_mtok: "2"}',
        'output_per_mtok: "2", cache_write_multiplier: {5m: "1.25", 1h: "2"}}',
    )
    pricing = parse_catalog(text)["m"].pricing
    assert (pricing.cache_write_5m, pricing.cache_write_1h) == (Decimal("1.25"), Decimal(2))
    with pytest.raises(CatalogError, match="cache_write_multiplier"):
        parse_catalog(text.replace("1h:", "2h:"))


def test_retirement_dates_by_provider() -> None:
    model = parse_catalog(
        entry("    retires: 2026-09-14\n    retires_by_provider: {anthropic: 2026-06-15}\n")
    )["m"]
    assert model.retires_on("anthropic-vertex") == datetime.date(2026, 9, 14)
    assert model.retires_on("anthropic") == datetime.date(2026, 6, 15)
    with pytest.raises(CatalogError, match="retires"):
        parse_catalog(entry("    retires: soon\n"))


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("    pricing_by_provider: {azure: {input_per_mtok: '1'}}\n", "unknown provider types"),
        ("    pricing_by_provider: {gemini: {input_per_mtok: 0.5}}\n", "decimal string"),
        ("    retires_by_provider: {bedrock: 2026-01-01}\n", "unknown provider types"),
    ],
)
def test_bad_provider_entries_refused(extra: str, words: str) -> None:
    with pytest.raises(CatalogError, match=words):
        parse_catalog(entry(extra))


def test_sources_must_name_known_ids() -> None:
    with pytest.raises(CatalogError, match="unknown source ids"):
        parse_catalog(ENTRY.replace("PRICE", '"1"').replace("[doc]", "[doc, blog]"))
    with pytest.raises(CatalogError, match="sources"):
        parse_catalog(ENTRY.replace("PRICE", '"1"').replace("    sources: [doc]\n", ""))
    model = parse_catalog(ENTRY.replace("PRICE", '"1"'))["m"]
    assert model.sources == ("https://example.com/pricing",)


def test_the_regional_premium_scales_tiers_and_keeps_multipliers() -> None:
    text = entry('    regional_premium: "0.10"\n').replace(
        'output_per_mtok: "2"}',
        'output_per_mtok: "2", cache_write_multiplier: {5m: "1.25", 1h: "2"}, tiers: '
        '[{above_prompt_tokens: 200000, input_per_mtok: "4", output_per_mtok: "8", '
        'cached_input_per_mtok: "0.4"}]}',
    )
    regional = parse_catalog(text)["m"].pricing_for("anthropic-vertex", "europe-west1")
    long = regional.rates(300_000)
    assert (long.input_per_mtok, long.output_per_mtok, long.cached_input_per_mtok) == (
        Decimal("4.4"), Decimal("8.8"), Decimal("0.44"))  # fmt: skip
    assert (regional.cache_write_5m, regional.cache_write_1h) == (Decimal("1.25"), Decimal(2))
