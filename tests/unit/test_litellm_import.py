"""`nemorouter config from-litellm`'s translation (issue 21, item 11): realistic LiteLLM
configs (tests/fixtures/litellm) come out as nemorouter configs that load, with everything
left behind listed, never dropped silently."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from nemorouter.config import Config, ConfigError, load_config, parse_config
from nemorouter.litellm.convert import Conversion, convert

FIXTURES = Path(__file__).parent.parent / "fixtures" / "litellm"
ENV_REF = re.compile(r"os\.environ/([A-Za-z0-9_]+)")
LONG = "x" * 32  # every referenced variable set, to a value long enough for a master key


def _convert(name: str) -> tuple[Conversion, str]:
    conversion = convert(yaml.safe_load((FIXTURES / name).read_text()))
    return conversion, conversion.render(name)


def _load(text: str, tmp_path: Path) -> Config:
    path = tmp_path / "nemorouter.yaml"
    path.write_text(text)
    env = {name: f"https://{LONG}" for name in ENV_REF.findall(text)}
    return load_config(path, env=env)


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.yaml")))
def test_every_fixture_converts_to_a_config_that_loads(name: str, tmp_path: Path) -> None:
    conversion, text = _convert(name)
    config = _load(text, tmp_path)
    assert config.deployments
    for item in conversion.untranslated:  # every item is in the file's header, as a comment
        assert f"#   - {item}" in text


def test_vertex_documents_translates_models_fallbacks_and_settings(tmp_path: Path) -> None:
    conversion, text = _convert("vertex_documents.yaml")
    config = _load(text, tmp_path)
    raw: dict[str, Any] = yaml.safe_load(text)
    # os.environ/ references are kept as they are (the same syntax in both).
    assert raw["settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert raw["providers"]["vertex-us-central1"] == {
        "type": "vertex", "project": "os.environ/VERTEX_PROJECT", "location": "us-central1",
        "credentials": "os.environ/GOOGLE_APPLICATION_CREDENTIALS",
    }  # fmt: skip
    by_id = {d.id: d for d in config.deployments}
    # Two regions of one model under one model_name: two deployments of gemini-2.5-pro.
    assert (by_id["pro-us"].model, by_id["pro-us"].rpm, by_id["pro-us"].tpm) == (
        "gemini-2.5-pro", 600, 4000000,
    )  # fmt: skip
    europe = config.providers[by_id["doc-extract"].provider]
    assert (europe.type, europe.location, by_id["doc-extract"].rpm) == (
        "vertex", "europe-west4", 300,
    )  # fmt: skip
    claude = by_id["claude-sonnet"]
    assert (claude.model, claude.provider_model) == (
        "claude-sonnet-4-5",
        "claude-sonnet-4-5@20250929",
    )
    assert config.providers[claude.provider].type == "anthropic-vertex"
    assert claude.max_output_tokens == 8192
    # The model_name clients send, with its router fallbacks, is one ordered chain.
    assert config.groups["doc-extract"] == (
        "gemini-2.5-pro",
        "claude-sonnet-4-5",
        "gemini-2.5-flash",
    )
    assert config.groups["gemini-2.5-flash-fallbacks"][0] == "gemini-2.5-flash"
    # A model-garden model: Vertex's OpenAI-compatible endpoint with a Google token.
    maverick = by_id["llama-maverick"]
    assert (maverick.model, maverick.provider_model, maverick.rpm, maverick.tpm) == (
        "llama-4-maverick-17b-128e-instruct-maas",
        "meta/llama-4-maverick-17b-128e-instruct-maas", 2000, 200000,
    )  # fmt: skip
    garden = config.providers[maverick.provider]
    assert (garden.type, garden.auth, garden.base_url) == ("openai-compatible", "google",
        "https://us-east5-aiplatform.googleapis.com/v1/projects/doc-team-prod/locations/"
        "us-east5/endpoints/openapi")  # fmt: skip
    # ... whose URL cannot be built from an environment reference: said, not guessed.
    assert any("deepseek" in item and "literal vertex_project" in item
               for item in conversion.untranslated)  # fmt: skip
    settings = config.settings
    assert settings.redis_url == "redis://:hunter2hunter2@redis.internal:6379/0"
    assert (settings.retries, settings.request_timeout_s) == (2, 90)
    assert (settings.cache.enabled, settings.cache.ttl_s) == (True, 3600)
    assert (settings.breaker.consecutive_failures, settings.breaker.cooldown_s) == (4, 45)
    for left in ("drop_params", "success_callback", "routing_strategy", "alerting",
                 "context_window_fallbacks"):  # fmt: skip
        assert any(left in item for item in conversion.untranslated), left
    assert "pk-lf-not-a-real-one" not in text  # environment_variables: names only
    assert conversion.commands == [
        "nemorouter keys create --name NAME --rpm 60 --budget-usd 25 --models doc-extract "
        "--budget-period monthly"
    ]


def test_api_key_providers_and_what_has_no_equivalent(tmp_path: Path) -> None:
    conversion, text = _convert("api_keys_mixed.yaml")
    config = _load(text, tmp_path)
    types = {d.id: config.providers[d.provider].type for d in config.deployments}
    assert types == {"gemini-flash": "gemini", "claude-3-7": "anthropic", "gpt-4o": "openai",
                     "gpt-4o-2": "openai", "qwen-vl": "openai-compatible"}  # fmt: skip
    qwen = next(d for d in config.deployments if d.id == "qwen-vl")
    assert qwen.pricing is not None
    assert (qwen.pricing.input_per_mtok, qwen.pricing.output_per_mtok) == (
        Decimal(0),
        Decimal("0.2"),
    )
    assert (qwen.context_window, qwen.provider_model) == (32768, "Qwen/Qwen2.5-VL-7B-Instruct")
    assert set(qwen.tags) == {"local", "vision"}
    assert config.groups["claude-3-7"] == ("claude-sonnet-4-5", "gpt-4o")
    assert config.groups["fast"] == ("gemini-2.5-flash",)  # router_settings.model_group_alias
    untranslated = "\n".join(conversion.untranslated)
    for left in ("bedrock/", "temperature", "'Free Tier'", "fallbacks * ->",
                 "fallbacks claude-3-7 -> bedrock-claude"):  # fmt: skip
        assert left in untranslated, left
    # No price stated and none in the catalog: left out, never served at $0.
    assert "meta-llama/Llama-3.1-8B-Instruct" in untranslated
    assert "Llama" not in yaml.safe_dump(yaml.safe_load(text)["deployments"])
    # A master key nemorouter would refuse is replaced, and the secret is not echoed.
    assert config.settings.master_key == f"https://{LONG}"
    assert "sk-1234" not in text
    assert conversion.commands == [
        "nemorouter teams create --name finance --tpm 100000 --budget-usd 500 --budget-period monthly"
    ]


def test_prices_per_token_become_exact_prices_per_million() -> None:
    data = {"model_list": [{"model_name": "m", "litellm_params": {
        "model": "hosted_vllm/x", "api_base": "http://h:1/v1"}, "model_info": {
        "input_cost_per_token": 1.25e-06, "output_cost_per_token": "0.0000100",
        "max_input_tokens": 8192}}]}  # fmt: skip
    deployment = convert(data).config["deployments"][0]
    assert deployment["pricing"] == {"input_per_mtok": "1.25", "output_per_mtok": "10"}


def test_a_litellm_config_given_to_the_loader_points_at_the_converter(tmp_path: Path) -> None:
    path = tmp_path / "litellm.yaml"
    path.write_text((FIXTURES / "vertex_documents.yaml").read_text())
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})  # its os.environ/ names are not asked for first
    message = str(raised.value)
    assert "LiteLLM config" in message and "model_list" in message
    assert f"nemorouter config from-litellm {path}" in message
    with pytest.raises(ConfigError, match="from-litellm"):
        parse_config({"general_settings": {"master_key": "sk-1"}}, env={})
