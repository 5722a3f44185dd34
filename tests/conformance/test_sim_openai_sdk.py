"""The simulated OpenAI-compatible provider (`SimulatedProvider`) driven by the openai SDK: answers,
streams and errors must parse into the SDK's types (`ChatCompletion`, `ChatCompletionChunk`,
`RateLimitError`, `InternalServerError`) with the values the simulator meant."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest

from nemorouter.testing import Fault, SimulatedProvider

from . import cases as c

API_KEY = "sim-openai-key"
MODEL = "sim-small"


@pytest.fixture(scope="module")
def sim_module() -> Iterator[SimulatedProvider]:
    with SimulatedProvider(api_key=API_KEY) as s:
        yield s


@pytest.fixture
def sim(sim_module: SimulatedProvider) -> SimulatedProvider:
    sim_module.clear()
    return sim_module


@pytest.fixture
def client(sim: SimulatedProvider) -> openai.OpenAI:
    return openai.OpenAI(api_key=API_KEY, base_url=sim.base_url, max_retries=0, timeout=10)


def create(client: openai.OpenAI, name: str, **extra: Any) -> Any:
    return client.chat.completions.create(model=MODEL, **{**c.CASES[name], **extra})


def test_plain_answer_parses_with_usage(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, **c.CASES["text"])
    sent = json.loads(raw.content)
    answer = raw.parse()
    assert answer.choices[0].message.content == sent["choices"][0]["message"]["content"]
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == sent["usage"]["prompt_tokens"] > 0
    assert answer.usage.completion_tokens == sent["usage"]["completion_tokens"] > 0
    assert answer.usage.total_tokens == sent["usage"]["total_tokens"]


def test_stream_parses_to_the_same_answer(client: openai.OpenAI) -> None:
    whole = create(client, "text")
    chunks = list(create(client, "stream", stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == whole.choices[0].message.content
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].usage == whole.usage


def test_media_are_accepted(client: openai.OpenAI) -> None:
    answer = create(client, "images")
    assert "2 image(s)" in answer.choices[0].message.content


def test_json_schema_answer_parses_and_validates(client: openai.OpenAI) -> None:
    answer = create(client, "json_schema")
    jsonschema.validate(json.loads(answer.choices[0].message.content), c.INVOICE_SCHEMA)


def test_tool_turns_are_accepted(client: openai.OpenAI) -> None:
    answer = create(client, "tools")
    assert answer.choices[0].message.content


def test_required_tools_are_parallel_calls(client: openai.OpenAI) -> None:
    answer = create(client, "text", tools=c.TOOLS, tool_choice="required")
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [call.function.name for call in calls] == ["get_weather", "get_time"]
    assert len({call.id for call in calls}) == 2
    jsonschema.validate(json.loads(calls[0].function.arguments), c.WEATHER_PARAMS)
    jsonschema.validate(json.loads(calls[1].function.arguments), c.TIME_PARAMS)
    chunks = list(create(client, "stream", tools=c.TOOLS, tool_choice="required"))
    streamed: dict[int, str] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or () if chunk.choices else ():
            streamed[delta.index] = streamed.get(delta.index, "") + (delta.function.arguments or "")
    assert [streamed[i] for i in sorted(streamed)] == [call.function.arguments for call in calls]
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "tool_calls"


def test_429_carries_retry_after(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.inject(Fault.status(429, retry_after=7, retry_after_ms=7000))
    with pytest.raises(openai.RateLimitError) as caught:
        create(client, "text")
    headers = caught.value.response.headers
    assert headers["retry-after"] == "7" and headers["retry-after-ms"] == "7000"
    assert caught.value.code == "rate_limit_exceeded"


def test_5xx_is_an_internal_server_error(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.inject(Fault.status(503))
    with pytest.raises(openai.InternalServerError) as caught:
        create(client, "text")
    assert caught.value.status_code == 503 and caught.value.type == "server_error"


def test_length_finish_parses(client: openai.OpenAI) -> None:
    answer = create(client, "text", max_tokens=3)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None and answer.usage.completion_tokens <= 3
