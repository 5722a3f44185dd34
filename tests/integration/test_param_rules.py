"""Parameters a model refuses, through the gateway with the openai SDK, against simulators that
answer them with a 400 the way the real APIs do (testing/sim_param_rules.py cites the sources):
the adapter drops or renames them, so the model answers instead of stopping the chain. And a
document-vision chain serves a json_schema extraction through its Claude link."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import (
    FakeOAuthServer,
    Fault,
    SimulatedAnthropic,
    SimulatedGemini,
    SimulatedProvider,
)

from . import helpers
from .helpers import USER, native_settings, read_stream, vertex_provider

oauth_fixture = helpers.oauth_fixture
key_file_fixture = helpers.key_file_fixture
client_fixture = helpers.client_fixture

KEY = "sk-sim"
SCHEMA = {
    "type": "object",
    "properties": {
        "doc_type": {"type": "string", "enum": ["invoice", "receipt", "form"]},
        "total": {"type": "number", "minimum": 0},
    },
    "required": ["doc_type", "total"],
    "additionalProperties": False,
}
FMT: Any = {"type": "json_schema", "json_schema": {"name": "page", "schema": SCHEMA}}


@pytest.fixture(scope="module")
def sims(oauth: FakeOAuthServer) -> Iterator[tuple[SimulatedAnthropic, SimulatedProvider, Any]]:
    with (
        SimulatedAnthropic(oauth=oauth, api_key=KEY) as claude,
        SimulatedProvider(api_key=KEY) as openai_sim,
        SimulatedGemini(oauth=oauth, api_key=KEY) as gemini,
    ):
        yield claude, openai_sim, gemini


@pytest.fixture
def sim(sims: tuple[SimulatedAnthropic, SimulatedProvider, Any]) -> SimulatedAnthropic:
    for each in sims:
        helpers.reset(each)
    return sims[0]


@pytest.fixture(scope="module")
def gateway(sims: Any, key_file: Path) -> Iterator[BackgroundGateway]:
    claude, openai_sim, gemini = sims
    raw = {
        "settings": native_settings(),
        "providers": {
            "claude-vertex": vertex_provider("anthropic-vertex", "us-east5", claude, key_file),
            "claude-api": {"type": "anthropic", "base_url": claude.base_url, "api_key": KEY},
            "openai": {"type": "openai", "base_url": openai_sim.base_url, "api_key": KEY},
            "gemini": {"type": "gemini", "base_url": gemini.base_url, "api_key": KEY},
        },
        "deployments": [
            {
                "id": "sonnet-vertex",
                "model": "claude-sonnet-4-5",
                "provider": "claude-vertex",
                "provider_model": "claude-sonnet-4-5@20250929",
            },
            {
                "id": "opus-api",
                "model": "claude-opus-4-7",
                "provider": "claude-api",
                "max_output_tokens": 1024,
            },
            {"id": "gpt5", "model": "gpt-5", "provider": "openai"},
            {"id": "o3", "model": "o3", "provider": "openai"},
            {"id": "g3", "model": "gemini-3-pro-preview", "provider": "gemini"},
            {"id": "pro", "model": "gemini-2.5-pro", "provider": "gemini"},
            {"id": "flash", "model": "gemini-2.5-flash", "provider": "gemini"},
        ],
        # as in nemorouter.example.yaml
        "groups": {
            "document-vision": ["gemini-2.5-pro", "claude-sonnet-4-5", "gemini-2.5-flash"],
            "opus-then-flash": ["claude-opus-4-7", "gemini-2.5-flash"],
        },
    }
    with BackgroundGateway(parse_config(raw, env={})) as gw:
        yield gw


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, json=body, headers=headers, timeout=10)


def test_the_simulators_refuse_like_the_real_apis(sims: Any) -> None:
    """The 400s the gateway must avoid (so the tests below would fail if it sent them)."""
    claude, openai_sim, gemini = sims
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    base = {"max_tokens": 10, "messages": USER}
    both = _post(
        f"{claude.base_url}/v1/messages",
        {**base, "model": "claude-sonnet-4-5-20250929", "temperature": 0, "top_p": 0.5},
        headers,
    )
    assert both.status_code == 400 and "cannot both be specified" in both.text
    opus = _post(
        f"{claude.base_url}/v1/messages",
        {**base, "model": "claude-opus-4-7", "temperature": 0},
        headers,
    )
    assert opus.status_code == 400 and "`temperature` is deprecated" in opus.text
    fmt = {"type": "json_schema", "schema": {**SCHEMA, "additionalProperties": False}}
    native = _post(
        f"{claude.base_url}/v1/messages",
        {**base, "model": "claude-haiku-4-5", "output_config": {"format": fmt}},
        headers,
    )  # SCHEMA's `minimum` is outside the native subset
    assert native.status_code == 400 and "property 'minimum' is not supported" in native.text
    gpt5 = _post(
        f"{openai_sim.base_url}/chat/completions",
        {"model": "gpt-5", "messages": USER, "max_tokens": 10},
        {"authorization": f"Bearer {KEY}"},
    )
    assert gpt5.status_code == 400 and gpt5.json()["error"]["param"] == "max_tokens"
    penalty = _post(
        f"{gemini.base_url}/v1beta/models/gemini-3-pro-preview:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
         "generationConfig": {"presencePenalty": 0.5}},
        {"x-goog-api-key": KEY},
    )  # fmt: skip
    assert penalty.status_code == 400


@pytest.mark.parametrize("stream", [False, True])
def test_claude_4_5_with_temperature_and_top_p(
    client: openai.OpenAI, sim: SimulatedAnthropic, stream: bool
) -> None:
    kwargs: Any = {"model": "claude-sonnet-4-5", "messages": USER, "temperature": 0.2}
    if stream:
        text = read_stream(client.chat.completions.create(**kwargs, top_p=0.9, stream=True)).text
    else:
        text = client.chat.completions.create(**kwargs, top_p=0.9).choices[0].message.content
    assert text and text.startswith("Simulated answer")
    sent = sim.requests[-1].json()
    assert sent["temperature"] == 0.2 and "top_p" not in sent


def test_opus_4_7_with_temperature_answers_instead_of_failing_over(
    client: openai.OpenAI, sim: SimulatedAnthropic
) -> None:
    completion = client.chat.completions.create(
        model="opus-then-flash", messages=USER, temperature=0, top_p=0.5
    )
    assert completion.model == "claude-opus-4-7"
    sent = sim.requests[-1].json()
    assert "temperature" not in sent and "top_p" not in sent


@pytest.mark.parametrize("model", ["gpt-5", "o3"])
def test_openai_reasoning_model_with_max_tokens_and_temperature(
    client: openai.OpenAI, sims: Any, sim: SimulatedAnthropic, model: str
) -> None:
    completion = client.chat.completions.create(
        model=model, messages=USER, max_tokens=200, temperature=0.2
    )
    assert completion.choices[0].finish_reason == "stop"
    sent = sims[1].requests[-1].json()
    assert sent["max_completion_tokens"] == 200
    assert "max_tokens" not in sent and "temperature" not in sent


def test_gemini_3_with_penalties(client: openai.OpenAI, sims: Any, sim: SimulatedAnthropic) -> None:
    completion = client.chat.completions.create(
        model="gemini-3-pro-preview", messages=USER, presence_penalty=0.5, frequency_penalty=0.5
    )
    assert completion.choices[0].finish_reason == "stop"
    config = sims[2].requests[-1].json().get("generationConfig", {})
    assert "presencePenalty" not in config and "frequencyPenalty" not in config


@pytest.mark.parametrize("stream", [False, True])
def test_document_vision_serves_a_schema_extraction_through_claude(
    client: openai.OpenAI, sims: Any, sim: SimulatedAnthropic, stream: bool
) -> None:
    """Gemini 2.5 Pro is down: the chain's Claude link answers the json_schema request (it
    used to be skipped for lacking `structured-output`, leaving it to the third link)."""
    sims[2].inject(Fault.status(503), times=20)  # every Gemini call fails
    kwargs: Any = {"model": "document-vision", "messages": USER, "response_format": FMT}
    if stream:
        streamed = read_stream(client.chat.completions.create(**kwargs, stream=True))
        text, finish, model = streamed.text, streamed.finish, streamed.chunks[0].model
    else:
        completion = client.chat.completions.create(**kwargs)
        text = completion.choices[0].message.content or ""
        finish, model = completion.choices[0].finish_reason, completion.model
    assert model == "claude-sonnet-4-5"
    assert finish == "stop"
    jsonschema.validate(json.loads(text), SCHEMA)
    sent = sim.requests[-1].json()
    assert sent["tool_choice"] == {"type": "tool", "name": "page"}  # Vertex: the tool way
