"""The same model is charged its provider type's and endpoint's price, end to end: a real
gateway in front of the simulated Gemini API / Vertex AI and Claude on Vertex, the cost read
from `x-nemo-response-cost` and checked by hand against the reported usage.

- gemini-2.0-flash: Gemini API 0.10 / 0.40 per Mtok (LiteLLM gemini/gemini-2.0-flash,
  genai-prices), Vertex 0.15 / 0.60 (gemini-2.0-flash-001);
- Claude Sonnet 4.5 on Vertex: regional and multi-region endpoints cost 10% more than the
  global one (Anthropic, "Claude on Vertex AI").
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from nemorouter.testing import FakeOAuthServer, SimulatedAnthropic, SimulatedGemini

from . import helpers
from .conftest import MASTER_KEY, GatewayFactory
from .helpers import USER, native_settings, vertex_provider

oauth_fixture = helpers.oauth_fixture
key_file_fixture = helpers.key_file_fixture
GEMINI_KEY = "g-api-key-cost"
CLAUDE_KEY = "sk-ant-cost"


@pytest.fixture(scope="module")
def gemini(oauth: FakeOAuthServer) -> Iterator[SimulatedGemini]:
    with SimulatedGemini(oauth=oauth, api_key=GEMINI_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def claude(oauth: FakeOAuthServer) -> Iterator[SimulatedAnthropic]:
    with SimulatedAnthropic(oauth=oauth, api_key=CLAUDE_KEY) as sim:
        yield sim


def charged(
    start_gateway: GatewayFactory, provider: dict[str, Any], model: str
) -> tuple[Decimal, int, int]:
    """(cost header, prompt tokens, completion tokens) of one call through a gateway whose
    only deployment serves `model` on `provider`."""
    gateway = start_gateway(
        {
            "settings": native_settings(),
            "providers": {"p": provider},
            "deployments": [{"id": "only", "model": model, "provider": "p"}],
        }
    )
    client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=USER, max_tokens=100
    )
    usage = raw.parse().usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    return (
        Decimal(raw.headers["x-nemo-response-cost"]),
        usage.prompt_tokens,
        usage.completion_tokens,
    )


def per_mtok(prompt: int, completion: int, input_rate: str, output_rate: str) -> Decimal:
    return (prompt * Decimal(input_rate) + completion * Decimal(output_rate)) / 1_000_000


def test_gemini_api_and_vertex_charge_their_own_price(
    start_gateway: GatewayFactory, gemini: SimulatedGemini, key_file: Path
) -> None:
    api = {"type": "gemini", "base_url": gemini.base_url, "api_key": GEMINI_KEY}
    vertex = vertex_provider("vertex", "us-central1", gemini, key_file)
    api_cost, prompt, completion = charged(start_gateway, api, "gemini-2.0-flash")
    vertex_cost, v_prompt, v_completion = charged(start_gateway, vertex, "gemini-2.0-flash")
    assert (v_prompt, v_completion) == (prompt, completion)  # the same call, the same usage
    assert api_cost == per_mtok(prompt, completion, "0.10", "0.40")
    assert vertex_cost == per_mtok(prompt, completion, "0.15", "0.60")
    assert vertex_cost == api_cost * Decimal("1.5")


@pytest.mark.parametrize("regional", ["us-east5", "eu"])
def test_regional_claude_on_vertex_costs_ten_percent_more(
    start_gateway: GatewayFactory, claude: SimulatedAnthropic, key_file: Path, regional: str
) -> None:
    model = "claude-sonnet-4-5"
    on_global = vertex_provider("anthropic-vertex", "global", claude, key_file)
    on_region = vertex_provider("anthropic-vertex", regional, claude, key_file)
    global_cost, prompt, completion = charged(start_gateway, on_global, model)
    regional_cost, r_prompt, r_completion = charged(start_gateway, on_region, model)
    assert (r_prompt, r_completion) == (prompt, completion)
    assert global_cost == per_mtok(prompt, completion, "3", "15")
    assert regional_cost == global_cost * Decimal("1.1")
    assert f"/locations/{regional}/" in claude.requests[-1].path


LONG = [{"role": "user", "content": "Read this page and give its total. " * 20}]


@pytest.mark.parametrize("stream", [False, True])
def test_claude_cache_writes_are_charged_by_ttl(
    start_gateway: GatewayFactory, claude: SimulatedAnthropic, stream: bool
) -> None:
    """Anthropic pricing: 5-minute cache writes cost 1.25x input, 1-hour ones 2x, reads 0.1x
    (Haiku 4.5: 1 in, 5 out). The simulated answer reports 3 reads, 4 + 5 writes."""
    api = {"type": "anthropic", "base_url": claude.base_url, "api_key": CLAUDE_KEY}
    gateway = start_gateway(
        {
            "settings": native_settings(),
            "providers": {"p": api},
            "deployments": [{"id": "haiku", "model": "claude-haiku-4-5", "provider": "p"}],
        }
    )
    client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    claude.clear()
    claude.cache_read_tokens, claude.cache_write_5m_tokens, claude.cache_write_1h_tokens = 3, 4, 5
    try:
        if stream:
            chunks = list(
                client.chat.completions.create(
                    model="claude-haiku-4-5", messages=LONG, stream=True,
                    stream_options={"include_usage": True},
                )
            )  # fmt: skip
            usage = chunks[-1].usage
            assert usage is not None
            cost = Decimal(usage.model_dump()["cost"])
        else:
            raw = client.chat.completions.with_raw_response.create(
                model="claude-haiku-4-5", messages=LONG
            )
            usage = raw.parse().usage
            assert usage is not None
            cost = Decimal(raw.headers["x-nemo-response-cost"])
    finally:
        claude.cache_read_tokens = claude.cache_write_5m_tokens = claude.cache_write_1h_tokens = 0
    details = usage.model_dump()["prompt_tokens_details"]
    assert details["cached_tokens"] == 3 and details["cache_creation_tokens"] == 9
    uncached = usage.prompt_tokens - 3 - 9
    expected = (
        uncached * Decimal(1) + 3 * Decimal("0.10") + 4 * Decimal("1.25") + 5 * Decimal(2)
        + usage.completion_tokens * Decimal(5)
    ) / 1_000_000  # fmt: skip
    assert cost == expected
