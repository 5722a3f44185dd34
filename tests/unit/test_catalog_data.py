"""The shipped catalog holds the models the catalog issue asks for, with consistent facts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nemorouter.catalog import LONG_CONTEXT_TOKENS, CatalogModel, load_catalog

# Families whose models are served on Google Vertex AI (Gemini, Claude on Vertex, MaaS partners,
# Google embeddings). Direct OpenAI models are family `openai` and are not counted.
VERTEX_FAMILIES = frozenset(
    {"gemini", "anthropic", "meta", "mistral", "google", "deepseek", "qwen"}
)

MUST_HAVE = [
    # Gemini
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3.1-pro-preview",
    "gemini-3-flash-preview",
    # Claude (Vertex and Claude API)
    "claude-opus-4-1",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-sonnet-4",
    "claude-opus-4-8",
    "claude-sonnet-5",
    # Llama and Mistral models-as-a-service
    "llama-4-maverick-17b-128e-instruct-maas",
    "llama-4-scout-17b-16e-instruct-maas",
    "llama-3.1-405b-instruct-maas",
    "mistral-medium-3",
    "mistral-small-2503",
    "codestral-2501",
    # Vertex embeddings
    "gemini-embedding-001",
    "text-embedding-005",
    "text-multilingual-embedding-002",
    # Direct OpenAI
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "o3",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
]


@pytest.fixture(scope="module")
def catalog() -> dict[str, CatalogModel]:
    return load_catalog()


def _prices(model: CatalogModel) -> list[object]:
    p = model.pricing
    values: list[object] = [p.input_per_mtok, p.output_per_mtok]
    if p.cached_input_per_mtok is not None:
        values.append(p.cached_input_per_mtok)
    for tier in p.tiers:
        r = tier.rates
        values += [r.input_per_mtok, r.output_per_mtok]
        if r.cached_input_per_mtok is not None:
            values.append(r.cached_input_per_mtok)
    return values


def test_at_least_twenty_vertex_models(catalog: dict[str, CatalogModel]) -> None:
    vertex = [m for m in catalog.values() if m.provider_family in VERTEX_FAMILIES]
    assert len(vertex) >= 20


def test_must_haves_present(catalog: dict[str, CatalogModel]) -> None:
    missing = [name for name in MUST_HAVE if name not in catalog]
    assert not missing


def test_keys_carry_no_version_suffix(catalog: dict[str, CatalogModel]) -> None:
    assert not [name for name in catalog if "@" in name]


def test_every_price_is_a_decimal(catalog: dict[str, CatalogModel]) -> None:
    for model in catalog.values():
        for value in _prices(model):
            assert isinstance(value, Decimal), model.name


def test_gemini_25_pro_has_long_prompt_tier(catalog: dict[str, CatalogModel]) -> None:
    pricing = catalog["gemini-2.5-pro"].pricing
    assert [t.above_prompt_tokens for t in pricing.tiers] == [200_000]
    long = pricing.rates(200_001)
    assert (long.input_per_mtok, long.output_per_mtok) == (Decimal("2.50"), Decimal("15.00"))
    assert long.cached_input_per_mtok == Decimal("0.25")
    assert pricing.rates(200_000).input_per_mtok == Decimal("1.25")


def test_embedding_models_are_consistent(catalog: dict[str, CatalogModel]) -> None:
    embedders = [m for m in catalog.values() if "embedding" in m.capabilities]
    assert {"gemini-embedding-001", "text-embedding-005", "text-embedding-3-small"} <= {
        m.name for m in embedders
    }
    for model in embedders:
        assert "vision" not in model.capabilities, model.name
        assert model.max_output_tokens == 0, model.name
        assert model.pricing.output_per_mtok == 0, model.name
    for model in catalog.values():
        assert not {"embedding", "streaming"} <= model.capabilities, model.name
        assert not {"embedding", "tools"} <= model.capabilities, model.name


def test_chat_models_stream_and_long_context_matches_window(
    catalog: dict[str, CatalogModel],
) -> None:
    for model in catalog.values():
        if "embedding" not in model.capabilities:
            assert "streaming" in model.capabilities, model.name
            assert model.max_output_tokens > 0, model.name
        long = model.context_window >= LONG_CONTEXT_TOKENS
        assert ("long-context" in model.capabilities) == long, model.name


def test_tiers_only_raise_prices(catalog: dict[str, CatalogModel]) -> None:
    for model in catalog.values():
        base = model.pricing
        for tier in base.tiers:
            assert tier.rates.input_per_mtok >= base.input_per_mtok, model.name
            assert tier.rates.output_per_mtok >= base.output_per_mtok, model.name


@pytest.mark.parametrize(
    ("name", "input_price", "output_price", "cached"),
    [
        ("gemini-2.5-flash", "0.30", "2.50", "0.03"),
        ("gemini-2.5-pro", "1.25", "10.00", "0.125"),
        ("gemini-2.0-flash-lite", "0.075", "0.30", "0.01875"),
        ("claude-sonnet-4-5", "3.00", "15.00", "0.30"),
        ("claude-opus-4-1", "15.00", "75.00", "1.50"),
        ("claude-opus-4-8", "5.00", "25.00", "0.50"),
        ("claude-sonnet-5", "3.00", "15.00", "0.30"),
        ("gpt-4.1", "2.00", "8.00", "0.50"),
        ("gpt-4o-mini", "0.15", "0.60", "0.075"),
        ("text-embedding-3-small", "0.02", "0", None),
    ],
)
def test_price_spot_checks(
    catalog: dict[str, CatalogModel],
    name: str,
    input_price: str,
    output_price: str,
    cached: str | None,
) -> None:
    pricing = catalog[name].pricing
    assert pricing.input_per_mtok == Decimal(input_price)
    assert pricing.output_per_mtok == Decimal(output_price)
    expected_cached = None if cached is None else Decimal(cached)
    assert pricing.cached_input_per_mtok == expected_cached


def test_fact_spot_checks(catalog: dict[str, CatalogModel]) -> None:
    assert catalog["gemini-2.5-pro"].context_window == 1_048_576
    assert catalog["gemini-2.0-flash"].max_output_tokens == 8192
    assert catalog["gpt-4.1"].context_window == 1_047_576
    assert catalog["gpt-4o"].context_window == 128_000
    assert "long-context" not in catalog["gpt-4o"].capabilities
    assert {"audio", "pdf", "structured-output"} <= catalog["gemini-2.5-flash"].capabilities
    haiku = catalog["claude-haiku-4-5"]
    assert {"vision", "pdf", "tools"} <= haiku.capabilities
    assert "audio" not in haiku.capabilities
    # Every Claude answers json_schema: natively on the Claude API from the 4.5 models on,
    # by a forced tool on Vertex (org-policy gated there) and for Opus 4.1 and older.
    claude = [m for m in catalog.values() if m.provider_family == "anthropic"]
    assert all("structured-output" in m.capabilities for m in claude)
    assert catalog["claude-sonnet-4-5"].native_structured == {"anthropic"}
    assert catalog["claude-opus-4-1"].native_structured == frozenset()
    assert all("anthropic-vertex" not in m.native_structured for m in claude)
    assert catalog["llama-3.1-405b-instruct-maas"].provider_family == "meta"


def test_unverified_marks_name_known_fields(catalog: dict[str, CatalogModel]) -> None:
    allowed = {
        "pricing",
        "tiers",
        "cached_input_per_mtok",
        "context_window",
        "max_output_tokens",
        "capabilities",
        "structured_output",
        "refuses",
    }
    for model in catalog.values():
        assert set(model.unverified) <= allowed, model.name


def test_parameter_rules_per_model(catalog: dict[str, CatalogModel]) -> None:
    """Audit rows 3, 6, 8: the parameters each model answers 400 to (sources in the catalog)."""
    assert catalog["claude-opus-4-7"].refuses == {"temperature", "top_p"}
    for name in ("sonnet-4-5", "haiku-4-5", "opus-4-1", "opus-4-5", "opus-4-6", "sonnet-4-6"):
        assert catalog[f"claude-{name}"].refuses == {"top_p_with_temperature"}, name
    assert catalog["claude-sonnet-4"].refuses == frozenset()
    for name in ("gpt-5", "gpt-5-mini", "o3", "o4-mini"):
        assert {"max_tokens", "non_default_temperature"} <= catalog[name].refuses, name
    assert catalog["gpt-4.1"].refuses == frozenset()
    gemini_3 = [n for n in catalog if n.startswith("gemini-3")]
    assert len(gemini_3) == 5
    for name in gemini_3:
        assert catalog[name].refuses == {"presence_penalty", "frequency_penalty"}, name
    assert catalog["gemini-2.5-pro"].refuses == frozenset()


def test_every_model_names_its_sources(catalog: dict[str, CatalogModel]) -> None:
    for model in catalog.values():
        assert model.sources, model.name
        assert all(s.startswith(("https://", "pydantic/", "BerriAI/", "anthropics/"))
                   for s in model.sources), model.name  # fmt: skip


def test_gemini_20_flash_prices_per_provider_type(catalog: dict[str, CatalogModel]) -> None:
    flash = catalog["gemini-2.0-flash"]
    api = flash.pricing_for("gemini", None)
    vertex = flash.pricing_for("vertex", "us-central1")
    assert (api.input_per_mtok, api.output_per_mtok, api.cached_input_per_mtok) == (
        Decimal("0.10"), Decimal("0.40"), Decimal("0.025"))  # fmt: skip
    assert (vertex.input_per_mtok, vertex.output_per_mtok) == (Decimal("0.15"), Decimal("0.60"))


def test_claude_regional_premium_from_sonnet_45_on(catalog: dict[str, CatalogModel]) -> None:
    premium = {m.name for m in catalog.values() if m.regional_premium}
    assert premium == {
        "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5",
        "claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-7", "claude-opus-4-8",
        "claude-sonnet-5",
    }  # fmt: skip
    assert {catalog[name].regional_premium for name in premium} == {Decimal("0.10")}


def test_every_claude_model_prices_cache_writes(catalog: dict[str, CatalogModel]) -> None:
    for model in catalog.values():
        writes = (model.pricing.cache_write_5m, model.pricing.cache_write_1h)
        if model.provider_family == "anthropic":
            assert writes == (Decimal("1.25"), Decimal(2)), model.name
            cached = model.pricing.cached_input_per_mtok
            assert cached == model.pricing.input_per_mtok / 10, model.name
        else:
            assert writes == (1, 1), model.name


@pytest.mark.parametrize(
    ("name", "kind", "day"),
    [
        ("gemini-2.0-flash", "vertex", "2026-06-01"),
        ("gemini-2.0-flash", "gemini", "2026-06-01"),
        ("gemini-2.0-flash-lite", "vertex", "2026-06-01"),
        ("gemini-3-pro-preview", "gemini", "2026-03-09"),
        ("gemini-3-pro-preview", "vertex", "2026-03-26"),
        ("claude-sonnet-4", "anthropic-vertex", "2026-09-14"),
        ("claude-opus-4", "anthropic", "2026-06-15"),
        ("gemini-2.5-pro", "gemini", "2026-12-01"),
        ("gemini-2.5-flash", "gemini", "2026-12-01"),
    ],
)
def test_retired_models_are_marked(
    catalog: dict[str, CatalogModel], name: str, kind: str, day: str
) -> None:
    assert str(catalog[name].retires_on(kind)) == day


def test_sdk_non_streaming_limits(catalog: dict[str, CatalogModel]) -> None:
    limited = {m.name: m.nonstreaming_max_tokens for m in catalog.values()
               if m.nonstreaming_max_tokens}  # fmt: skip
    assert limited == {"claude-opus-4": 8192, "claude-opus-4-1": 8192}
