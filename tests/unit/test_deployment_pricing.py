"""The price a resolved deployment carries: its provider type's catalog price, the Vertex
regional premium for Claude, a partial `pricing` override laid over them; unpriced models
refused; retiring models warned about at start; Claude's non-streaming max_tokens default."""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from anthropic._constants import MODEL_NONSTREAMING_TOKENS

from nemorouter.catalog import load_catalog
from nemorouter.config import ConfigError, parse_config
from nemorouter.core.deployments import Deployment, DeploymentPool, nonstreaming_default
from nemorouter.providers import build_adapter
from nemorouter.types.prices import PriceTier, Pricing, Rates

CATALOG = load_catalog()
PROVIDERS: dict[str, dict[str, Any]] = {
    "gemini-api": {"type": "gemini", "api_key": "g", "base_url": "http://127.0.0.1:9"},
    "vertex-us": {"type": "vertex", "api_key": "k", "project": "p", "location": "us-central1",
                  "base_url": "http://127.0.0.1:9"},
    "claude-global": {"type": "anthropic-vertex", "api_key": "k", "project": "p", "location": "global",
                      "base_url": "http://127.0.0.1:9"},
    "claude-east": {"type": "anthropic-vertex", "api_key": "k", "project": "p", "location": "us-east5",
                    "base_url": "http://127.0.0.1:9"},
    "claude-eu": {"type": "anthropic-vertex", "api_key": "k", "project": "p", "location": "eu",
                  "base_url": "http://127.0.0.1:9"},
    "claude-api": {"type": "anthropic", "api_key": "k", "base_url": "http://127.0.0.1:9"},
}  # fmt: skip


def config(*deployments: dict[str, Any], **settings: Any) -> Any:
    return parse_config(
        {
            "settings": {"master_key": "sk-test-master-key", **settings},
            "providers": PROVIDERS,
            "deployments": [{"id": f"d{i}", **d} for i, d in enumerate(deployments)],
        },
        env={"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent"},
    )


def pool(
    *deployments: dict[str, Any], today: datetime.date | None = None, **settings: Any
) -> DeploymentPool:
    cfg = config(*deployments, **settings)
    used = {d.provider for d in cfg.deployments}
    adapters = {name: build_adapter(name, cfg.providers[name], cfg.settings) for name in used}
    return DeploymentPool(cfg, adapters, today=today)


def one(*deployments: dict[str, Any], **settings: Any) -> Deployment:
    built = pool(*deployments, **settings)
    return next(iter(built.by_model.values()))[0]


def test_gemini_20_flash_costs_less_on_the_gemini_api_than_on_vertex() -> None:
    """LiteLLM gemini/gemini-2.0-flash and genai-prices: 0.10 / 0.40, cached 0.025 on the
    Gemini API; Vertex's gemini-2.0-flash-001: 0.15 / 0.60, cached 0.0375."""
    api = one({"model": "gemini-2.0-flash", "provider": "gemini-api"}).pricing
    vertex = one({"model": "gemini-2.0-flash", "provider": "vertex-us"}).pricing
    assert api is not None and vertex is not None
    assert (api.input_per_mtok, api.output_per_mtok, api.cached_input_per_mtok) == (
        Decimal("0.10"), Decimal("0.40"), Decimal("0.025"))  # fmt: skip
    assert (vertex.input_per_mtok, vertex.output_per_mtok, vertex.cached_input_per_mtok) == (
        Decimal("0.15"), Decimal("0.60"), Decimal("0.0375"))  # fmt: skip


