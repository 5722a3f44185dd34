"""The Claude adapter (Anthropic API and Claude on Vertex AI) against the anthropic SDK: for every
canonical request of `cases`, the adapter's request and the one `anthropic.Anthropic` /
`anthropic.AnthropicVertex` sends for the equivalent `messages.create` call are recorded and
compared (method, path, query, auth and version headers, JSON body).

Every difference that remains is listed in `KNOWN` / `EVERY_CASE` with its reason."""

from __future__ import annotations

import base64
import copy
import functools
import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

from . import cases as c
from .compare import anthropic_normal, request_differences
from .harness import (
    ANTHROPIC_KEY,
    CLAUDE_DIRECT,
    CLAUDE_VERTEX,
    PROJECT,
    VERTEX_LOCATION,
    answer_text,
    deployment,
    send,
)
from .recorder import Recorded, Recorder


@functools.cache  # one client per module and provider: building one takes ~0.1 s
def sdk_client(kind: str, origin: str) -> anthropic.Anthropic | anthropic.AnthropicVertex:
    if kind == "anthropic-vertex":
        return anthropic.AnthropicVertex(
            region=VERTEX_LOCATION[kind],
            project_id=PROJECT,
            base_url=f"{origin}/v1",  # the SDK's default base URL ends in /v1
            access_token="static-token",
            max_retries=0,
            timeout=30,  # an explicit timeout: the SDK then takes a large max_tokens unstreamed
        )
    return anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=origin, max_retries=0, timeout=30)


def _media(kind: str, mime: str, data: bytes) -> dict[str, Any]:
    source = {"type": "base64", "media_type": mime, "data": base64.b64encode(data).decode()}
    return {"type": kind, "source": source}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _tools() -> list[dict[str, Any]]:
    return [
        {
            "name": t["function"]["name"],
            "description": t["function"]["description"],
            "input_schema": t["function"]["parameters"],
        }
        for t in c.TOOLS
    ]


def sdk_params(name: str, max_tokens: int) -> dict[str, Any]:
    """The `messages.create` arguments equivalent to case `name` (without `model`)."""
    user = {"role": "user", "content": c.PROMPT}
    params: dict[str, Any] = {"max_tokens": max_tokens, "messages": [user]}
    if name == "stream":
        params["stream"] = True
    elif name == "image":
        content = [_text(c.PROMPT), _media("image", "image/png", c.PNG)]
        params["messages"] = [{"role": "user", "content": content}]
    elif name == "images":
        content = [
            _text(c.PROMPT),
            _media("image", "image/png", c.PNG),
            _media("image", "image/jpeg", c.JPEG),
        ]
        params["messages"] = [{"role": "user", "content": content}]
    elif name == "pdf":
        content = [_text(c.PROMPT), _media("document", "application/pdf", c.PDF)]
        params["messages"] = [{"role": "user", "content": content}]
    elif name == "system":
        params["system"] = c.SYSTEM
        params["messages"] = [
            user,
            {"role": "assistant", "content": "An invoice."},
            {"role": "user", "content": "Which currency?"},
        ]
    elif name == "json_schema":  # structured outputs
        params["output_config"] = {"format": {"type": "json_schema", "schema": c.INVOICE_SCHEMA}}
    elif name == "tool_required":
        params["tools"] = _tools()
        params["tool_choice"] = {"type": "any"}
        params["messages"] = [{"role": "user", "content": "Weather and time in Paris?"}]
    elif name == "tools":
        params["tools"] = _tools()
        params["tool_choice"] = {"type": "auto"}
        uses = [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a, _ in c.CALLS]
        results = [
            {"type": "tool_result", "tool_use_id": i, "content": r} for i, _, _, r in c.CALLS
        ]
        params["messages"] = [
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": uses},
            {"role": "user", "content": results},  # parallel calls are answered in one turn
        ]
    elif name == "sampling":
        # Claude has no penalties nor seed, and anthropic 2.17.0's messages.create takes no
        # temperature, top_p or top_k any more: the call names none of them
        params |= {"stop_sequences": ["END", "STOP"], "max_tokens": 300}
    elif name != "text":
        raise KeyError(name)
    return params


def sdk_request(kind: str, recorder: Recorder, name: str, max_tokens: int) -> Recorded:
    client = sdk_client(kind, recorder.origin)
    model = CLAUDE_VERTEX if kind == "anthropic-vertex" else CLAUDE_DIRECT
    params = sdk_params(name, max_tokens)
    answer = client.messages.create(model=model, **params)
    if params.get("stream"):
        assert [e.type for e in answer][-1] == "message_stop"
    else:
        assert answer.stop_reason in ("end_turn", "tool_use")
    return recorder.take()


