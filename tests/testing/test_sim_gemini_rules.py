"""What the simulated Gemini/Vertex provider enforces about tool turns, thought signatures,
schema formats and empty texts, and the signed function calls it answers with, over raw HTTP."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from nemorouter.testing import SimulatedGemini

VERTEX = "/v1/projects/p/locations/us-central1/publishers/google/models/"
API = "/v1beta/models/"
TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": name,
                "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
            }
            for name in ("weather", "time")
        ]
    }
]
FORCED = {"functionCallingConfig": {"mode": "ANY"}}
ASK = {"role": "user", "parts": [{"text": "weather and time in Oslo?"}]}


@pytest.fixture(scope="module")
def gemini() -> Iterator[SimulatedGemini]:
    with SimulatedGemini() as sim:
        yield sim


def post(sim: SimulatedGemini, path: str, body: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data)


def call_turn(signature: str | None, calls: int = 2) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"functionCall": {"name": name, "args": {"city": "Oslo"}}}
        for name in ("weather", "time")[:calls]
    ]
    if signature is not None:
        parts[0]["thoughtSignature"] = signature
    return {"role": "model", "parts": parts}


def answers(n: int) -> dict[str, Any]:
    parts = [
        {"functionResponse": {"name": name, "response": {"content": "ok"}}}
        for name in ("weather", "time")[:n]
    ]
    return {"role": "user", "parts": parts}


def refused(sim: SimulatedGemini, path: str, body: dict[str, Any]) -> str:
    status, data = post(sim, path, body)
    assert status == 400 and data["error"]["status"] == "INVALID_ARGUMENT"
    return data["error"]["message"]


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-3-flash-preview"])
def test_forced_call_is_parallel_and_signed_on_gemini_3(
    gemini: SimulatedGemini, model: str
) -> None:
    body = {"contents": [ASK], "tools": TOOLS, "toolConfig": FORCED}
    status, data = post(gemini, f"{VERTEX}{model}:generateContent", body)
    assert status == 200
    parts = data["candidates"][0]["content"]["parts"]
    assert [p["functionCall"]["name"] for p in parts] == ["weather", "time"]
    assert all(isinstance(p["functionCall"]["args"]["city"], str) for p in parts)
    signed = [p.get("thoughtSignature") for p in parts]
    assert (signed[0] is not None) == model.startswith("gemini-3") and signed[1] is None
    # the answered turn, sent back whole, gets a text answer
    body["contents"] = [ASK, data["candidates"][0]["content"], answers(2)]
    status, data = post(gemini, f"{VERTEX}{model}:generateContent", body)
    assert status == 200 and "text" in data["candidates"][0]["content"]["parts"][0]


def test_stream_sends_one_call_per_event(gemini: SimulatedGemini) -> None:
    body = {"contents": [ASK], "tools": TOOLS, "toolConfig": FORCED}
    conn = http.client.HTTPConnection("127.0.0.1", gemini.port, timeout=5)
    path = f"{API}gemini-3-flash-preview:streamGenerateContent?alt=sse"
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    raw = conn.getresponse().read().decode()
    conn.close()
    events = [json.loads(line[6:]) for line in raw.split("\r\n") if line.startswith("data: ")]
    parts = [e["candidates"][0]["content"]["parts"] for e in events]
    assert [len(p) for p in parts] == [1, 1]
    assert "thoughtSignature" in parts[0][0] and "thoughtSignature" not in parts[1][0]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize("path", [VERTEX, API])
def test_function_responses_must_match_the_calls(gemini: SimulatedGemini, path: str) -> None:
    split = [ASK, call_turn(None), answers(1), answers(1)]  # one content per tool result
    message = refused(gemini, f"{path}gemini-2.5-flash:generateContent", {"contents": split})
    assert "number of function response parts is equal to the number of function call" in message


def test_gemini_3_needs_the_signature_of_the_current_turn(gemini: SimulatedGemini) -> None:
    unsigned = {"contents": [ASK, call_turn(None), answers(2)]}
    vertex = refused(gemini, f"{VERTEX}gemini-3-flash-preview:generateContent", unsigned)
    assert "`default_api:weather` in the 2. content block is missing a `thought_signature`" in (
        vertex
    )
    api = refused(gemini, f"{API}gemini-3-pro-preview:generateContent", unsigned)
    assert "Function call is missing a thought_signature" in api
    forged = {"contents": [ASK, call_turn("bm90IGEgc2lnbmF0dXJl"), answers(2)]}
    assert "not valid" in refused(gemini, f"{API}gemini-3-pro-preview:generateContent", forged)
    # the documented stand-ins pass; older turns and Gemini 2.5 are not checked
    for dummy in ("skip_thought_signature_validator", "context_engineering_is_the_way_to_go"):
        body = {"contents": [ASK, call_turn(dummy), answers(2)]}
        assert post(gemini, f"{API}gemini-3-pro-preview:generateContent", body)[0] == 200
    earlier = {"contents": [ASK, call_turn(None), answers(2), ASK]}
    assert post(gemini, f"{API}gemini-3-pro-preview:generateContent", earlier)[0] == 200
    assert post(gemini, f"{API}gemini-2.5-pro:generateContent", unsigned)[0] == 200


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "STRING", "format": "email"}, "only 'enum' and 'date-time'"),
        ({"type": "NUMBER", "format": "double"}, '"int32" and "int64"'),
    ],
)
def test_schema_formats_gemini_rejects(
    gemini: SimulatedGemini, schema: dict[str, Any], words: str
) -> None:
    wrapped = {"type": "OBJECT", "properties": {"x": schema}}
    config = {"responseMimeType": "application/json", "responseSchema": wrapped}
    message = refused(
        gemini,
        f"{API}gemini-2.5-flash:generateContent",
        {"contents": [ASK], "generationConfig": config},
    )
    assert words in message and "response_schema.properties[x].format" in message
    tools = [{"functionDeclarations": [{"name": "f", "parameters": wrapped}]}]
    message = refused(
        gemini, f"{API}gemini-2.5-flash:generateContent", {"contents": [ASK], "tools": tools}
    )
    assert words in message and "function_declarations[0].parameters" in message


def test_vertex_refuses_empty_text_parts(gemini: SimulatedGemini) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": ""}, {"text": "Hi"}]}]}
    message = refused(gemini, f"{VERTEX}gemini-2.5-flash:generateContent", body)
    assert "empty text parameter" in message
