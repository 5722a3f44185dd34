"""The Gemini adapter (Gemini API and Vertex AI) against google-genai: for every canonical
request of `cases`, the adapter's request and the one google-genai sends for the equivalent call
are recorded and compared (method, path, query, auth and content headers, JSON body).

Every difference that remains is listed in `KNOWN` with its reason; anything else fails."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import google.oauth2.credentials
import pytest
from google import genai
from google.genai import types

from . import cases as c
from .compare import gemini_normal, request_differences
from .harness import GEMINI_KEY, GEMINI_MODEL, PROJECT, VERTEX_LOCATION, answer_text, send
from .recorder import Recorded, Recorder


@functools.cache  # one client per module and provider: building one takes ~0.1 s
def sdk_client(kind: str, origin: str) -> genai.Client:
    options = types.HttpOptions(base_url=origin)
    if kind == "vertex":
        return genai.Client(
            vertexai=True,
            project=PROJECT,
            location=VERTEX_LOCATION["vertex"],
            credentials=google.oauth2.credentials.Credentials("static-token"),
            http_options=options,
        )
    return genai.Client(api_key=GEMINI_KEY, http_options=options)


def _user(*parts: types.Part) -> types.Content:
    return types.Content(role="user", parts=list(parts))


def _declarations() -> list[types.FunctionDeclaration]:
    return [
        types.FunctionDeclaration(
            name=t["function"]["name"],
            description=t["function"]["description"],
            parameters=copy.deepcopy(t["function"]["parameters"]),
        )
        for t in c.TOOLS
    ]


def sdk_call(name: str) -> tuple[list[types.Content], types.GenerateContentConfig | None, bool]:
    """(contents, config, streamed): the google-genai call equivalent to case `name`."""
    text = types.Part(text=c.PROMPT)
    if name in ("text", "stream"):
        return [_user(text)], None, name == "stream"
    if name == "image":
        return [_user(text, types.Part.from_bytes(data=c.PNG, mime_type="image/png"))], None, False
    if name == "images":
        png = types.Part.from_bytes(data=c.PNG, mime_type="image/png")
        jpeg = types.Part.from_bytes(data=c.JPEG, mime_type="image/jpeg")
        return [_user(text, png, jpeg)], None, False
    if name == "pdf":
        pdf = types.Part.from_bytes(data=c.PDF, mime_type="application/pdf")
        return [_user(text, pdf)], None, False
    if name == "system":
        contents = [
            _user(text),
            types.Content(role="model", parts=[types.Part(text="An invoice.")]),
            _user(types.Part(text="Which currency?")),
        ]
        return contents, types.GenerateContentConfig(system_instruction=c.SYSTEM), False
    if name == "json_schema":
        config = types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=copy.deepcopy(c.INVOICE_SCHEMA)
        )
        return [_user(text)], config, False
    if name == "tools":
        declarations = _declarations()
        calls = [types.Part.from_function_call(name=n, args=a) for _, n, a, _ in c.CALLS]
        results = [
            types.Part.from_function_response(name=n, response={"output": json.loads(r)})
            for _, n, _, r in c.CALLS
        ]
        contents = [
            _user(types.Part(text="Weather and time in Paris?")),
            types.Content(role="model", parts=calls),
            _user(*results),  # parallel calls are answered in one turn
        ]
        config = types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=declarations)],
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(mode="AUTO")
            ),
        )
        return contents, config, False
    if name == "tool_required":
        contents = [_user(types.Part(text="Weather and time in Paris?"))]
        config = types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=_declarations())],
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(mode="ANY")
            ),
        )
        return contents, config, False
    if name == "sampling":
        config = types.GenerateContentConfig(
            temperature=0.2,
            top_p=0.9,
            stop_sequences=["END", "STOP"],
            presence_penalty=0.5,
            frequency_penalty=0.25,
            max_output_tokens=300,
            seed=7,
        )
        return [_user(text)], config, False
    raise KeyError(name)


def sdk_request(kind: str, recorder: Recorder, name: str) -> Recorded:
    contents, config, streamed = sdk_call(name)
    client = sdk_client(kind, recorder.origin)
    if streamed:
        for _ in client.models.generate_content_stream(
            model=GEMINI_MODEL, contents=contents, config=config
        ):
            pass
    else:
        answer = client.models.generate_content(
            model=GEMINI_MODEL, contents=contents, config=config
        )
        assert answer.text == "ok"
    return recorder.take()


def header_view(kind: str, request: Recorded) -> dict[str, Any]:
    """The headers that carry meaning upstream: content type and credentials."""
    headers = request.headers
    view: dict[str, Any] = {"content-type": headers.get("content-type")}
    if kind == "vertex":
        view["authorization"] = headers.get("authorization", "").startswith("Bearer ")
    else:
        view["x-goog-api-key"] = headers.get("x-goog-api-key")
    return view


# What remains different, and why: (provider kind, case) -> {difference: reason}, where a
# difference is a JSON path of the body, "api-version", "path", "query" or "header:<name>".
_ADDITIONAL = (
    "the adapter drops additionalProperties: false (Gemini's structured output holds only the"
    " declared properties anyway); google-genai sends it (types.Schema.additional_properties)"
)
_ORDERING = (
    "the adapter keeps the client's property order (propertyOrdering) in tool parameters as in"
    " response schemas; google-genai adds it to response schemas only (a Schema field either way)"
)
_TOOL_ORDER = {
    "/tools/0/functionDeclarations/0/parameters/propertyOrdering": _ORDERING,
    "/tools/0/functionDeclarations/1/parameters/propertyOrdering": _ORDERING,
}
_RESULT = (
    "an OpenAI tool result is text: the adapter sends it as response {content: text}, the whole"
    " response being the output when it has neither `output` nor `error`"
    " (types.FunctionResponse.response); the SDK call sends the parsed result under `output`"
)
_TOOL_TURNS = {
    "/contents/1/parts/0/thoughtSignature": "replayed calls carry no signature from an OpenAI"
    " client: on Gemini 3 the adapter sends Google's documented stand-in on the first call"
    " (ai.google.dev/gemini-api/docs/thought-signatures FAQ); an SDK user replays the model's own",
    **{
        f"/contents/2/parts/{i}/functionResponse/response/{k}": _RESULT
        for i in (0, 1)
        for k in ("content", "output")
    },
    **_TOOL_ORDER,
}
_SCHEMA = {
    "/generationConfig/responseSchema/additionalProperties": _ADDITIONAL,
    "/generationConfig/responseSchema/properties/vendor/additionalProperties": _ADDITIONAL,
    "/generationConfig/responseSchema/properties/lines/items/additionalProperties": _ADDITIONAL,
    "/generationConfig/responseSchema/properties/issued/format": "the API takes only 'enum' and"
    " 'date-time' as STRING formats, so the adapter drops 'date' (google/adk-python"
    " _sanitize_schema_formats_for_gemini); google-genai passes it through",
}
_PENALTIES = (
    "Gemini 3 models take no penalties (models.yaml refuses, after LiteLLM"
    " _supports_penalty_parameters): the adapter drops them; the SDK call sends what it is given"
)
KNOWN: dict[tuple[str, str], dict[str, str]] = {
    **{(kind, "tools"): _TOOL_TURNS for kind in ("gemini", "vertex")},
    **{(kind, "tool_required"): _TOOL_ORDER for kind in ("gemini", "vertex")},
    **{(kind, "json_schema"): _SCHEMA for kind in ("gemini", "vertex")},
    **{
        (kind, "sampling"): {
            "/generationConfig/presencePenalty": _PENALTIES,
            "/generationConfig/frequencyPenalty": _PENALTIES,
        }
        for kind in ("gemini", "vertex")
    },
}
EVERY_CASE: dict[str, dict[str, str]] = {
    "gemini": {
        "api-version": "the adapter calls v1beta (every preview field); google-genai 3.6.1 calls v1"
        " by default (_api_client.GOOGLE_AI_API_DEFAULT_VERSION), v1beta with"
        " GOOGLE_GENAI_API_VERSION=beta; both versions serve generateContent"
    },
    "vertex": {
        "api-version": "the adapter calls the GA v1; google-genai calls v1beta1 by default"
        " (_api_client.BaseApiClient); both serve generateContent with the same body"
    },
}

PROVIDERS = ("gemini", "vertex")


@pytest.mark.parametrize("name", list(c.CASES))
@pytest.mark.parametrize("kind", PROVIDERS)
async def test_gemini_request_matches_sdk(
    kind: str, name: str, recorder: Recorder, key_file: Path
) -> None:
    result = await send(kind, recorder.origin, key_file, c.CASES[name])
    assert answer_text(result) in ("ok", "{}")  # the canned answer, read by the adapter
    ours = recorder.take()
    theirs = sdk_request(kind, recorder, name)
    found = request_differences(
        ours, theirs, gemini_normal, lambda r: header_view(kind, r), version=_split
    )
    expected = {**KNOWN.get((kind, name), {}), **EVERY_CASE[kind]}
    assert found == set(expected), json.dumps([ours.body, theirs.body])[:4000]


def _split(path: str) -> tuple[str, str]:
    """(API version, the rest) of `/v1beta/models/...`."""
    _, version, rest = path.split("/", 2)
    return version, rest
