"""The simulated Anthropic API and Claude on Vertex AI (`SimulatedAnthropic`) driven by the
anthropic SDK (`Anthropic`, `AnthropicVertex`): answers, streams and errors must parse into the
SDK's types (`Message`, the stream events, `RateLimitError` / `InternalServerError` /
`OverloadedError`) with the values the simulator meant, and everything the SDK sends must be
accepted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema
import msgspec
import pytest

from nemorouter.testing import FakeOAuthServer, Fault, SimulatedAnthropic

from . import cases as c
from .sdk_tokens import minted_token

API_KEY = "sim-anthropic-key"
DIRECT_MODEL = "claude-sonnet-4-5-20250929"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"
USER = [{"role": "user", "content": c.PROMPT}]


@pytest.fixture(scope="module")
def sim(oauth: FakeOAuthServer) -> Iterator[SimulatedAnthropic]:
    with SimulatedAnthropic(oauth=oauth, api_key=API_KEY, cache_read_tokens=2) as s:
        yield s


@pytest.fixture(scope="module")
def token(oauth: FakeOAuthServer) -> str:
    return minted_token(oauth)


class Claude:
    """An SDK client and the model name it calls."""

    def __init__(self, client: anthropic.Anthropic | anthropic.AnthropicVertex, model: str) -> None:
        self.client = client
        self.model = model

    def create(self, **params: Any) -> Any:
        params.setdefault("max_tokens", 400)
        params.setdefault("messages", USER)
        return self.client.messages.create(model=self.model, **params)


@pytest.fixture(params=["anthropic", "anthropic-vertex"])
def claude(request: pytest.FixtureRequest, sim: SimulatedAnthropic, token: str) -> Claude:
    sim.clear()
    if request.param == "anthropic-vertex":
        client: Any = anthropic.AnthropicVertex(
            region="us-east5",
            project_id="sim-project",
            base_url=f"{sim.base_url}/v1",
            access_token=token,
            max_retries=0,
            timeout=10,
        )
        return Claude(client, VERTEX_MODEL)
    client = anthropic.Anthropic(api_key=API_KEY, base_url=sim.base_url, max_retries=0, timeout=10)
    return Claude(client, DIRECT_MODEL)


def raw_answer(sim: SimulatedAnthropic) -> dict[str, Any]:
    """The simulator's answer to the last request, as JSON (answers are deterministic)."""
    last = sim.requests[-1]
    auth = last.headers.get("authorization")
    reply = sim._answer(
        last.path.encode(), last._raw_headers, last.body, auth.encode() if auth else None, None
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply[:300]
    return msgspec.json.decode(body)


def test_plain_answer_parses_with_usage_and_stop(claude: Claude, sim: SimulatedAnthropic) -> None:
    message = claude.create()
    raw = raw_answer(sim)
    assert message.content[0].type == "text"
    assert message.content[0].text == raw["content"][0]["text"]
    assert message.stop_reason == "end_turn" and message.role == "assistant"
    assert message.usage.input_tokens == raw["usage"]["input_tokens"] > 0
    assert message.usage.output_tokens == raw["usage"]["output_tokens"] > 0
    assert message.usage.cache_read_input_tokens == raw["usage"]["cache_read_input_tokens"] == 2


def test_stream_parses_to_the_same_message(claude: Claude) -> None:
    whole = claude.create()
    with claude.client.messages.stream(model=claude.model, max_tokens=400, messages=USER) as s:
        streamed = s.get_final_message()
    assert streamed.content[0].text == whole.content[0].text
    assert streamed.stop_reason == "end_turn"
    assert streamed.usage.output_tokens == whole.usage.output_tokens
    assert streamed.usage.input_tokens == whole.usage.input_tokens


def test_media_and_system_are_accepted(claude: Claude) -> None:
    def block(kind: str, mime: str, data: bytes) -> dict[str, Any]:
        import base64

        source = {"type": "base64", "media_type": mime, "data": base64.b64encode(data).decode()}
        return {"type": kind, "source": source}

    content = [
        {"type": "text", "text": c.PROMPT},
        block("image", "image/png", c.PNG),
        block("document", "application/pdf", c.PDF),
    ]
    message = claude.create(system=c.SYSTEM, messages=[{"role": "user", "content": content}])
    assert "2 image(s)" in message.content[0].text  # both media blocks were counted


def test_structured_output_parses_and_validates(claude: Claude) -> None:
    schema = c.invoice_schema(minimum=None)  # `minimum` is outside the native subset
    message = claude.create(output_config={"format": {"type": "json_schema", "schema": schema}})
    assert message.stop_reason == "end_turn"
    jsonschema.validate(msgspec.json.decode(message.content[0].text), schema)
    with pytest.raises(anthropic.BadRequestError) as caught:  # as the API refuses it
        claude.create(output_config={"format": {"type": "json_schema", "schema": c.INVOICE_SCHEMA}})
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "minimum" in caught.value.message


def _tools() -> list[dict[str, Any]]:
    return [
        {
            "name": t["function"]["name"],
            "description": t["function"]["description"],
            "input_schema": t["function"]["parameters"],
        }
        for t in c.TOOLS
    ]


def test_forced_tool_input_validates(claude: Claude) -> None:
    message = claude.create(tools=_tools(), tool_choice={"type": "tool", "name": "get_weather"})
    assert message.stop_reason == "tool_use"
    [use] = message.content
    assert use.type == "tool_use" and use.name == "get_weather" and use.id
    jsonschema.validate(use.input, c.WEATHER_PARAMS)


def test_parallel_tool_calls_parse_with_their_inputs(claude: Claude) -> None:
    message = claude.create(tools=_tools(), tool_choice={"type": "any"})
    assert message.stop_reason == "tool_use"
    assert [block.name for block in message.content] == ["get_weather", "get_time"]
    assert len({block.id for block in message.content}) == 2
    jsonschema.validate(message.content[0].input, c.WEATHER_PARAMS)
    jsonschema.validate(message.content[1].input, c.TIME_PARAMS)
    with claude.client.messages.stream(
        model=claude.model,
        max_tokens=400,
        messages=USER,
        tools=_tools(),
        tool_choice={"type": "any"},
    ) as s:
        streamed = s.get_final_message()
    assert [b.input for b in streamed.content] == [b.input for b in message.content]


def test_tool_turns_are_accepted(claude: Claude) -> None:
    uses = [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a, _ in c.CALLS]
    results = [{"type": "tool_result", "tool_use_id": i, "content": r} for i, _, _, r in c.CALLS]
    messages = [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": uses},
        {"role": "user", "content": results},
    ]
    message = claude.create(messages=messages, tools=_tools(), tool_choice={"type": "auto"})
    assert message.content[0].type == "text"


def test_429_carries_retry_after(claude: Claude, sim: SimulatedAnthropic) -> None:
    sim.inject(Fault.status(429, retry_after=7))
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.create()
    error = caught.value
    assert error.status_code == 429 and error.response.headers["retry-after"] == "7"
    assert isinstance(error.body, dict) and error.body["error"]["type"] == "rate_limit_error"


def test_529_is_overloaded(claude: Claude, sim: SimulatedAnthropic) -> None:
    sim.inject(Fault.status(529))
    with pytest.raises(anthropic.OverloadedError) as caught:
        claude.create()
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_5xx_is_an_internal_server_error(claude: Claude, sim: SimulatedAnthropic) -> None:
    sim.inject(Fault.status(500))
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.create()
    assert caught.value.status_code == 500
    assert caught.value.body["error"]["type"] == "api_error"


def test_any_with_one_tool_is_one_call(claude: Claude) -> None:
    message = claude.create(tools=_tools()[:1], tool_choice={"type": "any"})
    [use] = message.content
    assert use.name == "get_weather" and message.stop_reason == "tool_use"
    jsonschema.validate(use.input, c.WEATHER_PARAMS)


def test_max_tokens_stop_parses(claude: Claude) -> None:
    message = claude.create(max_tokens=3)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens <= 3


def test_own_quota_429_parses(claude: Claude, sim: SimulatedAnthropic) -> None:
    """Over the simulator's own quota: Anthropic's 429 with retry-after, or on Vertex Google's
    RESOURCE_EXHAUSTED body; the SDK raises RateLimitError for both."""
    sim.rpm = 0
    try:
        with pytest.raises(anthropic.RateLimitError) as caught:
            claude.create()
    finally:
        sim.rpm = None
    body = caught.value.body
    assert isinstance(body, dict)
    if isinstance(claude.client, anthropic.AnthropicVertex):
        assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
    else:
        assert body["error"]["type"] == "rate_limit_error"
        assert caught.value.response.headers["retry-after"] == "1"
