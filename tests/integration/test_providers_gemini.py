"""The gateway in front of simulated Vertex AI and Gemini API providers, driven by the openai SDK.

Vertex runs the real credential flow: a generated service-account key signs a JWT assertion,
the fake OAuth endpoint issues bearer tokens, the simulated Vertex checks them.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import ipaddress
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

from nemorouter.config import parse_config
from nemorouter.core.deployments import resolve_target
from nemorouter.providers import build_adapter, image_fetch
from nemorouter.providers.gemini import GeminiAdapter
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import FakeOAuthServer, Fault, SimulatedGemini

from . import helpers
from .conftest import MASTER_KEY
from .helpers import USER, native_settings, read_stream, vertex_provider

# The shared `oauth`, `key_file` and `client` fixtures: pytest finds them among this module's names.
oauth_fixture = helpers.oauth_fixture
key_file_fixture = helpers.key_file_fixture
client_fixture = helpers.client_fixture

GEMINI_KEY = "g-api-key-123"
INVOICE = {
    "type": "object",
    "properties": {
        "number": {"type": "string", "pattern": "^INV-[0-9]{4}$"},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
        "total": {"type": "number", "minimum": 0},
        "vendor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "lines": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"text": {"type": "string"}, "amount": {"type": "number"}},
                "required": ["text", "amount"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["number", "currency", "total", "vendor", "lines"],
    "additionalProperties": False,
}


def image_url(size: int = 2000) -> str:
    return "data:image/png;base64," + base64.b64encode(os.urandom(size)).decode()


@pytest.fixture(scope="module")
def gemini_server(oauth: FakeOAuthServer) -> Iterator[SimulatedGemini]:
    with SimulatedGemini(oauth=oauth, api_key=GEMINI_KEY) as sim:
        yield sim


@pytest.fixture
def sim(gemini_server: SimulatedGemini) -> SimulatedGemini:
    return helpers.reset(gemini_server, cached_tokens=0, rpm=None)


def config(sim: SimulatedGemini, key_file: Path, **settings: Any) -> dict[str, Any]:
    return {
        "settings": native_settings(**settings),
        "providers": {
            "vertex-sim": vertex_provider("vertex", "us-central1", sim, key_file),
            "gemini-sim": {"type": "gemini", "base_url": sim.base_url, "api_key": GEMINI_KEY},
        },
        "deployments": [
            {"id": "flash-vertex", "model": "gemini-2.5-flash", "provider": "vertex-sim"},
            {
                "id": "pro-api",
                "model": "gemini-2.5-pro",
                "provider": "gemini-sim",
                "provider_model": "gemini-2.5-pro-002",
            },
        ],
        "groups": {"pro-then-flash": ["gemini-2.5-pro", "gemini-2.5-flash"]},
    }


@pytest.fixture(scope="module")
def gateway(gemini_server: SimulatedGemini, key_file: Path) -> Iterator[BackgroundGateway]:
    with BackgroundGateway(parse_config(config(gemini_server, key_file), env={})) as gw:
        yield gw


def test_vertex_text_completion(
    client: openai.OpenAI, sim: SimulatedGemini, oauth: FakeOAuthServer
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-2.5-flash",
        messages=[{"role": "system", "content": "Be terse."}, *USER],
        temperature=0,
        max_tokens=200,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith(
        "Simulated answer from gemini-2.5-flash"
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert raw.headers["x-nemo-deployment"] == "flash-vertex"
    assert float(raw.headers["x-nemo-response-cost"]) > 0
    sent = sim.requests[-1]
    assert sent.path == (
        "/v1/projects/sim-project/locations/us-central1/publishers/google/models/"
        "gemini-2.5-flash:generateContent"
    )
    assert oauth.valid(sent.headers["authorization"].removeprefix("Bearer "))
    assert sent.json() == {
        "contents": [{"role": "user", "parts": [{"text": "Classify this page."}]}],
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "generationConfig": {"temperature": 0, "maxOutputTokens": 200},
    }


def test_gemini_api_uses_key_and_provider_model(
    client: openai.OpenAI, sim: SimulatedGemini
) -> None:
    completion = client.chat.completions.create(model="gemini-2.5-pro", messages=USER)
    assert completion.model == "gemini-2.5-pro"
    sent = sim.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-pro-002:generateContent"
    assert sent.headers["x-goog-api-key"] == GEMINI_KEY
    assert "authorization" not in sent.headers


def test_max_output_tokens_only_when_the_client_sets_one(
    client: openai.OpenAI, sim: SimulatedGemini
) -> None:
    """Gemini's maxOutputTokens is optional (its own default is at most the model's
    maximum, which the budget assumes): sent only when the client set a limit."""
    client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert "maxOutputTokens" not in sim.requests[-1].json().get("generationConfig", {})
    client.chat.completions.create(model="gemini-2.5-flash", messages=USER, max_tokens=321)
    assert sim.requests[-1].json()["generationConfig"]["maxOutputTokens"] == 321


@pytest.mark.parametrize("count", [1, 3])
def test_images(client: openai.OpenAI, sim: SimulatedGemini, count: int) -> None:
    urls = [image_url() for _ in range(count)]
    content: list[Any] = [{"type": "text", "text": "Extract."}]
    content += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    completion = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": content}]
    )
    assert f"{count} image(s)" in (completion.choices[0].message.content or "")
    assert completion.usage is not None and completion.usage.prompt_tokens >= 258 * count
    parts = sim.requests[-1].json()["contents"][0]["parts"]
    assert [p["inlineData"]["data"] for p in parts[1:]] == [u.split(",", 1)[1] for u in urls]
    assert {p["inlineData"]["mimeType"] for p in parts[1:]} == {"image/png"}


@dataclass
class ImageServer:
    url: str
    fetches: list[str]  # the paths GET asked for, in order


@pytest.fixture
def image_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ImageServer]:
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
    fetches: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # the gateway runs in this process: let it fetch from loopback for this test only
    monkeypatch.setattr(image_fetch, "ALLOWED_NETWORKS", (ipaddress.ip_network("127.0.0.0/8"),))
    yield ImageServer(f"http://127.0.0.1:{server.server_address[1]}/scan.png", fetches)
    server.shutdown()
    server.server_close()


@pytest.fixture
def image_host(image_server: ImageServer) -> str:
    return image_server.url


def test_http_image_is_fetched_and_inlined(
    client: openai.OpenAI, sim: SimulatedGemini, image_host: str
) -> None:
    content = [{"type": "image_url", "image_url": {"url": image_host}}]
    client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": content}]
    )
    blob = sim.requests[-1].json()["contents"][0]["parts"][0]["inlineData"]
    assert blob["mimeType"] == "image/png"
    assert base64.b64decode(blob["data"]).startswith(b"\x89PNG")


@pytest.mark.parametrize("stream", [False, True])
def test_remote_image_is_fetched_once_across_retries_and_fallbacks(
    client: openai.OpenAI, sim: SimulatedGemini, image_server: ImageServer, stream: bool
) -> None:
    """gemini-2.5-pro fails its call and its retry (503), gemini-2.5-flash answers: three
    upstream calls, each with the image inline, and one fetch at the image's host."""
    sim.inject(Fault.status(503), times=2)
    content = [
        {"type": "text", "text": "Read"},
        {"type": "image_url", "image_url": {"url": image_server.url}},
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="pro-then-flash", messages=[{"role": "user", "content": content}], stream=stream
    )
    if stream:
        assert read_stream(raw.parse()).finish == "stop"  # type: ignore[arg-type]
    else:
        assert raw.parse().choices[0].finish_reason == "stop"  # type: ignore[union-attr]
    assert (raw.headers["x-nemo-attempts"], raw.headers["x-nemo-fallbacks"]) == ("3", "1")
    assert len(sim.requests) == 3
    for sent in sim.requests:
        blob = sent.json()["contents"][0]["parts"][1]["inlineData"]
        assert base64.b64decode(blob["data"]).startswith(b"\x89PNG")
    assert image_server.fetches == ["/scan.png"]


