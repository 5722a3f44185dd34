"""build_state with a Redis client, and the quota gate waiting on a Redis window."""

from __future__ import annotations

import time
from types import SimpleNamespace

from redis.asyncio import Redis

from nemorouter.state import QuotaGate, build_state
from nemorouter.state.factory import QUOTA_GUARD_S
from nemorouter.state.redis_windows import RedisWindows


async def test_build_state_with_redis(redis_client: Redis, prefix: str) -> None:
    deployment = SimpleNamespace(id="pro", rpm=1, tpm=None)
    state = build_state(redis_client, [deployment], prefix=prefix)
    assert isinstance(state.windows, RedisWindows)
    assert (await state.quotas.try_acquire("pro", 0)).allowed
    refused = await state.quotas.try_acquire("pro", 0)
    # deployment quotas count over the guarded window (60 s + QUOTA_GUARD_S)
    assert (
        not refused.allowed and 59.0 + QUOTA_GUARD_S < refused.retry_after_s <= 60.0 + QUOTA_GUARD_S
    )
    assert await redis_client.exists(f"{prefix}deployment:pro:log")
    await state.aclose()


async def test_gate_waits_for_a_shared_window(redis_client: Redis, prefix: str) -> None:
    quotas = QuotaGate(RedisWindows(redis_client, prefix=prefix, window_s=0.3), {"d": (1, None)})
    start = time.monotonic()
    assert (await quotas.acquire("d", 0, timeout_s=1.0)).allowed
    second = await quotas.acquire("d", 0, timeout_s=2.0)
    assert second.allowed and 0.28 <= time.monotonic() - start < 0.5
    timed_out = await quotas.acquire("d", 0, timeout_s=0.05)
    assert not timed_out.allowed and timed_out.waited_s >= 0.05
