"""The simulated Gemini API and Vertex AI (`SimulatedGemini`) driven by google-genai: every answer,
stream and error the simulator sends must parse into the SDK's types (`GenerateContentResponse`,
`errors.ClientError` / `errors.ServerError`) with the values the simulator meant (text, finish
reason, usage counts, function calls, retry hints), and everything the SDK sends must be accepted.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import google.oauth2.credentials
import jsonschema
import msgspec
import pytest
from google import genai
from google.genai import errors, types

from nemorouter.testing import FakeOAuthServer, Fault, SimulatedGemini

from . import cases as c
from .sdk_tokens import minted_token

API_KEY = "sim-gemini-key"
MODEL = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def sim(oauth: FakeOAuthServer) -> Iterator[SimulatedGemini]:
    with SimulatedGemini(oauth=oauth, api_key=API_KEY, cached_tokens=2, thoughts_tokens=5) as s:
        yield s


@pytest.fixture(scope="module")
def token(oauth: FakeOAuthServer) -> str:
    return minted_token(oauth)


@pytest.fixture(params=["gemini", "vertex"])
def client(request: pytest.FixtureRequest, sim: SimulatedGemini, token: str) -> genai.Client:
    sim.clear()
    options = types.HttpOptions(base_url=sim.base_url, timeout=10_000)
    if request.param == "vertex":
        return genai.Client(
            vertexai=True,
            project="sim-project",
            location="us-central1",
            credentials=google.oauth2.credentials.Credentials(token),
            http_options=options,
        )
    return genai.Client(api_key=API_KEY, http_options=options)


def raw_answer(sim: SimulatedGemini) -> dict[str, Any]:
    """The simulator's answer to the last request, as JSON (the answer is deterministic: the
    same body answered again, through the simulator's own code, minus the recording)."""
    last = sim.requests[-1]
    path = last.path.replace(":streamGenerateContent?alt=sse", ":generateContent")
    reply = sim._answer(path.encode(), last._raw_headers, last.body, _auth(last), None)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply[:300]
    return msgspec.json.decode(body)


def _auth(request: Any) -> bytes | None:
    value = request.headers.get("authorization")
    return value.encode() if value else None


def test_plain_answer_parses_with_usage_and_finish(
    client: genai.Client, sim: SimulatedGemini
) -> None:
    answer = client.models.generate_content(model=MODEL, contents=c.PROMPT)
    raw = raw_answer(sim)
    candidate = raw["candidates"][0]
    assert answer.text == candidate["content"]["parts"][0]["text"]
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP
    usage, sent = answer.usage_metadata, raw["usageMetadata"]
    assert usage.prompt_token_count == sent["promptTokenCount"] > 0
    assert usage.candidates_token_count == sent["candidatesTokenCount"] > 0
    assert usage.cached_content_token_count == sent["cachedContentTokenCount"] == 2
    assert usage.thoughts_token_count == sent["thoughtsTokenCount"] == 5
    assert usage.total_token_count == sent["totalTokenCount"]
    assert answer.model_version == MODEL and answer.response_id


def test_stream_parses_to_the_same_answer(client: genai.Client, sim: SimulatedGemini) -> None:
    whole = client.models.generate_content(model=MODEL, contents=c.PROMPT)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=c.PROMPT))
    assert len(chunks) > 1
    assert "".join(chunk.text or "" for chunk in chunks) == whole.text
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.candidates_token_count == whole.usage_metadata.candidates_token_count
    assert last.usage_metadata.prompt_token_count == whole.usage_metadata.prompt_token_count


def test_media_and_system_are_accepted(client: genai.Client) -> None:
    config = types.GenerateContentConfig(system_instruction=c.SYSTEM, max_output_tokens=400)
    contents = [
        c.PROMPT,
        types.Part.from_bytes(data=c.PNG, mime_type="image/png"),
        types.Part.from_bytes(data=c.PDF, mime_type="application/pdf"),
    ]
    answer = client.models.generate_content(model=MODEL, contents=contents, config=config)
    assert "2 image(s)" in (answer.text or "")  # the simulator counted both media parts


def test_json_schema_answer_parses_and_validates(client: genai.Client) -> None:
    schema = c.invoice_schema(format="date-time")  # the API's STRING formats: enum, date-time
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=copy.deepcopy(schema)
    )
    answer = client.models.generate_content(model=MODEL, contents=c.PROMPT, config=config)
    assert isinstance(answer.parsed, dict)
    jsonschema.validate(answer.parsed, schema)
    refused = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=copy.deepcopy(c.INVOICE_SCHEMA)
    )
    with pytest.raises(errors.ClientError) as caught:  # format "date", as the API refuses it
        client.models.generate_content(model=MODEL, contents=c.PROMPT, config=refused)
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "date-time" in (caught.value.message or "")


