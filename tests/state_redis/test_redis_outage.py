"""Redis stopped and started again under the shared-state backends (a PRIVATE server): key
events resubscribe, breakers go back to the shared state, budgets re-read a running total
that missed a settle."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from nemorouter.state.breaker_memory import FailureCounter
from nemorouter.state.breaker_redis import RedisBreakers
from nemorouter.state.budget_redis import RedisBudgets
from nemorouter.state.key_events import KeyEvents
from nemorouter.state.redis_client import TIMEOUT_S, redis_client
from nemorouter.state.unavailable import Unavailable
from nemorouter.types.budget import BudgetSubject
from tests.private_services import PrivateRedis


async def _until(condition: object, within_s: float) -> float:
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < within_s, "not within the time allowed"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.timeout(60)
async def test_key_events_resubscribe_when_redis_returns() -> None:
    with PrivateRedis() as server:
        changes: list[str | None] = []
        events = KeyEvents(redis_client(server.url), "nemo:test:keys", changes.append)
        await events.start()
        # Quiet for longer than the client's socket timeout: still subscribed, no reconnect
        # (which would drop every cached key).
        await asyncio.sleep(TIMEOUT_S + 0.5)
        await events.publish("k1")
        await _until(lambda: changes == ["k1"], 2)
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(1.5)  # at least one failed reconnect
        await asyncio.to_thread(server.start)
        # Back: the whole key cache is dropped (what changed meanwhile is unknown) ...
        await _until(lambda: None in changes, 5)
        # ... and a revocation published now arrives.
        publisher = redis_client(server.url)
        for _ in range(50):
            await publisher.publish("nemo:test:keys", "k2")
            if "k2" in changes:
                break
            await asyncio.sleep(0.05)
        assert changes[-1] == "k2", changes
        await publisher.aclose()
        await events.aclose()


@pytest.mark.timeout(60)
async def test_breakers_fail_closed_only_while_redis_is_down() -> None:
    with PrivateRedis() as server:
        breakers = RedisBreakers(
            redis_client(server.url), FailureCounter(5), 30.0, ["a"], refresh_s=0.05,
            fail_closed=True,
        )  # fmt: skip
        await breakers.start()
        assert await breakers.attempt("a")
        await asyncio.to_thread(server.stop)
        await _until(lambda: breakers.down, 2)
        with pytest.raises(Unavailable):
            await breakers.attempt("a")
        await asyncio.to_thread(server.start)
        await _until(lambda: not breakers.down, 3)
        assert await breakers.attempt("a")
        await breakers.aclose()


@pytest.mark.timeout(60)
async def test_a_budget_total_that_missed_a_settle_is_read_again() -> None:
    with PrivateRedis() as server:
        spent_in_log = 0
        loads = 0

        async def load_spent(column: str, subject_id: str, since: datetime | None) -> int:
            nonlocal loads
            loads += 1
            return spent_in_log

        budgets = RedisBudgets(redis_client(server.url), load_spent, prefix="nemo:test:b:")
        subject = BudgetSubject("key_id", "k1", "key 'k'", 10**9, None)
        reservation = await budgets.reserve([subject], 1000)
        assert loads == 1
        # Redis cannot be reached between reserve and settle, but keeps its data (a network
        # cut, not a restart): the running total misses this call's cost.
        reachable = budgets._client
        budgets._client = redis_client("redis://127.0.0.1:1/0")
        await budgets.settle(reservation, 700)  # does not raise: the answer is paid for
        budgets._client = reachable
        spent_in_log = 700  # the spend writer wrote the call's row
        await budgets.reserve([subject], 1000)  # back: the stale total is dropped, re-read
        assert loads == 2
        spent = await reachable.get("nemo:test:b:key_id:k1:life:spent")
        assert int(spent) == 700
        await reachable.aclose()