def test_private_image_url_is_refused(client: openai.OpenAI, sim: SimulatedGemini) -> None:
    content = [
        {"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest/meta-data"}}
    ]
    with pytest.raises(openai.BadRequestError, match="non-public"):
        client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": content}]
        )
    assert sim.requests == []


def test_json_schema_extraction(client: openai.OpenAI, sim: SimulatedGemini) -> None:
    completion = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Invoice"},
                    {"type": "image_url", "image_url": {"url": image_url()}},
                ],
            }
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "invoice", "strict": True, "schema": INVOICE},
        },
    )
    import json

    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), INVOICE)
    config = sim.requests[-1].json()["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["propertyOrdering"] == list(INVOICE["properties"])


def test_inexpressible_schema_is_a_400(client: openai.OpenAI, sim: SimulatedGemini) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "number", "multipleOf": 0.5}}}
    with pytest.raises(openai.BadRequestError, match="multipleOf"):
        client.chat.completions.create(
            model="gemini-2.5-flash",
            messages=USER,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        )
    assert sim.requests == []


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-2.5-pro"])
def test_streaming_with_usage(client: openai.OpenAI, sim: SimulatedGemini, model: str) -> None:
    sim.cached_tokens = 2
    full = client.chat.completions.create(model=model, messages=USER)
    streamed = read_stream(
        client.chat.completions.create(
            model=model, messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert {c.model for c in streamed.chunks} == {model}
    assert all(c.choices == [] for c in streamed.chunks if c.usage is not None)
    assert streamed.text == full.choices[0].message.content
    assert streamed.finish == "stop"
    usage = streamed.usage
    assert usage is not None and usage.model_dump()["prompt_tokens"] == full.usage.prompt_tokens
    assert (
        usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 2
    )
    assert sim.requests[-1].path.endswith(":streamGenerateContent?alt=sse")


def test_stream_without_usage_request(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="gemini-2.5-flash", messages=USER, stream=True)
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("word", "streamed"), [("SIM_SAFETY", False), ("SIM_BLOCK_PROMPT", False), ("SIM_SAFETY", True)]
)
def test_safety_blocks_are_content_filter(client: openai.OpenAI, word: str, streamed: bool) -> None:
    messages = [{"role": "user", "content": f"please {word}"}]
    if streamed:
        finishes = [
            c.choices[0].finish_reason
            for c in client.chat.completions.create(
                model="gemini-2.5-flash", messages=messages, stream=True
            )
            if c.choices
        ]
        assert finishes[-1] == "content_filter"
        return
    completion = client.chat.completions.create(model="gemini-2.5-flash", messages=messages)
    assert completion.choices[0].finish_reason == "content_filter"


def test_rate_limit_with_retry_info_is_retried(client: openai.OpenAI, sim: SimulatedGemini) -> None:
    sim.inject(Fault.status(429, retry_after=0.2))
    raw = client.chat.completions.with_raw_response.create(model="gemini-2.5-flash", messages=USER)
    assert raw.headers["x-nemo-attempts"] == "2"
    gap = sim.requests[1].at - sim.requests[0].at
    assert gap >= 0.18  # the gateway waited out Google's retryDelay


def test_persistent_rate_limit_is_503_with_retry_after(
    client: openai.OpenAI, sim: SimulatedGemini
) -> None:
    error = helpers.persistent_503(
        client, sim, Fault.status(429, retry_after=7), "gemini-2.5-flash"
    )
    assert error.response.headers["retry-after"] == "7"
    assert "RESOURCE_EXHAUSTED" in error.message


def test_unavailable_then_success(client: openai.OpenAI, sim: SimulatedGemini) -> None:
    sim.inject(Fault.status(503))
    completion = client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert completion.choices[0].finish_reason == "stop"
    assert len(sim.requests) == 2


def test_invalid_argument_is_bad_request(client: openai.OpenAI, sim: SimulatedGemini) -> None:
    sim.inject(Fault.status(400))
    with pytest.raises(openai.BadRequestError, match="INVALID_ARGUMENT"):
        client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert len(sim.requests) == 1  # not retried


def test_hang_is_gateway_timeout(client: openai.OpenAI, sim: SimulatedGemini) -> None:
    sim.inject(Fault.hang(5), times=2)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert caught.value.status_code == 504


def test_cut_stream_raises_in_the_sdk(client: openai.OpenAI, sim: SimulatedGemini) -> None:
    helpers.assert_stream_breaks(client, sim, "gemini-2.5-flash", after_chunks=2)


def test_revoked_token_is_refreshed_once(
    client: openai.OpenAI, sim: SimulatedGemini, oauth: FakeOAuthServer
) -> None:
    helpers.assert_one_refresh(client, oauth, "gemini-2.5-flash")
    assert len(sim.requests) == 3  # the 401, then the retry with the new token


def test_wrong_gemini_key_fails_over_not_400(
    sim: SimulatedGemini, key_file: Path, start_gateway: Any
) -> None:
    raw = config(sim, key_file)
    raw["providers"]["gemini-sim"]["api_key"] = "wrong"
    gateway = start_gateway(raw)
    client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.InternalServerError, match="API key not valid"):
        client.chat.completions.create(model="gemini-2.5-pro", messages=USER)


