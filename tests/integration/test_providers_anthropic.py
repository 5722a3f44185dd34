"""The gateway in front of simulated Claude providers (Anthropic API and Vertex rawPredict)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

from nemorouter.catalog import load_catalog
from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import FakeOAuthServer, Fault, SimulatedAnthropic

from . import helpers
from .helpers import USER, native_settings, read_stream, vertex_provider

# The shared `oauth`, `key_file` and `client` fixtures: pytest finds them among this module's names.
oauth_fixture = helpers.oauth_fixture
key_file_fixture = helpers.key_file_fixture
client_fixture = helpers.client_fixture

ANTHROPIC_KEY = "sk-ant-sim"
VERTEX_PATH = (
    "/v1/projects/sim-project/locations/us-east5/publishers/anthropic/models/"
    "claude-sonnet-4-5@20250929"
)
SCHEMA = {
    "type": "object",
    "properties": {
        "doc_type": {"type": "string", "enum": ["invoice", "receipt", "form"]},
        "total": {"type": "number", "minimum": 0},
    },
    "required": ["doc_type", "total"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def claude_server(oauth: FakeOAuthServer) -> Iterator[SimulatedAnthropic]:
    with SimulatedAnthropic(oauth=oauth, api_key=ANTHROPIC_KEY) as sim:
        yield sim


@pytest.fixture
def sim(claude_server: SimulatedAnthropic) -> SimulatedAnthropic:
    return helpers.reset(claude_server, cache_read_tokens=0)


@pytest.fixture(scope="module")
def gateway(claude_server: SimulatedAnthropic, key_file: Path) -> Iterator[BackgroundGateway]:
    vertex = vertex_provider("anthropic-vertex", "us-east5", claude_server, key_file)
    api = {"type": "anthropic", "base_url": claude_server.base_url, "api_key": ANTHROPIC_KEY}
    raw = {
        "settings": native_settings(),
        "providers": {"claude-vertex": vertex, "claude-api": api},
        "deployments": [
            {
                "id": "sonnet-vertex",
                "model": "claude-sonnet-4-5",
                "provider": "claude-vertex",
                "provider_model": "claude-sonnet-4-5@20250929",
            },
            {
                "id": "haiku-api",
                "model": "claude-haiku-4-5",
                "provider": "claude-api",
                "provider_model": "claude-haiku-4-5-20251001",
                "max_output_tokens": 2048,
            },
        ],
    }
    with BackgroundGateway(parse_config(raw, env={})) as gw:
        yield gw


def jpeg_url() -> str:
    return "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8\xff" + os.urandom(1500)).decode()


def test_vertex_rawpredict(
    client: openai.OpenAI, sim: SimulatedAnthropic, oauth: FakeOAuthServer
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "system", "content": "Terse."}, *USER],
        max_tokens=300,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith(
        "Simulated answer from claude-sonnet-4-5@20250929"
    )
    assert completion.model == "claude-sonnet-4-5"
    assert float(raw.headers["x-nemo-response-cost"]) > 0
    sent = sim.requests[-1]
    assert sent.path == f"{VERTEX_PATH}:rawPredict"
    assert oauth.valid(sent.headers["authorization"].removeprefix("Bearer "))
    assert sent.json() == {
        "anthropic_version": "vertex-2023-10-16",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Classify this page."}],
        "system": "Terse.",
    }


def test_anthropic_api_headers_and_default_max_tokens(
    client: openai.OpenAI, sim: SimulatedAnthropic
) -> None:
    client.chat.completions.create(model="claude-haiku-4-5", messages=USER)
    sent = sim.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json() == {
        "model": "claude-haiku-4-5-20251001",
        "max_tokens": 2048,  # the deployment's max_output_tokens
        "messages": [{"role": "user", "content": "Classify this page."}],
    }


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_is_the_catalog_max_output_unless_the_client_sets_one(
    client: openai.OpenAI, sim: SimulatedAnthropic, stream: bool
) -> None:
    """sonnet-vertex configures no max_output_tokens: a stream is sent the catalog's maximum
    output (what the budget's worst case assumes), not a small default that cuts long
    extractions short; a non-streaming call the most the Anthropic SDK would send without
    streaming within the call timeout (core/deployments.nonstreaming_default: 2 s here, so
    the 4,096 floor); a client's limit wins."""
    catalog_max = load_catalog()["claude-sonnet-4-5"].max_output_tokens
    assert catalog_max == 64_000
    default = catalog_max if stream else 4096

    def sent_max_tokens(**limit: int) -> int:
        answer = client.chat.completions.create(
            model="claude-sonnet-4-5", messages=USER, stream=stream, **limit
        )
        if stream:
            read_stream(answer)  # type: ignore[arg-type]
        return int(sim.requests[-1].json()["max_tokens"])

    assert sent_max_tokens() == default
    assert sent_max_tokens(max_tokens=1234) == 1234
    assert sent_max_tokens(max_tokens=50_000) == 50_000  # the client's, even above the cap
    assert sent_max_tokens(max_completion_tokens=777) == 777


@pytest.mark.parametrize("count", [1, 4])
def test_images(client: openai.OpenAI, sim: SimulatedAnthropic, count: int) -> None:
    urls = [jpeg_url() for _ in range(count)]
    content: list[Any] = [
        {"type": "text", "text": "Read"},
        *({"type": "image_url", "image_url": {"url": u}} for u in urls),
    ]
    completion = client.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": content}]
    )
    assert f"{count} image(s)" in (completion.choices[0].message.content or "")
    blocks = sim.requests[-1].json()["messages"][0]["content"]
    assert [b["source"]["data"] for b in blocks[1:]] == [u.split(",", 1)[1] for u in urls]
    assert {b["type"] for b in blocks[1:]} == {"image"}


