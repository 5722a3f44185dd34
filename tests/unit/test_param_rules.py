"""Parameters a model answers 400 to are dropped (or renamed) by its adapter, per the
catalog's `refuses` (audit rows 3, 6, 8); Claude's json_schema goes native or by a forced tool
per the catalog's `structured_output`; Claude stream usage keeps counts a delta sends as null
(audit row 12)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from nemorouter.catalog import load_catalog
from nemorouter.config import ProviderConfig, parse_config
from nemorouter.core.deployments import DeploymentPool, resolve_target
from nemorouter.providers import build_adapter
from nemorouter.providers.anthropic_request import anthropic_request
from nemorouter.providers.anthropic_response import StreamTranslator
from nemorouter.types.target import Target

PROVIDERS = {
    "openai": {"type": "openai", "api_key": "sk-x", "base_url": "http://x:9/v1"},
    "anthropic": {"type": "anthropic", "api_key": "sk-ant-x", "base_url": "http://x:9"},
    "gemini": {"type": "gemini", "api_key": "g-x", "base_url": "http://x:9"},
}
USER = [{"role": "user", "content": "hi"}]
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
FMT = {"type": "json_schema", "json_schema": {"name": "page", "schema": SCHEMA}}


def wire(kind: str, model: str, deployment_id: str = "d", **fields: Any) -> dict[str, Any]:
    """The body `model`'s adapter would send for a request with `fields`."""
    config = parse_config(
        {
            "settings": {"master_key": "sk-test-master-key"},
            "providers": {"p": PROVIDERS[kind]},
            "deployments": [{"id": deployment_id, "model": model, "provider": "p"}],
        },
        env={},
    )
    adapter = build_adapter("p", config.providers["p"], config.settings)
    deployment = DeploymentPool(config, {"p": adapter}).by_model[model][0]
    body = {"model": model, "messages": USER, **fields}
    before = {**body}
    sent = adapter.prepare(deployment.target, body, {}, stream=False).wire
    assert body == before  # the next link of the chain may take what this one refuses
    return sent


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"])
def test_claude_with_both_samplers_keeps_temperature(model: str) -> None:
    sent = wire("anthropic", model, temperature=0.2, top_p=0.9)
    assert sent["temperature"] == 0.2
    assert "top_p" not in sent
    assert wire("anthropic", model, top_p=0.9)["top_p"] == 0.9  # alone, it is taken


def test_claude_opus_4_7_gets_no_sampling_parameters() -> None:
    sent = wire("anthropic", "claude-opus-4-7", temperature=0, top_p=0.5)
    assert "temperature" not in sent and "top_p" not in sent


def test_older_claude_keeps_both_samplers() -> None:
    sent = wire("anthropic", "claude-sonnet-4", temperature=0.2, top_p=0.9)
    assert (sent["temperature"], sent["top_p"]) == (0.2, 0.9)


@pytest.mark.parametrize("model", ["gpt-5", "o3", "o4-mini"])
def test_openai_reasoning_models(model: str) -> None:
    sent = wire("openai", model, max_tokens=50, temperature=0.2, top_p=0.5, presence_penalty=1)
    assert sent["max_completion_tokens"] == 50
    assert not {"max_tokens", "temperature", "top_p", "presence_penalty"} & set(sent)
    assert wire("openai", model, temperature=1)["temperature"] == 1  # the default is taken
    both = wire("openai", model, max_tokens=50, max_completion_tokens=70)
    assert both["max_completion_tokens"] == 70 and "max_tokens" not in both


def test_other_openai_models_take_everything() -> None:
    sent = wire("openai", "gpt-4.1", max_tokens=50, temperature=0.2, top_p=0.5)
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (50, 0.2, 0.5)


def test_gemini_3_gets_no_penalties() -> None:
    fields = {"presence_penalty": 0.5, "frequency_penalty": 0.5, "temperature": 0.3}
    config = wire("gemini", "gemini-3-pro-preview", **fields)["generationConfig"]
    assert "presencePenalty" not in config and "frequencyPenalty" not in config
    assert config["temperature"] == 0.3
    older = wire("gemini", "gemini-2.5-pro", **fields)["generationConfig"]
    assert older["presencePenalty"] == older["frequencyPenalty"] == 0.5


def test_each_change_is_logged_once_per_deployment(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nemorouter.providers.param_rules")
    for _ in range(3):
        wire("anthropic", "claude-sonnet-4-5", "logged-once", temperature=0.2, top_p=0.9)
    lines = [r.getMessage() for r in caplog.records if "logged-once" in r.getMessage()]
    assert len(lines) == 1 and "top_p" in lines[0]


def test_claude_json_schema_native_on_the_claude_api() -> None:
    sent = wire("anthropic", "claude-sonnet-4-5", response_format=FMT)
    closed = {**SCHEMA, "additionalProperties": False}  # as the SDK's transform_schema sends
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": closed}}
    assert "tools" not in sent and "tool_choice" not in sent


def test_claude_schema_outside_the_native_subset_takes_the_tool_way() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "page", "schema": schema}}
    sent = wire("anthropic", "claude-sonnet-4-5", response_format=fmt)
    assert "output_config" not in sent
    assert sent["tools"] == [{"name": "page", "input_schema": schema}]


def test_claude_json_schema_by_forced_tool_without_native_support() -> None:
    sent = wire("anthropic", "claude-opus-4-1", response_format=FMT)
    assert sent["tools"] == [{"name": "page", "input_schema": SCHEMA}]
    assert sent["tool_choice"] == {"type": "tool", "name": "page"}
    assert "output_config" not in sent


def test_structured_output_way_depends_on_the_provider() -> None:
    config = parse_config(
        {
            "settings": {"master_key": "sk-test-master-key"},
            "providers": {"p": PROVIDERS["anthropic"]},
            "deployments": [{"id": "d", "model": "claude-sonnet-4-5", "provider": "p"}],
        },
        env={},
    )
    facts = load_catalog()["claude-sonnet-4-5"]
    dep = config.deployments[0]
    api, vertex = ProviderConfig(type="anthropic"), ProviderConfig(type="anthropic-vertex")
    assert resolve_target(dep, facts, api).native_structured is True
    assert resolve_target(dep, facts, vertex).native_structured is False
    body = {"messages": USER, "response_format": FMT}
    tool_way, name = anthropic_request(body, {}, 100, native_structured=False)
    assert name == "page" and tool_way["tool_choice"] == {"type": "tool", "name": "page"}
    native, name = anthropic_request(body, {}, 100, native_structured=True)
    assert name is None and "output_config" in native


def test_target_defaults_refuse_nothing() -> None:
    assert Target("d", "pm", "m", 1000, 0, None).refuses == frozenset()


def test_stream_usage_keeps_counts_a_delta_sends_as_null() -> None:
    """anthropic lib/streaming/_messages.py accumulate_event: a message_delta usage field that
    is None leaves the running value as it was."""
    translator = StreamTranslator("m", include_usage=True, structured=None)
    start_usage = {"input_tokens": 10, "cache_read_input_tokens": 3, "output_tokens": 1}
    translator.feed({"type": "message_start", "message": {"id": "x", "usage": start_usage}})
    delta_usage = {
        "output_tokens": 7,
        "input_tokens": None,
        "cache_read_input_tokens": None,
        "cache_creation_input_tokens": None,
    }
    translator.feed(
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage}
    )
    translator.feed({"type": "message_stop"})
    usage = translator.close()[0]["usage"]
    assert usage["prompt_tokens"] == 13
    assert usage["completion_tokens"] == 7
    assert usage["prompt_tokens_details"] == {"cached_tokens": 3}
