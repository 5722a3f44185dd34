"""Budgets hold when the provider counts far more prompt tokens than the text suggests.

Waves of 40 concurrent requests on a small budget, until the gateway says the budget is
spent: the spend may pass the budget by at most one request's cost, on one gateway and on
two sharing Redis, in repeated runs. The simulated provider counts prompts as a real one can:
- `factor`: three times the tokens of the text (a finer tokenizer),
- `system`: 20,000 tokens of its own on every call (a system prompt the gateway cannot see),
- `image`: a real page scan (2892x4093) at Gemini 2.x's tile rule, 24 tiles of 258 tokens.
The image case is bounded from the first request: the gateway reads the page's size from its
header and reserves under the same published rule. The text cases cannot be known before the
provider has answered once: a few warm-up calls (without a budget) let each gateway's
correction learn the ratio first, as it does in production after its first calls.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from PIL import Image

from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from nemorouter.testing.sim_answers import PromptCounting
from tests.services import fresh_postgres_database, unavailable

from .conftest import MASTER_KEY, fresh_sqlite_url

REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
PAGE = Path("/work/shared/corpus/invoices/oyo.png")  # a real scanned page, read in place
CONCURRENCY = 40
BUDGET = Decimal("0.05")
WARM_UP_CALLS = 3


def page_data_url() -> tuple[str, tuple[int, int]]:
    if PAGE.exists():
        raw = PAGE.read_bytes()
    else:  # an A4 page at 300 dpi
        out = io.BytesIO()
        Image.new("L", (2480, 3508), 255).save(out, format="PNG")
        raw = out.getvalue()
    size = Image.open(io.BytesIO(raw)).size
    return "data:image/png;base64," + base64.b64encode(raw).decode(), size


def gemini_2_tiles(width: int, height: int) -> int:
    """Gemini 2.x's published rule: 768x768 tiles of 258 tokens (small images: 258)."""
    if width <= 384 and height <= 384:
        return 258
    return math.ceil(width / 768) * math.ceil(height / 768) * 258


def scenario(name: str) -> tuple[PromptCounting, dict[str, Any], bool]:
    """How the provider counts, the request body, and whether warm-up calls are needed."""
    if name == "factor":
        text = "Invoice line 0042: 17 x widget @ 3.10 EUR = 52.70 EUR. " * 360
        body = {"messages": [{"role": "user", "content": text}], "max_tokens": 500}
        return PromptCounting(factor=3.0), body, True
    if name == "system":
        text = "Extract the invoice number, date, total and currency as JSON. " * 10
        body = {"messages": [{"role": "user", "content": text}], "max_tokens": 500}
        return PromptCounting(system_tokens=20_000), body, True
    url, size = page_data_url()
    content = [
        {"type": "text", "text": "Extract the total of this invoice."},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": 100}
    return PromptCounting(image_tokens=gemini_2_tiles(*size)), body, False


def config(sim: SimulatedProvider, **settings: Any) -> dict[str, Any]:
    return {
        "settings": {"master_key": MASTER_KEY, "cache": {"enabled": False}, **settings},
        "providers": {"sim": {"type": "openai-compatible", "base_url": sim.base_url}},
        "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"}],
    }


@contextmanager
def gateways(sim: SimulatedProvider, instances: int) -> Iterator[list[BackgroundGateway]]:
    """One gateway on SQLite, or two sharing PostgreSQL and Redis."""
    with ExitStack() as stack:
        if instances == 1:
            settings = {"database_url": fresh_sqlite_url()}
        else:
            try:
                redis.Redis.from_url(REDIS_URL).ping()
            except redis.RedisError as exc:
                unavailable("Redis", str(exc))
            database_url = stack.enter_context(fresh_postgres_database())
            settings = {"database_url": database_url, "redis_url": REDIS_URL}
        parsed = parse_config(config(sim, **settings), env={})
        yield [stack.enter_context(BackgroundGateway(parsed)) for _ in range(instances)]


