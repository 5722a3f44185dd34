"""Config loading: the example parses, and every kind of mistake names its key path."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from nemorouter.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
ENV = {"NEMOROUTER_MASTER_KEY": "sk-test-master-key", "NEMOROUTER_SIM_URL": "http://127.0.0.1:9/v1"}

BASE: dict[str, Any] = {
    "settings": {"master_key": "sk-test-master-key"},
    "providers": {"sim": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}},
    "deployments": [
        {"id": "pro", "model": "gemini-2.5-pro", "provider": "sim", "rpm": 600},
        {"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"},
    ],
    "groups": {"docs": ["gemini-2.5-pro", "gemini-2.5-flash"]},
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    """BASE with one value replaced; `path` like "deployments/0/rpm"."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split("/")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def test_example_config_loads() -> None:
    config = load_config(ROOT / "nemorouter.example.yaml", env=ENV)
    assert config.settings.master_key == ENV["NEMOROUTER_MASTER_KEY"]
    assert config.providers["sim"].base_url == ENV["NEMOROUTER_SIM_URL"]
    assert config.providers["sim"].api_key == "none"
    assert config.groups["document-vision"] == (
        "gemini-2.5-pro",
        "claude-sonnet-4-5",
        "gemini-2.5-flash",
    )
    assert config.settings.cache.scope == "team"
    qwen = next(d for d in config.deployments if d.id == "qwen-sim")
    assert qwen.pricing is not None and qwen.pricing.input_per_mtok == Decimal("0")
    assert config.max_body_bytes == 50 * 1024 * 1024


def test_defaults_and_provider_model() -> None:
    config = parse_config(BASE, env={})
    assert config.settings.request_timeout_s == 120
    assert config.settings.retries == 1
    assert config.deployments[0].upstream_model == "gemini-2.5-pro"


def test_env_reference_resolved_and_converted() -> None:
    data = with_change("deployments/0/rpm", "os.environ/PRO_RPM")
    config = parse_config(data, env={"PRO_RPM": "42"})
    assert config.deployments[0].rpm == 42


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        (with_change("deployments/0/rpm", -1), "deployments[0].rpm", ">= 0"),
        (with_change("deployments/1/tpm", -5), "deployments[1].tpm", ">= 0"),
        (with_change("providers/sim/type", "azure"), "providers.sim.type", "invalid enum value"),
        (
            with_change("deployments/0/provider", "nowhere"),
            "deployments[0].provider",
            "unknown provider 'nowhere'",
        ),
        (
            with_change("groups/docs", ["gemini-2.5-pro", "gpt-9"]),
            "groups.docs[1]",
            "unknown model 'gpt-9'",
        ),
        (with_change("groups/docs", []), "groups.docs", "at least one model"),
        (
            with_change("groups/gemini-2.5-pro", ["gemini-2.5-flash"]),
            "groups.gemini-2.5-pro",
            "clashes",
        ),
        (
            with_change("settings/master_key", "os.environ/NOPE_UNSET"),
            "settings.master_key",
            "NOPE_UNSET is not set",
        ),
        (with_change("settings/master_key", "short"), "settings.master_key", "at least 16"),
        (
            with_change("settings/master_key", "sk-nemo-1234567"),
            "settings.master_key",
            "at least 16",
        ),
        (
            with_change("settings/cache", {"enabled": True, "scope": "planet"}),
            "settings.cache.scope",
            "invalid enum",
        ),
        (with_change("settings/request_timeout_s", 0), "settings.request_timeout_s", "> 0"),
        (with_change("settings/max_body_mb", -1), "settings.max_body_mb", "> 0"),
        (with_change("settings/cach", {}), "settings", "unknown field `cach`"),
        (
            with_change("providers/sim", {"type": "openai-compatible"}),
            "providers.sim.base_url",
            "required",
        ),
        (with_change("providers/sim", {"type": "gemini"}), "providers.sim.api_key", "required"),
        (
            with_change("providers/sim", {"type": "vertex", "project": "p"}),
            "providers.sim.location",
            "required",
        ),
        (with_change("providers/sim/base_url", "ftp://x"), "providers.sim.base_url", "http"),
        (with_change("deployments/1/id", "pro"), "deployments[1].id", "duplicate"),
        (with_change("deployments/0/model", "auto"), "deployments[0].model", "reserved"),
        (
            with_change("deployments/0/model", "my-own-model"),
            "deployments[0].model",
            "declare pricing and context_window",
        ),
        (
            with_change("deployments/0/tags", ["Vision!"]),
            "deployments[0].tags[0]",
            "matching regex",
        ),
        (
            with_change("deployments/0/pricing", {"input_per_mtok": "abc", "output_per_mtok": "1"}),
            "deployments[0].pricing.input_per_mtok",
            "decimal",
        ),
        (
            with_change("deployments/0/pricing", {"input_per_mtok": "-1", "output_per_mtok": "1"}),
            "deployments[0].pricing.input_per_mtok",
            "non-negative",
        ),
        (with_change("deployments", []), "deployments", "at least one"),
    ],
)
def test_errors_name_the_key_path(data: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    assert info.value.path == path, str(info.value)
    assert words.lower() in str(info.value).lower()


def test_missing_section_is_named() -> None:
    data = copy.deepcopy(BASE)
    del data["providers"]
    with pytest.raises(ConfigError, match="providers"):
        parse_config(data, env={})


def test_undeclared_model_with_declared_facts_is_accepted() -> None:
    data = with_change(
        "deployments/0",
        {"id": "own", "model": "my-vlm", "provider": "sim", "tags": ["vision"],
         "pricing": {"input_per_mtok": "0.5", "output_per_mtok": "1.5"}, "context_window": 32768},
    )  # fmt: skip
    data["groups"] = {}
    config = parse_config(data, env={})
    assert config.deployments[0].pricing is not None
    assert config.deployments[0].pricing.output_per_mtok == Decimal("1.5")


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config file at .*`nemorouter config example"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)  # a folder
    bad = tmp_path / "bad.yaml"
    bad.write_text("settings: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