def _declarations() -> list[types.FunctionDeclaration]:
    return [
        types.FunctionDeclaration(
            name=t["function"]["name"],
            description=t["function"]["description"],
            parameters_json_schema=copy.deepcopy(t["function"]["parameters"]),
        )
        for t in c.TOOLS
    ]


def test_tool_turns_are_accepted(client: genai.Client) -> None:
    calls = [types.Part.from_function_call(name=n, args=a) for _, n, a, _ in c.CALLS]
    results = [
        types.Part.from_function_response(name=n, response={"output": r}) for _, n, _, r in c.CALLS
    ]
    contents = [
        types.Content(role="user", parts=[types.Part(text="Weather and time in Paris?")]),
        types.Content(role="model", parts=calls),
        types.Content(role="user", parts=results),
    ]
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=_declarations())])
    answer = client.models.generate_content(model=MODEL, contents=contents, config=config)
    assert answer.text


def test_forced_parallel_calls_parse_with_their_args(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=_declarations())],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode="ANY")
        ),
    )
    answer = client.models.generate_content(model=MODEL, contents=c.PROMPT, config=config)
    calls = answer.function_calls
    assert [call.name for call in calls] == ["get_weather", "get_time"]
    jsonschema.validate(calls[0].args, c.WEATHER_PARAMS)
    jsonschema.validate(calls[1].args, c.TIME_PARAMS)
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP


def test_429_carries_retry_info(client: genai.Client, sim: SimulatedGemini) -> None:
    sim.inject(Fault.status(429, retry_after=7))
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents=c.PROMPT)
    error = caught.value
    assert error.code == 429 and error.status == "RESOURCE_EXHAUSTED"
    details = error.details["error"]["details"]
    assert details == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]


def test_5xx_is_a_server_error(client: genai.Client, sim: SimulatedGemini) -> None:
    sim.inject(Fault.status(503))
    with pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(model=MODEL, contents=c.PROMPT)
    assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE"
    assert caught.value.message


def test_stream_error_before_first_event(client: genai.Client, sim: SimulatedGemini) -> None:
    sim.inject(Fault.status(500))
    with pytest.raises(errors.ServerError) as caught:
        list(client.models.generate_content_stream(model=MODEL, contents=c.PROMPT))
    assert caught.value.code == 500 and caught.value.status == "INTERNAL"


def test_raw_json_schema_answer_validates(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=copy.deepcopy(c.INVOICE_SCHEMA)
    )
    answer = client.models.generate_content(model=MODEL, contents=c.PROMPT, config=config)
    jsonschema.validate(json.loads(answer.text or ""), c.INVOICE_SCHEMA)


def test_one_allowed_function_is_called_and_streams(client: genai.Client) -> None:
    calling = types.FunctionCallingConfig(mode="ANY", allowed_function_names=["get_time"])
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=_declarations())],
        tool_config=types.ToolConfig(function_calling_config=calling),
    )
    whole = client.models.generate_content(model=MODEL, contents=c.PROMPT, config=config)
    assert [call.name for call in whole.function_calls] == ["get_time"]
    chunks = list(
        client.models.generate_content_stream(model=MODEL, contents=c.PROMPT, config=config)
    )
    streamed = [call for chunk in chunks for call in chunk.function_calls or ()]
    assert [(f.name, f.args) for f in streamed] == [(f.name, f.args) for f in whole.function_calls]


def test_length_safety_and_block_outcomes_parse(client: genai.Client) -> None:
    short = types.GenerateContentConfig(max_output_tokens=3)
    cut = client.models.generate_content(model=MODEL, contents=c.PROMPT, config=short)
    assert cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert cut.usage_metadata.candidates_token_count <= 3
    unsafe = client.models.generate_content(model=MODEL, contents="SIM_SAFETY please")
    candidate = unsafe.candidates[0]
    assert candidate.finish_reason == types.FinishReason.SAFETY
    [rating] = candidate.safety_ratings
    assert rating.category == types.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT
    assert rating.probability == types.HarmProbability.HIGH and rating.blocked is True
    blocked = client.models.generate_content(model=MODEL, contents="SIM_BLOCK_PROMPT please")
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    assert not blocked.candidates and blocked.text is None
