"""The simulated Gemini/Vertex provider and fake OAuth endpoint, over raw HTTP."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from nemorouter.testing import FakeOAuthServer, Fault, SimulatedGemini

VERTEX = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash"
API = "/v1beta/models/gemini-2.5-pro"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


@pytest.fixture(scope="module")
def gemini() -> Iterator[SimulatedGemini]:
    with SimulatedGemini() as sim:
        yield sim


def post(
    sim: SimulatedGemini, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request(
        "POST", path, json.dumps(body), {"content-type": "application/json", **(headers or {})}
    )
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def test_generate_content_shape(gemini: SimulatedGemini) -> None:
    status, _, raw = post(gemini, f"{VERTEX}:generateContent", BODY)
    assert status == 200
    data = json.loads(raw)
    candidate = data["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["role"] == "model"
    assert candidate["content"]["parts"][0]["text"].startswith(
        "Simulated answer from gemini-2.5-flash"
    )
    usage = data["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]


def test_stream_is_sse_only_with_alt_sse(gemini: SimulatedGemini) -> None:
    status, headers, raw = post(gemini, f"{API}:streamGenerateContent?alt=sse", BODY)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    events = [
        json.loads(line[6:]) for line in raw.decode().split("\r\n") if line.startswith("data: ")
    ]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "candidatesTokenCount" in events[-1]["usageMetadata"]
    status, headers, raw = post(gemini, f"{API}:streamGenerateContent", BODY)
    assert headers["content-type"] == "application/json" and isinstance(json.loads(raw), list)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({**BODY, "model": "x"}, 'Unknown name "model"'),
        ({"contents": []}, "empty contents"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "valid role"),
        # proto JSON reads snake_case as the camelCase field: max_tokens is maxTokens, unknown
        ({**BODY, "generationConfig": {"max_tokens": 5}}, 'Unknown name "maxTokens"'),
        (
            {
                **BODY,
                "generationConfig": {
                    "responseMimeType": "application/json",
                    "responseSchema": {
                        "type": "OBJECT",
                        "properties": {"a": {"type": "STRING"}},
                        "uniqueItems": True,
                    },
                },
            },
            "uniqueItems",
        ),
    ],
)
def test_invalid_bodies_are_google_400s(gemini: SimulatedGemini, body: Any, words: str) -> None:
    status, _, raw = post(gemini, f"{VERTEX}:generateContent", body)
    error = json.loads(raw)["error"]
    assert status == 400 and error["status"] == "INVALID_ARGUMENT" and words in error["message"]


def test_rate_limit_fault_carries_retry_info(gemini: SimulatedGemini) -> None:
    gemini.inject(Fault.status(429, retry_after=12))
    status, headers, raw = post(gemini, f"{VERTEX}:generateContent", BODY)
    error = json.loads(raw)["error"]
    assert status == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"} in error[
        "details"
    ]
    assert "retry-after" not in headers


def test_api_key_and_oauth_checks() -> None:
    with FakeOAuthServer() as oauth, SimulatedGemini(oauth=oauth, api_key="k") as sim:
        assert post(sim, f"{API}:generateContent", BODY, {"x-goog-api-key": "k"})[0] == 200
        status, _, raw = post(sim, f"{API}:generateContent", BODY, {"x-goog-api-key": "bad"})
        assert status == 400 and b"API_KEY_INVALID" in raw
        status, _, raw = post(
            sim, f"{VERTEX}:generateContent", BODY, {"authorization": "Bearer nope"}
        )
        assert status == 401 and json.loads(raw)["error"]["status"] == "UNAUTHENTICATED"


def test_oauth_endpoint_rejects_bad_grants() -> None:
    with FakeOAuthServer() as oauth:
        conn = http.client.HTTPConnection("127.0.0.1", oauth.port, timeout=5)
        form = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c"
        conn.request("POST", "/token", form, {"content-type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        assert response.status == 400 and json.loads(response.read())["error"] == "invalid_grant"
        assert oauth.tokens_issued == 0
