"""The Redis backend against the window contract, its scripts and its keys."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from nemorouter.state import key_subject, redis_windows, team_subject
from nemorouter.state.lua_script import LuaScript
from nemorouter.state.redis_lua import ACQUIRE
from nemorouter.state.redis_windows import RedisWindows
from tests.unit.state.fakes import FakeClock
from tests.unit.state.window_cases import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
async def test_redis_backend(case: Case, redis_client: Redis, prefix: str) -> None:
    # at today's epoch, as the server's TIME would be
    clock = FakeClock(1_800_000_000.0)
    await case(RedisWindows(redis_client, prefix=prefix, clock=clock), clock)


async def test_server_time(redis_client: Redis, prefix: str) -> None:
    store = RedisWindows(redis_client, prefix=prefix)
    key = [key_subject("k", 2, 100)]
    first = await store.acquire(key, tokens=10)
    assert first.allowed and first.reservation is not None
    server_s, server_us = await redis_client.time()
    assert abs(first.reservation.at - (server_s + server_us / 1e6)) < 1.0
    assert (await store.acquire(key, tokens=10)).allowed
    refused = await store.acquire(key, tokens=10)
    assert not refused.allowed
    assert 59.0 < refused.retry_after_s <= 60.0  # the first left one round trip ago at most
    assert refused.requests is not None and refused.requests.remaining == 0
    assert refused.tokens is not None and refused.tokens.remaining == 80


async def test_loads_the_script_on_noscript(
    redis_client: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As after a server restart: EVALSHA answers NOSCRIPT, the script is loaded and re-run.

    A never-loaded variant of the script (a unique comment) instead of SCRIPT FLUSH, which
    would disturb whoever else uses this server.
    """
    fresh = LuaScript(f"{ACQUIRE}\n-- {uuid.uuid4().hex}")
    assert (await redis_client.script_exists(fresh.sha)) == [False]
    monkeypatch.setattr(redis_windows, "_ACQUIRE", fresh)
    store = RedisWindows(redis_client, prefix=prefix)
    decision = await store.acquire([key_subject("k", 10, None)])
    assert decision.allowed and decision.requests is not None
    assert decision.requests.remaining == 9
    assert (await redis_client.script_exists(fresh.sha)) == [True]
    assert (await store.acquire([key_subject("k", 10, None)])).allowed  # EVALSHA straight away


async def test_every_key_has_a_ttl(redis_client: Redis, prefix: str) -> None:
    store = RedisWindows(redis_client, prefix=prefix, window_s=2.0)
    team = team_subject("t", 5, 1000)
    decisions = [await store.acquire([key_subject(k, 5, 500), team], tokens=10) for k in "abc"]
    await store.settle(decisions[0].reservation, 20)  # type: ignore[arg-type]
    await store.release(decisions[1].reservation)  # type: ignore[arg-type]
    refused = await store.acquire([key_subject("d", 5, 500), team_subject("full", 0, None)])
    assert refused.never
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
    assert len(keys) == 8  # log + sum for three keys and the team
    for key in keys:
        ttl = await redis_client.pttl(key)
        # past the window (2 s), the hash first: a log outliving its hash is harmless
        limit = 4000 if key.endswith(b":log") else 3000
        assert limit - 500 < ttl <= limit, key


async def test_a_log_that_outlived_its_hash(redis_client: Redis, prefix: str) -> None:
    clock = FakeClock(1_800_000_000.0)
    store = RedisWindows(redis_client, prefix=prefix, clock=clock)
    key = [key_subject("k", 2, 100)]
    for _ in range(2):
        assert (await store.acquire(key, tokens=50)).allowed
    clock.advance(60.5)  # the entries left the window; the hash's TTL ran out first
    await redis_client.delete(f"{prefix}key:k:sum")
    decision = await store.acquire(key, tokens=50)
    assert decision.allowed and decision.requests is not None and decision.tokens is not None
    assert (decision.requests.remaining, decision.tokens.remaining) == (1, 50)
    assert await redis_client.zcard(f"{prefix}key:k:log") == 1
