"""Every simulator can report more prompt tokens than the text suggests, as real providers
do: a factor (finer tokenizer), a fixed overhead (their own system tokens), tokens per image."""

from __future__ import annotations

import http.client
import json
from typing import Any

import httpx
import pytest

from nemorouter.testing import SimulatedAnthropic, SimulatedGemini, SimulatedProvider
from nemorouter.testing.sim_answers import PromptCounting
from nemorouter.testing.sim_cli import main as sim_main

TEXT = "x" * 400  # 100 tokens as the simulators count text
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def post(port: int, path: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json", **headers})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    assert response.status == 200, data
    return data


def test_openai_format() -> None:
    with SimulatedProvider(prompt_token_factor=3.0, system_prompt_tokens=500) as sim:
        content = [{"type": "text", "text": TEXT}, IMAGE]
        body = {"model": "m", "messages": [{"role": "user", "content": content}]}
        usage = post(sim.port, "/v1/chat/completions", body, {})["usage"]
        assert usage["prompt_tokens"] == (100 + 258) * 3 + 500
        sim.counting = PromptCounting(image_tokens=5160)
        usage = post(sim.port, "/v1/chat/completions", body, {})["usage"]
        assert usage["prompt_tokens"] == 100 + 5160
        reply = httpx.post(f"{sim.origin}/_sim/config", json={"system_prompt_tokens": 7}).json()
        assert reply["throttled"] == 0
        usage = post(sim.port, "/v1/chat/completions", body, {})["usage"]
        assert usage["prompt_tokens"] == 100 + 5160 + 7


def test_gemini_format() -> None:
    with SimulatedGemini(system_prompt_tokens=20_000) as sim:
        body = {"contents": [{"role": "user", "parts": [{"text": TEXT}]}]}
        path = "/v1beta/models/gemini-2.5-flash:generateContent"
        assert post(sim.port, path, body, {})["usageMetadata"]["promptTokenCount"] == 20_100


def test_anthropic_format() -> None:
    with SimulatedAnthropic(prompt_token_factor=2.0) as sim:
        body = {"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": TEXT}]}
        headers = {"anthropic-version": "2023-06-01"}
        assert post(sim.port, "/v1/messages", body, headers)["usage"]["input_tokens"] == 200


def test_cli_offers_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):  # --help exits before serving
        sim_main(["--help"])
    shown = capsys.readouterr().out
    for option in ("--prompt-token-factor", "--system-prompt-tokens", "--image-tokens"):
        assert option in shown
