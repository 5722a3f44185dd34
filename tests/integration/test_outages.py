"""Redis or PostgreSQL stopped under a running gateway: 503 with retry-after, never 500;
readiness says so within its bound; everything works again once the server is back.

Each test stops and starts PRIVATE servers (tests/private_services.py), never the shared ones.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.private_services import PrivatePostgres, PrivateRedis

from .conftest import MASTER_KEY, GatewayFactory, gateway_config

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
HI = [{"role": "user", "content": "hello"}]


def _config(sim: SimulatedProvider, **settings: Any) -> dict[str, Any]:
    raw = gateway_config(sim, **settings)
    raw["deployments"][2]["rpm"] = 10_000  # "pro" is quota-gated: its window is in Redis
    return raw


def _new_key(gateway: BackgroundGateway, **fields: Any) -> str:
    created = httpx.post(f"{gateway.url}/admin/keys", json=fields, headers=ADMIN, timeout=10)
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _chat(gateway: BackgroundGateway, key: str, model: str = "gemini-2.5-flash") -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": model, "messages": HI, "max_tokens": 20},
        headers=_bearer(key),
        timeout=20,
    )


def _burst(gateway: BackgroundGateway, key: str, n: int = 40, **kw: Any) -> list[httpx.Response]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: _chat(gateway, key, **kw), range(n)))


def _ready(gateway: BackgroundGateway) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(f"{gateway.url}/health/ready", timeout=10)
    return response, time.monotonic() - started


def _assert_unavailable(responses: list[httpx.Response], what: str) -> None:
    """Every answer a 503 naming `what`, with retry-after, and fast (a dead store fails fast)."""
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {503: len(responses)}, statuses
    for response in responses:
        error = response.json()["error"]
        assert error["code"] == "service_unavailable", error
        assert what in error["message"], error
        assert int(response.headers["retry-after"]) > 0
        assert response.elapsed.total_seconds() < 1.0, response.elapsed


def _eventually_ok(
    gateway: BackgroundGateway, key: str, seen: Counter[int], within_s: float
) -> float:
    """Seconds until a request of `key` succeeds again (every status counted in `seen`)."""
    started = time.monotonic()
    while True:
        status = _chat(gateway, key).status_code
        seen[status] += 1
        if status == 200:
            return time.monotonic() - started
        assert time.monotonic() - started < within_s, f"still {status} after {within_s}s"
        time.sleep(0.1)


def _eventually_ready(gateway: BackgroundGateway, within_s: float) -> float:
    started = time.monotonic()
    while _ready(gateway)[0].status_code != 200:
        assert time.monotonic() - started < within_s, _ready(gateway)[0].text
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rate_limits", ["closed", "open"])
def test_redis_outage_answers_503_and_recovers(
    sim: SimulatedProvider, start_gateway: GatewayFactory, rate_limits: str
) -> None:
    with PrivateRedis() as redis:
        gateway = start_gateway(
            _config(
                sim,
                redis_url=redis.url,
                cache={"enabled": True},  # a Redis cache that must never fail a request
                redis_down={"rate_limits": rate_limits},
            )
        )
        limited = _new_key(gateway, name="limited", rpm=100_000, tpm=10_000_000)
        budgeted = _new_key(gateway, name="budgeted", budget_usd="10")
        seen: Counter[int] = Counter()
        for key in (limited, budgeted, MASTER_KEY):
            response = _chat(gateway, key)
            assert response.status_code == 200, response.text
        assert _ready(gateway)[0].status_code == 200

        redis.stop()
        started = time.monotonic()
        budget_answers = _burst(gateway, budgeted)
        # Budgets fail closed whatever the setting.
        _assert_unavailable(budget_answers, "Redis (budgets)")
        limited_answers = _burst(gateway, limited)
        if rate_limits == "closed":
            _assert_unavailable(limited_answers, "Redis (key rate limits)")
        else:  # fail open: the rate-limited key goes on, uncounted
            assert Counter(r.status_code for r in limited_answers) == {200: 40}
        # The deployment quota gate fails closed (provider quotas are shared by instances).
        _assert_unavailable(_burst(gateway, MASTER_KEY, 10, model="gemini-2.5-pro"), "quotas")
        # No limit, no budget, no quota: only the response cache needs Redis, and it skips.
        master = _burst(gateway, MASTER_KEY, 10)
        assert Counter(r.status_code for r in master) == {200: 10}
        outage_s = time.monotonic() - started
        ready, took = _ready(gateway)
        assert ready.status_code == 503 and took < 3.0, (ready.text, took)
        assert ready.json()["down"] == ["redis"], ready.json()
        for responses in (budget_answers, limited_answers, master):
            seen.update(r.status_code for r in responses)

        redis.start()
        back_budget = _eventually_ok(gateway, budgeted, seen, within_s=5)
        back_limited = _eventually_ok(gateway, limited, seen, within_s=5)
        assert _chat(gateway, MASTER_KEY, "gemini-2.5-pro").status_code == 200
        back_ready = _eventually_ready(gateway, within_s=5)
        assert seen[500] == 0, seen
        print(
            f"\nredis outage ({rate_limits}): {sum(seen.values())} requests {dict(seen)}; "
            f"outage {outage_s:.2f}s; back after start: budget {back_budget:.2f}s, "
            f"limited {back_limited:.2f}s, ready {back_ready:.2f}s"
        )


@pytest.mark.timeout(60)
def test_a_hung_redis_is_bounded(sim: SimulatedProvider, start_gateway: GatewayFactory) -> None:
    """A server that accepts nothing and answers nothing (SIGSTOP), not one that refuses."""
    with PrivateRedis() as redis:
        gateway = start_gateway(_config(sim, redis_url=redis.url))
        key = _new_key(gateway, name="limited", rpm=100_000, budget_usd="10")
        assert _chat(gateway, key).status_code == 200
        assert redis.process is not None
        redis.process.send_signal(signal.SIGSTOP)
        try:
            ready, took = _ready(gateway)
            assert ready.status_code == 503 and took < 3.0, (ready.text, took)
            answers = _burst(gateway, key, 8)
        finally:
            redis.process.send_signal(signal.SIGCONT)
        assert Counter(r.status_code for r in answers) == {503: 8}
        assert max(r.elapsed.total_seconds() for r in answers) < 4.0
        seen: Counter[int] = Counter()
        _eventually_ok(gateway, key, seen, within_s=5)
        assert seen[500] == 0, seen


@pytest.mark.timeout(120)
def test_postgres_outage_serves_cached_keys_and_503s_the_rest(
    sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    with PrivatePostgres() as pg:
        gateway = start_gateway(_config(sim, database_url=pg.url))
        auth = gateway.app.services.auth
        auth.ttl_s = 0.5  # the cache entry expires during the outage
        cached = _new_key(gateway, name="cached", rpm=100_000, budget_usd="10")
        uncached = _new_key(gateway, name="uncached")
        unloaded = _new_key(gateway, name="unloaded", budget_usd="10")
        seen: Counter[int] = Counter()
        response = _chat(gateway, cached)  # read once: in the key cache, its budget loaded
        assert response.status_code == 200, response.text
        listed = httpx.get(f"{gateway.base_url}/models", headers=_bearer(unloaded), timeout=10)
        assert listed.status_code == 200  # in the key cache, its budget never read
        time.sleep(1.0)  # the private server commits asynchronously: let the WAL reach disk

        pg.stop()
        started = time.monotonic()
        time.sleep(auth.ttl_s + 0.1)
        stale = _burst(gateway, cached, 20)
        assert Counter(r.status_code for r in stale) == {200: 20}, [r.text for r in stale][:2]
        refused = _burst(gateway, uncached, 20)
        _assert_unavailable(refused, "The key store (database)")
        ready, took = _ready(gateway)
        assert ready.status_code == 503 and took < 3.0, (ready.text, took)
        assert "store" in ready.json()["down"], ready.json()
        # A budget's first use reads the spend log: bounded (the flush of the waiting spend
        # rows, then the query), then 503.
        first_use = _chat(gateway, unloaded)
        assert first_use.status_code == 503, first_use.text
        assert "spend store" in first_use.json()["error"]["message"]
        assert first_use.elapsed.total_seconds() < 6.0
        seen[first_use.status_code] += 1
        time.sleep(1.0)
        later = _burst(gateway, cached, 10)  # still served, past several TTLs
        assert Counter(r.status_code for r in later) == {200: 10}
        outage_s = time.monotonic() - started
        for responses in (stale, refused, later):
            seen.update(r.status_code for r in responses)

        pg.start()
        back_uncached = _eventually_ok(gateway, uncached, seen, within_s=10)
        # The spend writer retries with a backoff of up to 5 s before it writes again.
        back_ready = _eventually_ready(gateway, within_s=15)
        assert seen[500] == 0, seen
        print(
            f"\npostgres outage: {sum(seen.values())} requests {dict(seen)} over {outage_s:.2f}s; "
            f"back after start: uncached key {back_uncached:.2f}s, ready {back_ready:.2f}s"
        )
