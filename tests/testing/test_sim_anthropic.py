"""The simulated Anthropic provider (Messages API and Vertex rawPredict), over raw HTTP."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from nemorouter.testing import Fault, SimulatedAnthropic

VERTEX = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929"
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Hi"}],
}


@pytest.fixture(scope="module")
def claude() -> Iterator[SimulatedAnthropic]:
    with SimulatedAnthropic(api_key="k") as sim:
        yield sim


def post(
    sim: SimulatedAnthropic, path: str, body: Any, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json", **headers})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def test_message_shape(claude: SimulatedAnthropic) -> None:
    status, _, raw = post(claude, "/v1/messages", BODY, HEADERS)
    data = json.loads(raw)
    assert status == 200 and data["type"] == "message" and data["stop_reason"] == "end_turn"
    assert data["content"][0]["text"].startswith("Simulated answer from claude-haiku-4-5")
    assert set(data["usage"]) >= {"input_tokens", "output_tokens", "cache_read_input_tokens"}


def test_vertex_needs_version_and_no_model(claude: SimulatedAnthropic) -> None:
    vertex_body = {k: v for k, v in BODY.items() if k != "model"}
    status, _, raw = post(claude, f"{VERTEX}:rawPredict", vertex_body, {})
    assert status == 400 and b"anthropic_version" in raw
    status, _, _ = post(
        claude,
        f"{VERTEX}:rawPredict",
        {**vertex_body, "anthropic_version": "vertex-2023-10-16"},
        {},
    )
    assert status == 200
    status, _, raw = post(
        claude, f"{VERTEX}:rawPredict", {**BODY, "anthropic_version": "vertex-2023-10-16"}, {}
    )
    assert status == 400 and b"model: Extra inputs" in raw


def test_stream_events(claude: SimulatedAnthropic) -> None:
    status, headers, raw = post(claude, "/v1/messages", {**BODY, "stream": True}, HEADERS)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    names = [line[7:] for line in raw.decode().split("\n") if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (BODY, {"anthropic-version": "2023-06-01"}, 401, "x-api-key"),
        (BODY, {"x-api-key": "k"}, 400, "anthropic-version"),
        ({**BODY, "response_format": {}}, HEADERS, 400, "Extra inputs"),
        ({k: v for k, v in BODY.items() if k != "max_tokens"}, HEADERS, 400, "max_tokens"),
    ],
)
def test_refusals(
    claude: SimulatedAnthropic, body: Any, headers: dict[str, str], status: int, words: str
) -> None:
    got, _, raw = post(claude, "/v1/messages", body, headers)
    assert got == status and words in json.loads(raw)["error"]["message"]


def test_overloaded_and_rate_limit_faults(claude: SimulatedAnthropic) -> None:
    claude.inject(Fault.status(529))
    status, _, raw = post(claude, "/v1/messages", BODY, HEADERS)
    assert status == 529 and json.loads(raw)["error"]["type"] == "overloaded_error"
    claude.inject(Fault.status(429, retry_after=5))
    status, headers, raw = post(claude, "/v1/messages", BODY, HEADERS)
    assert status == 429 and headers["retry-after"] == "5"
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