class Clock:
    def __init__(self) -> None:
        self.now = 5_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_token_refresh_under_fake_clock(
    sim: SimulatedGemini, oauth: FakeOAuthServer, key_file: Path
) -> None:
    cfg = parse_config(config(sim, key_file), env={})
    adapter = build_adapter("vertex-sim", cfg.providers["vertex-sim"], cfg.settings)
    assert isinstance(adapter, GeminiAdapter) and adapter.auth.tokens is not None
    clock = Clock()
    adapter.auth.tokens.clock = clock
    await adapter.start()
    target = resolve_target(cfg.deployments[0], None)
    body = {"model": "gemini-2.5-flash", "messages": USER}

    def call() -> Any:
        return adapter.complete(adapter.prepare(target, body, {}, stream=False))

    try:
        oauth.clear()
        await asyncio.gather(*(call() for _ in range(20)))
        assert oauth.request_count == 1
        clock.now += 3000  # not yet within the refresh margin of the hour
        await asyncio.gather(*(call() for _ in range(20)))
        assert oauth.request_count == 1
        clock.now += 400  # inside the margin: one refresh shared by all 20
        await asyncio.gather(*(call() for _ in range(20)))
        assert oauth.request_count == 2
        tokens = {r.headers["authorization"] for r in sim.requests}
        assert len(tokens) == 2
    finally:
        await adapter.close()
