"""Deployment quotas through a real gateway: the provider never sees more than its quota.

The simulated provider enforces its own sliding-window quota (429 beyond it), counted
when a request arrives. The 60 s window is scaled down to WINDOW_S for both the gateway
(build_state's test-only window_s) and the provider (its window_s), so several windows
pass in a few seconds; the gateway's guard is scaled down likewise.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError

from nemorouter import wiring
from nemorouter.state import build_state
from nemorouter.testing import SimulatedProvider
from tests.integration.conftest import MASTER_KEY, GatewayFactory, gateway_config
from tests.services import unavailable

WINDOW_S = 1.0  # the scaled-down minute
GUARD_S = 0.2  # the scaled-down guard (1 s per 60 s in production)
QUOTA = 40  # requests per window, at the provider and as the deployment's rpm
REQUESTS = 200  # five windows' worth
CONCURRENCY = 16
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def provider() -> Iterator[SimulatedProvider]:
    with SimulatedProvider(latency_ms=20.0, rpm=QUOTA, record=False) as sim:
        sim.window_s = WINDOW_S
        yield sim


def short_windows(monkeypatch: pytest.MonkeyPatch, prefix: str = "nemo:rl:") -> None:
    monkeypatch.setattr(
        wiring,
        "build_state",
        functools.partial(build_state, prefix=prefix, window_s=WINDOW_S, guard_s=GUARD_S),
    )


def config(sim: SimulatedProvider, rpm: int | None, **settings: Any) -> dict[str, Any]:
    raw = gateway_config(sim, **settings)
    raw["settings"]["retries"] = 0  # a provider 429 shows as a failed request
    raw["settings"]["cache"] = {"enabled": False}  # every request must reach the provider
    for deployment in raw["deployments"]:
        if deployment["id"] == "pro":
            deployment["rpm"] = rpm
    return raw


async def drive(urls: list[str], requests: int = REQUESTS) -> list[httpx.Response]:
    """`requests` distinct requests, CONCURRENCY at a time, spread over the gateways."""
    todo = iter(range(requests))
    answers: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker() -> None:
            for i in todo:
                answers.append(
                    await client.post(
                        f"{urls[i % len(urls)]}/chat/completions",
                        headers={"authorization": f"Bearer {MASTER_KEY}"},
                        json={
                            "model": "gemini-2.5-pro",
                            "messages": [{"role": "user", "content": f"page {i}"}],
                        },
                    )
                )

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return answers


def queue_ms(answers: list[httpx.Response]) -> list[float]:
    return [float(a.headers.get("x-nemo-queue-ms", 0)) for a in answers]


def test_without_a_quota_the_load_overruns_the_provider(
    provider: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    """The control: the same load with no rpm set meets the provider's 429s."""
    gateway = start_gateway(config(provider, rpm=None))
    answers = asyncio.run(drive([gateway.base_url], 3 * QUOTA))
    assert provider.throttled > 0  # (and once 50 in a row, pro's circuit opens)
    assert sum(a.status_code != 200 for a in answers) >= provider.throttled


def test_gateway_holds_the_deployment_to_its_quota(
    provider: SimulatedProvider, start_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    short_windows(monkeypatch)
    gateway = start_gateway(config(provider, rpm=QUOTA, queue_timeout_s=10))
    started = time.monotonic()
    answers = asyncio.run(drive([gateway.base_url]))
    elapsed = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * REQUESTS
    assert provider.throttled == 0  # the provider never saw more than its quota
    assert provider.request_count == REQUESTS
    # paced, not refused: five windows' worth takes four whole (guarded) windows
    assert elapsed >= (REQUESTS / QUOTA - 1) * (WINDOW_S + GUARD_S)
    waits = queue_ms(answers)
    assert any(w > 0 for w in waits) and max(waits) < 10_000


def test_a_queue_timeout_falls_back_to_the_next_model(
    provider: SimulatedProvider, start_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a queue timeout far shorter than the window, the overflow goes to flash."""
    short_windows(monkeypatch)
    gateway = start_gateway(config(provider, rpm=QUOTA, queue_timeout_s=0.05))
    provider.rpm = None  # only the gateway's quota on pro is in play here
    provider.latency_ms = 0.0  # all of it well inside one window

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return [
                await client.post(
                    f"{gateway.base_url}/chat/completions",
                    headers={"authorization": f"Bearer {MASTER_KEY}"},
                    json={
                        "model": "document-vision",
                        "messages": [{"role": "user", "content": f"page {i}"}],
                    },
                )
                for i in range(QUOTA + 5)
            ]

    answers = asyncio.run(run())
    assert [a.status_code for a in answers] == [200] * (QUOTA + 5)
    deployments = [a.headers["x-nemo-deployment"] for a in answers]
    assert deployments[:QUOTA] == ["pro"] * QUOTA
    assert all(d.startswith("flash-") for d in deployments[QUOTA:])
    assert all(a.headers["x-nemo-fallbacks"] == "1" for a in answers[QUOTA:])


def test_two_gateways_sharing_redis_share_one_quota(
    provider: SimulatedProvider, start_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        unavailable("Redis", f"{REDIS_URL} is unreachable ({exc})")
    prefix = f"nemotest:{uuid.uuid4().hex}:"
    try:
        short_windows(monkeypatch, prefix)
        raw = config(provider, rpm=QUOTA, queue_timeout_s=10, redis_url=REDIS_URL)
        first = start_gateway(raw)
        second = start_gateway({**raw, "settings": {**raw["settings"]}})
        answers = asyncio.run(drive([first.base_url, second.base_url]))
        assert [a.status_code for a in answers] == [200] * REQUESTS
        assert provider.throttled == 0
        assert provider.request_count == REQUESTS
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