def header_view(kind: str, request: Recorded) -> dict[str, Any]:
    """The headers that carry meaning upstream: content type, credential, API version."""
    headers = request.headers
    bearer = headers.get("authorization", "")
    view: dict[str, Any] = {"content-type": headers.get("content-type")}
    if kind == "anthropic-vertex":
        view["authorization"] = bearer.startswith("Bearer ")
        return view
    view["credential"] = headers.get("x-api-key") or bearer.removeprefix("Bearer ")
    view["auth-scheme"] = "x-api-key" if "x-api-key" in headers else "bearer"
    view["anthropic-version"] = headers.get("anthropic-version")
    return view


_SDK_VERSION = "2026-10-21"  # anthropic 2.17.0 _constants.ANTHROPIC_API_VERSION
_PINNED = (
    f"the adapter pins the API version its answer parsing was written against; anthropic 2.17.0"
    f" sends its newest ({_SDK_VERSION}); older versions stay served"
    " (https://docs.anthropic.com/en/api/versioning)"
)
_TOOL_FORMAT = (
    "the catalog has claude-sonnet-4-5 answer a json_schema response format through one forced"
    " tool (models.yaml structured_output: tool); the SDK's equivalent is structured outputs"
    " (output_config.format, types.OutputConfigParam): see test_native_structured_output"
)
_STRUCTURED = {"/output_config": _TOOL_FORMAT, "/tools": _TOOL_FORMAT, "/tool_choice": _TOOL_FORMAT}
_SAMPLING = {
    "/temperature": "the adapter passes temperature on (alone: claude-sonnet-4-5 refuses it with"
    " top_p, models.yaml refuses top_p_with_temperature, so top_p is dropped); anthropic 2.17.0's"
    " messages.create has no temperature parameter (resources/messages/messages.py)",
}
KNOWN: dict[tuple[str, str], dict[str, str]] = {
    **{(kind, "sampling"): _SAMPLING for kind in ("anthropic", "anthropic-vertex")},
    **{(kind, "json_schema"): _STRUCTURED for kind in ("anthropic", "anthropic-vertex")},
}
EVERY_CASE: dict[str, dict[str, str]] = {
    "anthropic": {
        "header:anthropic-version": _PINNED,
        "header:auth-scheme": "the adapter sends the key as x-api-key (the documented header,"
        " https://docs.anthropic.com/en/api/overview); anthropic 2.17.0 sends it as"
        " Authorization: Bearer (_client.Anthropic._api_key_auth); the key is the same",
    },
    "anthropic-vertex": {"/anthropic_version": _PINNED.replace("the API", "Vertex's API")},
}
PROVIDERS = ("anthropic", "anthropic-vertex")


@pytest.mark.parametrize("name", list(c.CASES))
@pytest.mark.parametrize("kind", PROVIDERS)
async def test_claude_request_matches_sdk(
    kind: str, name: str, recorder: Recorder, key_file: Path
) -> None:
    result = await send(kind, recorder.origin, key_file, c.CASES[name])
    assert answer_text(result) in ("ok", "{}")  # the canned answer, read by the adapter
    ours = recorder.take()
    # Messages requires max_tokens: the equivalent call names the gateway's default for a
    # request without one (the target's, bounded without streaming: types/target.py)
    streamed = c.CASES[name].get("stream") is True
    max_tokens = deployment(kind, recorder.origin, key_file).target.default_max_tokens(streamed)
    theirs = sdk_request(kind, recorder, name, max_tokens)
    found = request_differences(ours, theirs, anthropic_normal, lambda r: header_view(kind, r))
    expected = {**KNOWN.get((kind, name), {}), **EVERY_CASE[kind]}
    assert found == set(expected), json.dumps([ours.body, theirs.body])[:4000]


NATIVE = (
    "claude-opus-4-7",
    "claude-opus-4-7",
)  # models.yaml structured_output: {anthropic: native}


async def test_native_structured_output(recorder: Recorder, key_file: Path) -> None:
    """Where the catalog says the Claude API answers json_schema natively, the adapter's request
    is the SDK's structured-outputs call (output_config.format)."""
    # without `minimum`, outside the native subset (providers/anthropic_schema.py): all native
    schema = copy.deepcopy(c.INVOICE_SCHEMA)
    del schema["$defs"]["line"]["properties"]["amount"]["minimum"]
    spec = {"name": "invoice", "schema": schema, "strict": True}
    case = {
        **c.CASES["json_schema"],
        "response_format": {"type": "json_schema", "json_schema": spec},
    }
    await send("anthropic", recorder.origin, key_file, case, NATIVE)
    ours = recorder.take()
    dep = deployment("anthropic", recorder.origin, key_file, NATIVE)
    params = sdk_params("json_schema", dep.target.default_max_tokens(False))
    params["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    client = sdk_client("anthropic", recorder.origin)
    client.messages.create(model=NATIVE[1], **params)
    theirs = recorder.take()
    found = request_differences(
        ours, theirs, anthropic_normal, lambda r: header_view("anthropic", r)
    )
    assert found == set(EVERY_CASE["anthropic"]), json.dumps([ours.body, theirs.body])[:4000]