async def _call(
    client: httpx.AsyncClient, url: str, key: str, body: dict[str, Any]
) -> tuple[int, Decimal, bool]:
    """(status, cost, whether a 402 says the budget is spent rather than held)."""
    response = await client.post(
        f"{url}/v1/chat/completions",
        json={"model": "gemini-2.5-flash", **body},
        headers={"Authorization": f"Bearer {key}"},
    )
    if response.status_code == 200:
        return 200, Decimal(response.json()["usage"]["cost"]), False
    assert response.status_code == 402, response.text
    return 402, Decimal(0), "retry-after" not in response.headers


async def _spend_the_budget(
    urls: list[str], key: str, body: dict[str, Any]
) -> tuple[Decimal, Decimal, int]:
    """Waves of concurrent calls (spread over the gateways) until one is refused because
    the budget is spent; returns (spent, the costliest call, calls answered)."""
    spent, costliest, answered = Decimal(0), Decimal(0), 0
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(50):
            results = await asyncio.gather(
                *(_call(client, urls[i % len(urls)], key, body) for i in range(CONCURRENCY))
            )
            for status, cost, _ in results:
                if status == 200:
                    spent, answered = spent + cost, answered + 1
                    costliest = max(costliest, cost)
            if any(exhausted for _, _, exhausted in results):
                return spent, costliest, answered
            await asyncio.sleep(0.05)
    raise AssertionError("the budget was never reported spent")


async def _warm_up(urls: list[str], body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        for url in urls:
            for _ in range(WARM_UP_CALLS):
                status, _, _ = await _call(client, url, MASTER_KEY, body)
                assert status == 200


@pytest.mark.timeout(180)
@pytest.mark.parametrize("run", [1, 2, 3])
@pytest.mark.parametrize("instances", [1, 2], ids=["one-gateway", "two-sharing-redis"])
@pytest.mark.parametrize("case", ["factor", "system", "image"])
def test_budget_overshoot_is_at_most_one_request(case: str, instances: int, run: int) -> None:
    counting, body, needs_warm_up = scenario(case)
    with SimulatedProvider(latency_ms=30) as sim, gateways(sim, instances) as started:
        sim.counting = counting
        urls = [gateway.url for gateway in started]
        if needs_warm_up:
            asyncio.run(_warm_up(urls, body))
        created = httpx.post(
            f"{urls[0]}/admin/keys",
            json={"name": f"small-{case}", "budget_usd": str(BUDGET)},
            headers=ADMIN,
        )
        assert created.status_code == 201, created.text
        spent, costliest, answered = asyncio.run(
            _spend_the_budget(urls, created.json()["key"], body)
        )
    overshoot = spent - BUDGET
    print(f"{case} x{instances} run {run}: {answered} answered, spent ${spent}, "
          f"overshoot ${overshoot} = {overshoot / costliest:.2f} requests")  # fmt: skip
    assert spent >= BUDGET
    assert overshoot <= costliest, (
        f"overshoot ${overshoot} is {overshoot / costliest:.2f} requests of ${costliest}"
    )


def test_a_call_over_its_reservation_is_logged_and_counted_and_teaches_the_deployment(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counting, body, _ = scenario("system")
    with SimulatedProvider() as sim, gateways(sim, 1) as (gateway,):
        sim.counting = counting
        created = httpx.post(
            f"{gateway.url}/admin/keys", json={"name": "k", "budget_usd": "10"}, headers=ADMIN
        ).json()

        async def one_call() -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                status, _, _ = await _call(client, gateway.url, created["key"], body)
                assert status == 200

        with caplog.at_level(logging.WARNING, "nemorouter.budget"):
            asyncio.run(one_call())  # the provider's 20,000 tokens are news: under-reserved
            asyncio.run(one_call())  # learned: this one's reservation covers it
        metrics = httpx.get(f"{gateway.url}/metrics").text
    (warning,) = [r for r in caplog.records if "reservation too small" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    message = warning.getMessage()
    assert "deployment flash cost $0.006" in message and "reserved $0.001" in message
    assert 'nemorouter_budget_underreserved_total{deployment="flash"} 1.0' in metrics
    assert 'nemorouter_budget_underreserved_usd_total{deployment="flash"}' in metrics
