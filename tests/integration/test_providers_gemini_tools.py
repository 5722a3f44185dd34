"""Two-round tool conversations with parallel calls through the gateway, driven by the openai
SDK, against simulated Gemini 3 models on Vertex AI and on the Gemini API (issue 18).

The simulated provider enforces what the real API does here (testing/sim_gemini_rules.py): one
content answering all the calls of a turn, the thought signature of Gemini 3 call turns, no
empty text part on Vertex, only the schema formats Gemini accepts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import FakeOAuthServer, SimulatedGemini

from . import helpers
from .helpers import native_settings, vertex_provider

oauth_fixture = helpers.oauth_fixture
key_file_fixture = helpers.key_file_fixture
client_fixture = helpers.client_fixture

GEMINI_KEY = "g-api-key-tools"
MODELS = ["gemini-3-flash-preview", "gemini-3.1-pro-preview"]  # on Vertex, on the Gemini API
ASK = {"role": "user", "content": "Weather and local time in Oslo?"}
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    for name in ("weather", "time")
]


@pytest.fixture(scope="module")
def gemini_server(oauth: FakeOAuthServer) -> Iterator[SimulatedGemini]:
    with SimulatedGemini(oauth=oauth, api_key=GEMINI_KEY) as sim:
        yield sim


@pytest.fixture
def sim(gemini_server: SimulatedGemini) -> SimulatedGemini:
    return helpers.reset(gemini_server, cached_tokens=0, rpm=None)


@pytest.fixture(scope="module")
def gateway(gemini_server: SimulatedGemini, key_file: Path) -> Iterator[BackgroundGateway]:
    config = {
        "settings": native_settings(),
        "providers": {
            "vertex-sim": vertex_provider("vertex", "global", gemini_server, key_file),
            "gemini-sim": {
                "type": "gemini",
                "base_url": gemini_server.base_url,
                "api_key": GEMINI_KEY,
            },
        },
        "deployments": [
            {"id": "g3-vertex", "model": MODELS[0], "provider": "vertex-sim"},
            {"id": "g3-api", "model": MODELS[1], "provider": "gemini-sim"},
        ],
    }
    with BackgroundGateway(parse_config(config, env={})) as gw:
        yield gw


def first_round(client: openai.OpenAI, model: str, stream: bool) -> list[dict[str, Any]]:
    """The parallel tool calls of the first answer, as plain dicts (id, type, function)."""
    if not stream:
        completion = client.chat.completions.create(
            model=model, messages=[ASK], tools=TOOLS, tool_choice="required"
        )
        assert completion.choices[0].finish_reason == "tool_calls"
        calls = completion.choices[0].message.tool_calls or []
        return [
            {"id": c.id, "type": "function", "function": c.function.model_dump()} for c in calls
        ]
    chunks = client.chat.completions.create(
        model=model, messages=[ASK], tools=TOOLS, tool_choice="required", stream=True
    )
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in chunks:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                entry = calls.setdefault(
                    delta.index,
                    {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
                )
                entry["id"] += delta.id or ""
                if delta.function is not None:
                    entry["function"]["name"] += delta.function.name or ""
                    entry["function"]["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    return [calls[i] for i in sorted(calls)]


def second_round(client: openai.OpenAI, model: str, stream: bool, assistant: dict[str, Any]) -> str:
    results = [
        {"role": "tool", "tool_call_id": call["id"], "content": f"{call['function']['name']}: ok"}
        for call in assistant["tool_calls"]
    ]
    messages: Any = [ASK, assistant, *results]
    if not stream:
        completion = client.chat.completions.create(
            model=model, messages=messages, tools=TOOLS, tool_choice="required"
        )
        assert completion.choices[0].finish_reason == "stop"
        return completion.choices[0].message.content or ""
    streamed = helpers.read_stream(
        client.chat.completions.create(
            model=model, messages=messages, tools=TOOLS, tool_choice="auto", stream=True
        )
    )
    assert streamed.finish == "stop"
    return streamed.text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model", MODELS, ids=["vertex", "gemini-api"])
def test_two_round_parallel_tool_conversation(
    client: openai.OpenAI, sim: SimulatedGemini, model: str, stream: bool
) -> None:
    calls = first_round(client, model, stream)
    assert [c["function"]["name"] for c in calls] == ["weather", "time"]
    assert all(isinstance(json.loads(c["function"]["arguments"])["city"], str) for c in calls)
    assert "__thought__" in calls[0]["id"] and "__thought__" not in calls[1]["id"]
    # a client that builds the assistant message from id/type/function, with `content: ""`
    answer = second_round(
        client, model, stream, {"role": "assistant", "content": "", "tool_calls": calls}
    )
    assert answer.startswith(f"Simulated answer from {model}")
    sent = sim.requests[-1].json()["contents"]
    assert sent[0] == {"role": "user", "parts": [{"text": ASK["content"]}]}
    assert [list(p) for p in sent[1]["parts"]] == [
        ["functionCall", "thoughtSignature"],
        ["functionCall"],
    ]
    # the signature the simulated model issued, decoded back from the id
    signature = base64.b64decode(sent[1]["parts"][0]["thoughtSignature"], validate=True)
    assert signature.startswith(b"sim-thought-signature:")
    assert [p["functionResponse"]["name"] for p in sent[2]["parts"]] == ["weather", "time"]
    assert len(sent) == 3


@pytest.mark.parametrize("model", MODELS, ids=["vertex", "gemini-api"])
def test_model_dump_round_trip(client: openai.OpenAI, sim: SimulatedGemini, model: str) -> None:
    """A client that sends back `message.model_dump()` (every field, None included)."""
    completion = client.chat.completions.create(
        model=model, messages=[ASK], tools=TOOLS, tool_choice="required"
    )
    message = completion.choices[0].message
    results = [
        {"role": "tool", "tool_call_id": call.id, "content": "ok"}
        for call in message.tool_calls or ()
    ]
    answer = client.chat.completions.create(
        model=model, messages=[ASK, message.model_dump(), *results], tools=TOOLS
    )
    assert answer.choices[0].finish_reason == "stop"
    parts = sim.requests[-1].json()["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] != "skip_thought_signature_validator"


@pytest.mark.parametrize("model", MODELS, ids=["vertex", "gemini-api"])
def test_hand_built_history_gets_the_documented_dummy(
    client: openai.OpenAI, sim: SimulatedGemini, model: str
) -> None:
    """A history the model never produced (no signature anywhere) is not refused."""
    calls = [{"id": "mine", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]
    messages: Any = [
        ASK,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "mine", "content": "rain"},
    ]
    answer = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    assert answer.choices[0].finish_reason == "stop"
    first = sim.requests[-1].json()["contents"][1]["parts"][0]
    assert first["thoughtSignature"] == "skip_thought_signature_validator"


@pytest.mark.parametrize("model", MODELS, ids=["vertex", "gemini-api"])
def test_schema_formats_gemini_refuses_are_dropped(
    client: openai.OpenAI, sim: SimulatedGemini, model: str
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "contact": {"type": "string", "format": "email"},
            "issued": {"type": "string", "format": "date-time"},
        },
        "required": ["contact", "issued"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model=model,
        messages=[ASK],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "c", "strict": True, "schema": schema},
        },
    )
    assert set(json.loads(completion.choices[0].message.content or "")) == {"contact", "issued"}
    sent = sim.requests[-1].json()["generationConfig"]["responseSchema"]["properties"]
    assert sent["contact"] == {"type": "STRING"}
    assert sent["issued"] == {"type": "STRING", "format": "date-time"}