@pytest.mark.parametrize(
    ("model", "provider", "factor"),
    [
        ("claude-sonnet-4-5", "claude-global", "1"),
        ("claude-sonnet-4-5", "claude-east", "1.10"),  # regional
        ("claude-sonnet-4-5", "claude-eu", "1.10"),  # multi-region
        ("claude-sonnet-4-5", "claude-api", "1"),
        ("claude-haiku-4-5", "claude-east", "1.10"),
        ("claude-opus-4-5", "claude-east", "1.10"),
        ("claude-opus-4-7", "claude-eu", "1.10"),
        ("claude-opus-4-1", "claude-east", "1"),  # older than Sonnet 4.5: old pricing
        ("claude-sonnet-4", "claude-east", "1"),
    ],
)
def test_claude_on_vertex_regional_endpoints_cost_ten_percent_more(
    model: str, provider: str, factor: str
) -> None:
    """Anthropic, "Claude on Vertex AI": regional and multi-region endpoints carry a 10%
    premium over the global endpoint from Claude Sonnet 4.5 on."""
    pricing = one({"model": model, "provider": provider}).target.pricing
    base = CATALOG[model].pricing
    assert pricing is not None
    assert pricing.input_per_mtok == base.input_per_mtok * Decimal(factor)
    assert pricing.output_per_mtok == base.output_per_mtok * Decimal(factor)
    assert base.cached_input_per_mtok is not None
    assert pricing.cached_input_per_mtok == base.cached_input_per_mtok * Decimal(factor)
    assert (pricing.cache_write_5m, pricing.cache_write_1h) == (Decimal("1.25"), Decimal(2))


GEMINI_PRO = CATALOG["gemini-2.5-pro"].pricing


def test_override_of_some_fields_keeps_the_catalogs_others_and_its_tiers() -> None:
    pricing = one(
        {"model": "gemini-2.5-pro", "provider": "vertex-us", "pricing": {"output_per_mtok": "9"}}
    ).pricing
    assert pricing == Pricing(
        GEMINI_PRO.input_per_mtok, Decimal(9), GEMINI_PRO.cached_input_per_mtok, GEMINI_PRO.tiers
    )
    assert pricing.rates(250_000).input_per_mtok == Decimal("2.50")  # the >200k tier survives


def test_override_can_state_its_own_tiers_or_remove_them() -> None:
    tiers = [{"above_prompt_tokens": 128_000, "input_per_mtok": "3", "output_per_mtok": "20"}]
    own = one(
        {"model": "gemini-2.5-pro", "provider": "vertex-us",
         "pricing": {"input_per_mtok": "1", "tiers": tiers}}
    ).pricing  # fmt: skip
    assert own is not None
    assert own.tiers == (PriceTier(128_000, Rates(Decimal(3), Decimal(20))),)
    assert own.rates(130_000).output_per_mtok == Decimal(20)
    flat = one(
        {"model": "gemini-2.5-pro", "provider": "vertex-us", "pricing": {"tiers": []}}
    ).pricing
    assert flat is not None and flat.tiers == ()
    assert flat.rates(900_000).input_per_mtok == GEMINI_PRO.input_per_mtok


def test_stated_prices_are_charged_as_stated_on_a_regional_endpoint() -> None:
    """A deployment's own price is its price: the premium applies to catalog prices only."""
    pricing = one(
        {"model": "claude-sonnet-4-5", "provider": "claude-east",
         "pricing": {"input_per_mtok": "2", "cache_write_multiplier": {"1h": "3"}}}
    ).pricing  # fmt: skip
    sonnet = CATALOG["claude-sonnet-4-5"].pricing
    assert pricing is not None
    assert pricing.input_per_mtok == Decimal(2)
    assert pricing.output_per_mtok == sonnet.output_per_mtok * Decimal("1.1")
    assert (pricing.cache_write_5m, pricing.cache_write_1h) == (Decimal("1.25"), Decimal(3))


def test_rising_tiers_and_non_negative_prices_are_required() -> None:
    tiers = [
        {"above_prompt_tokens": 200_000, "input_per_mtok": "3", "output_per_mtok": "20"},
        {"above_prompt_tokens": 100_000, "input_per_mtok": "4", "output_per_mtok": "30"},
    ]
    with pytest.raises(ConfigError, match=r"deployments\[0\]\.pricing\.tiers\[1\]"):
        config({"model": "gemini-2.5-pro", "provider": "vertex-us", "pricing": {"tiers": tiers}})
    with pytest.raises(ConfigError, match=r"pricing\.cache_write_multiplier\.5m"):
        config(
            {"model": "claude-sonnet-4-5", "provider": "claude-api",
             "pricing": {"cache_write_multiplier": {"5m": "-1"}}}
        )  # fmt: skip