# Inside the native structured-output subset (SCHEMA's `minimum` is not: req_llm#302).
NATIVE_SCHEMA = {
    "type": "object",
    "properties": {"doc_type": {"type": "string", "enum": ["invoice", "receipt", "form"]}},
    "required": ["doc_type"],
}


@pytest.mark.parametrize(
    ("model", "schema", "native"),
    [
        ("claude-sonnet-4-5", NATIVE_SCHEMA, False),  # Vertex: native is org-policy gated
        ("claude-haiku-4-5", NATIVE_SCHEMA, True),  # the Claude API: native
        ("claude-haiku-4-5", SCHEMA, False),  # outside the native subset: the tool way
    ],
)
def test_json_schema_extraction(
    client: openai.OpenAI, sim: SimulatedAnthropic, model: str, schema: Any, native: bool
) -> None:
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "page", "schema": schema}}
    completion = client.chat.completions.create(model=model, messages=USER, response_format=fmt)
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)
    assert completion.choices[0].finish_reason == "stop"
    sent = sim.requests[-1].json()
    if native:
        closed = {**schema, "additionalProperties": False}
        assert sent["output_config"] == {"format": {"type": "json_schema", "schema": closed}}
        assert "tools" not in sent
    else:
        assert sent["tool_choice"] == {"type": "tool", "name": "page"}
        assert "output_config" not in sent
    stream = client.chat.completions.create(
        model=model, messages=USER, response_format=fmt, stream=True
    )
    streamed = read_stream(stream)
    jsonschema.validate(json.loads(streamed.text), schema)
    assert streamed.finish == "stop"


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-haiku-4-5"])
def test_streaming_with_usage(client: openai.OpenAI, sim: SimulatedAnthropic, model: str) -> None:
    sim.cache_read_tokens = 3
    full = client.chat.completions.create(model=model, messages=USER)
    streamed = read_stream(
        client.chat.completions.create(
            model=model, messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert streamed.text == full.choices[0].message.content
    assert streamed.finish == "stop"
    usage = streamed.usage
    assert usage is not None and full.usage is not None
    assert usage.prompt_tokens == full.usage.prompt_tokens  # cache reads counted in
    assert (
        usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 3
    )
    path = sim.requests[-1].path
    assert (
        path.endswith(":streamRawPredict")
        if model == "claude-sonnet-4-5"
        else path == "/v1/messages"
    )


def test_overloaded_529_is_retried(client: openai.OpenAI, sim: SimulatedAnthropic) -> None:
    sim.inject(Fault.status(529))
    raw = client.chat.completions.with_raw_response.create(model="claude-haiku-4-5", messages=USER)
    assert raw.headers["x-nemo-attempts"] == "2"


def test_rate_limit_retry_after_is_honoured(client: openai.OpenAI, sim: SimulatedAnthropic) -> None:
    sim.inject(Fault.status(429, retry_after_ms=300))
    client.chat.completions.create(model="claude-haiku-4-5", messages=USER)
    assert sim.requests[1].at - sim.requests[0].at >= 0.28


def test_persistent_overload_is_503(client: openai.OpenAI, sim: SimulatedAnthropic) -> None:
    error = helpers.persistent_503(
        client, sim, Fault.status(529, retry_after=4), "claude-sonnet-4-5"
    )
    assert error.response.headers["retry-after"] == "4"
    assert "Overloaded" in error.message


def test_invalid_request_is_400(client: openai.OpenAI, sim: SimulatedAnthropic) -> None:
    sim.inject(Fault.status(400))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="claude-sonnet-4-5", messages=USER)
    content = [{"type": "image_url", "image_url": {"url": "gs://bucket/x.png"}}]
    with pytest.raises(openai.BadRequestError, match="gs://"):
        client.chat.completions.create(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": content}]
        )


def test_cut_stream_raises_in_the_sdk(client: openai.OpenAI, sim: SimulatedAnthropic) -> None:
    helpers.assert_stream_breaks(client, sim, "claude-sonnet-4-5", after_chunks=1)


def test_revoked_vertex_token_is_refreshed(
    client: openai.OpenAI, sim: SimulatedAnthropic, oauth: FakeOAuthServer
) -> None:
    helpers.assert_one_refresh(client, oauth, "claude-sonnet-4-5")
