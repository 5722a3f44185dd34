"""A LiteLLM user's first steps (issue 21, item 11), through the real command: their config
refused with the way out named, converted, and the converted config serving their names."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from nemorouter.testing import SimulatedProvider

from .conftest import GatewayFactory, fresh_sqlite_url
from .test_cli import run_cli

FIXTURES = Path(__file__).parent.parent / "fixtures" / "litellm"
MASTER = "sk-litellm-master-key-0123456789"


def test_serve_refuses_a_litellm_config_and_names_the_converter() -> None:
    path = FIXTURES / "vertex_documents.yaml"
    result = run_cli("serve", "--config", str(path), timeout=30)
    assert result.returncode == 2
    assert "LiteLLM config" in result.stderr and "model_list" in result.stderr
    assert f"nemorouter config from-litellm {path}" in result.stderr


def test_from_litellm_writes_the_config_and_lists_what_it_left(tmp_path: Path) -> None:
    out = tmp_path / "nemorouter.yaml"
    result = run_cli(
        "config", "from-litellm", str(FIXTURES / "api_keys_mixed.yaml"), "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.startswith("# nemorouter config converted from the LiteLLM config")
    for left in ("bedrock/", "litellm_params.temperature", "master_key"):
        assert left in result.stderr, left
        assert left in text.split("\nsettings:", 1)[0], left  # in the header comments
    assert yaml.safe_load(text)["providers"]["gemini"]["api_key"] == "os.environ/GEMINI_API_KEY"
    printed = run_cli("config", "from-litellm", str(FIXTURES / "minimal.yaml"))
    assert printed.returncode == 0
    assert yaml.safe_load(printed.stdout)["deployments"][0]["model"] == "gpt-4o-mini"


def test_from_litellm_refuses_what_is_not_a_litellm_config(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("settings: {}\n")
    result = run_cli("config", "from-litellm", str(path))
    assert result.returncode == 2
    assert "not a LiteLLM config" in result.stderr


def test_the_converted_config_serves_the_litellm_names(
    sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    litellm = {
        "model_list": [
            {"model_name": "doc-model", "litellm_params": {
                "model": "hosted_vllm/gemini-2.5-flash", "api_base": sim.base_url, "rpm": 100}},
            {"model_name": "backup", "litellm_params": {
                "model": "openai/gemini-2.5-pro", "api_base": sim.base_url, "api_key": "none"}},
        ],
        "router_settings": {"fallbacks": [{"doc-model": ["backup"]}]},
        "general_settings": {"master_key": MASTER, "database_url": fresh_sqlite_url()},
    }  # fmt: skip
    from nemorouter.litellm.convert import convert

    converted = yaml.safe_load(convert(litellm).render("inline"))
    assert converted["groups"]["doc-model"] == ["gemini-2.5-flash", "gemini-2.5-pro"]
    gateway = start_gateway(converted)
    answer = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "doc-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {MASTER}"},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-nemo-model"] == "gemini-2.5-flash"
    assert sim.requests[-1].json()["model"] == "gemini-2.5-flash"