@pytest.mark.parametrize(
    "pricing",
    [None, {"input_per_mtok": "1"}, {"output_per_mtok": "1", "cached_input_per_mtok": "0.1"}],
)
def test_an_unpriced_model_is_refused_naming_the_deployment(pricing: Any) -> None:
    deployment: dict[str, Any] = {
        "model": "house-model-7b", "provider": "vertex-us", "context_window": 8192
    }  # fmt: skip
    if pricing is not None:
        deployment["pricing"] = pricing
    with pytest.raises(ConfigError, match=r"deployment 'd0'.*house-model-7b"):
        config(deployment)


def test_a_retired_or_soon_retiring_model_is_warned_about_once_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deployments = [
        {"model": "gemini-2.0-flash", "provider": "vertex-us"},  # retired 2026-06-01
        {"model": "claude-sonnet-4", "provider": "claude-api"},  # Claude API: 2026-06-15
        {"model": "claude-sonnet-4", "provider": "claude-east"},  # Vertex: 2026-09-14
        {"model": "gemini-2.5-pro", "provider": "vertex-us"},  # no date
    ]
    with caplog.at_level(logging.WARNING, "nemorouter.deployments"):
        pool(*deployments, today=datetime.date(2026, 8, 20))
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines == [
        "deployment 'd0': model 'gemini-2.0-flash' (vertex) was retired on 2026-06-01: its "
        "calls fail, or are served by another model at that model's price; move it to a "
        "current model",
        "deployment 'd1': model 'claude-sonnet-4' (anthropic) was retired on 2026-06-15: its "
        "calls fail, or are served by another model at that model's price; move it to a "
        "current model",
        "deployment 'd2': model 'claude-sonnet-4' (anthropic-vertex) retires on 2026-09-14 "
        "(in 25 days); move it to a current model",
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, "nemorouter.deployments"):
        pool(*deployments[2:], today=datetime.date(2026, 8, 1))  # 44 days before: quiet
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("model", "provider_model", "timeout_s", "expected"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4-5@20250929", 600, 21_333),
        ("claude-sonnet-4-5", "claude-sonnet-4-5@20250929", 900, 21_333),
        ("claude-sonnet-4-5", "claude-sonnet-4-5@20250929", 120, 4266),
        ("claude-sonnet-4-5", "claude-sonnet-4-5@20250929", 2, 4096),
        ("claude-opus-4-1", "claude-opus-4-1@20250805", 600, 8192),
    ],
)
def test_non_streaming_claude_default_is_one_the_sdk_would_send(
    model: str, provider_model: str, timeout_s: float, expected: int
) -> None:
    """The Anthropic SDK (the oracle: _calculate_nonstreaming_timeout with its
    MODEL_NONSTREAMING_TOKENS) accepts the non-streaming default; a stream gets the
    model's whole max output."""
    deployment = one(
        {"model": model, "provider": "claude-east", "provider_model": provider_model},
        request_timeout_s=timeout_s,
    )
    target = deployment.target
    assert target.default_max_tokens(stream=False) == expected
    assert target.default_max_tokens(stream=True) == CATALOG[model].max_output_tokens
    client = anthropic.Anthropic(api_key="sk-ant-test")
    limit = MODEL_NONSTREAMING_TOKENS.get(provider_model)
    client._calculate_nonstreaming_timeout(expected, limit)  # no ValueError
    if timeout_s >= 600:  # at the SDK's own limit: one token more is refused
        with pytest.raises(ValueError, match="Streaming is required"):
            client._calculate_nonstreaming_timeout(expected + 1, limit)


def test_nonstreaming_default_never_exceeds_the_models_max_output() -> None:
    assert nonstreaming_default(2048, None, 600) == 2048
    assert nonstreaming_default(64_000, 8192, 60) == 4096
