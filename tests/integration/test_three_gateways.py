"""Three gateway processes on one Redis and one PostgreSQL (issue 21, item 13): what
`compose.yaml` runs. A key's rpm is one limit across them, its budget is spent once, an
answer cached by one is a hit on another, and a deployment whose breaker one opened is
skipped by the others without a call."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis

from nemorouter.testing import Fault, SimulatedProvider
from nemorouter.testing.processes import serve_process
from tests.private_services import PrivateRedis
from tests.services import fresh_postgres_database

from .conftest import MASTER_KEY

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
# The first test also starts the three gateways (about 5 s each on a loaded machine).
pytestmark = pytest.mark.timeout(120)
_texts = itertools.count()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three `nemorouter serve` processes sharing one private Redis and one fresh database;
    a healthy simulated provider and a broken one."""
    workdir = tmp_path_factory.mktemp("three-gateways")
    with ExitStack() as stack:
        redis_server = stack.enter_context(PrivateRedis())
        database_url = stack.enter_context(fresh_postgres_database())
        healthy = stack.enter_context(SimulatedProvider())
        broken = stack.enter_context(SimulatedProvider())
        config = {
            "settings": {
                "master_key": MASTER_KEY, "database_url": database_url,
                "redis_url": redis_server.url, "retries": 0,
                "cache": {"enabled": True, "scope": "key"},
                "breaker": {"consecutive_failures": 2, "cooldown_s": 120, "min_calls": 1000},
            },
            "providers": {
                "healthy": {"type": "openai-compatible", "base_url": healthy.base_url, "api_key": "none"},
                "broken": {"type": "openai-compatible", "base_url": broken.base_url, "api_key": "none"},
            },
            "deployments": [
                {"id": "flash", "model": "gemini-2.5-flash", "provider": "healthy"},
                {"id": "pro-broken", "model": "gemini-2.5-pro", "provider": "broken"},
            ],
            "groups": {"chain": ["gemini-2.5-pro", "gemini-2.5-flash"]},
        }  # fmt: skip
        # One after another: the first applies the schema migrations to the new database.
        urls = [stack.enter_context(serve_process(config, workdir, name))[1] for name in "abc"]
        yield {"urls": urls, "redis": redis.Redis.from_url(redis_server.url),
               "healthy": healthy, "broken": broken}  # fmt: skip


def _key(url: str, **limits: Any) -> str:
    created = httpx.post(f"{url}/admin/keys", json={"name": "k", **limits}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def _chat(url: str, key: str, text: str | None = None, **body: Any) -> httpx.Response:
    body = {"model": "gemini-2.5-flash", **body}
    body["messages"] = [{"role": "user", "content": text or f"page {next(_texts)}"}]
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_a_keys_rpm_is_one_limit_across_the_gateways(cluster: dict[str, Any]) -> None:
    a, b, c = cluster["urls"]
    key = _key(a, rpm=3)
    remaining = []
    for url in (a, b, c):
        answer = _chat(url, key)
        assert answer.status_code == 200, answer.text
        remaining.append(answer.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]  # each gateway saw the others' requests
    for url in (a, b, c):  # the fourth request of the minute, wherever it lands
        refused = _chat(url, key)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_one_budget_is_spent_once_across_the_gateways(cluster: dict[str, Any]) -> None:
    urls = cluster["urls"]
    budget = Decimal("0.0004")
    key = _key(urls[0], budget_usd=str(budget), budget_period="daily")
    spent_by: dict[str, Decimal] = dict.fromkeys(urls, Decimal(0))
    refused_at, last = None, Decimal(0)
    for i in range(200):
        url = urls[i % 3]
        # A bounded answer: the budget reserves max_tokens' worth, not the model's maximum.
        answer = _chat(url, key, nemo_cache=False, max_tokens=20)
        if answer.status_code == 402:
            refused_at = url
            break
        assert answer.status_code == 200, answer.text
        last = Decimal(answer.headers["x-nemo-response-cost"])
        spent_by[url] += last
    assert refused_at is not None, "the budget was never enforced"
    assert answer.json()["error"]["code"] == "budget_exceeded"
    total = sum(spent_by.values())
    # Refused once the spend of all three reached the budget, and not before ...
    assert total >= budget
    assert total - last < budget
    assert sum(1 for spent in spent_by.values() if spent) == 3  # all three took calls
    # ... though no single gateway had spent it: the spend each one counted is shared.
    assert all(spent < budget for spent in spent_by.values()), spent_by
    for url in urls:
        assert _chat(url, key, nemo_cache=False, max_tokens=20).status_code == 402


def test_an_answer_cached_by_one_gateway_is_a_hit_on_another(cluster: dict[str, Any]) -> None:
    a, b, c = cluster["urls"]
    healthy: SimulatedProvider = cluster["healthy"]
    key = _key(a)
    text = f"the same page {time.time_ns()}"
    calls = healthy.request_count
    first = _chat(a, key, text)
    assert (first.status_code, first.headers["x-nemo-cache"]) == (200, "MISS")
    store: redis.Redis = cluster["redis"]
    deadline = time.monotonic() + 5
    while not list(store.scan_iter("nemo:cache:*")):  # written after the answer is sent
        assert time.monotonic() < deadline, "the answer was never cached in Redis"
        time.sleep(0.02)
    for url in (b, c):
        again = _chat(url, key, text)
        assert (again.status_code, again.headers["x-nemo-cache"]) == (200, "HIT")
        assert Decimal(again.headers["x-nemo-response-cost"]) == 0
        assert again.json()["choices"] == first.json()["choices"]
    assert healthy.request_count == calls + 1  # one provider call for three answers


def test_a_breaker_opened_on_one_gateway_is_skipped_on_the_others(
    cluster: dict[str, Any],
) -> None:
    a, b, c = cluster["urls"]
    broken: SimulatedProvider = cluster["broken"]
    broken.inject(Fault.status(500), times=1000)
    key = _key(a)
    for _ in range(2):  # consecutive_failures: 2, all seen by gateway A
        failed = _chat(a, key, model="gemini-2.5-pro")
        assert failed.status_code == 503, failed.text
    assert broken.request_count == 2
    store: redis.Redis = cluster["redis"]
    deadline = time.monotonic() + 5
    while not store.exists("nemo:cb:pro-broken"):  # A's trip, shared
        assert time.monotonic() < deadline, "the open breaker never reached Redis"
        time.sleep(0.02)
    time.sleep(0.6)  # the others read the shared state every 250 ms
    answered = _chat(c, key, model="chain")
    assert answered.status_code == 200, answered.text
    assert answered.headers["x-nemo-model"] == "gemini-2.5-flash"
    refused = _chat(b, key, model="gemini-2.5-pro")
    assert refused.status_code == 503
    assert broken.request_count == 2  # neither B nor C called the open deployment
