"""Redis for the state backend tests: skipped when unreachable, unless CI requires it.

Each test gets its own key prefix, and every key under it is deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.services import unavailable

REDIS_URL = os.environ.get("NEMOROUTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _connect() -> Redis:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        unavailable(
            "Redis", f"{REDIS_URL} is unreachable ({exc}); start it, see DESIGN.md section 5"
        )
    return client


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = await _connect()
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis_client: Redis) -> AsyncIterator[str]:
    value = f"nemotest:{uuid.uuid4().hex}:"
    yield value
    keys = [key async for key in redis_client.scan_iter(match=f"{value}*", count=1000)]
    if keys:
        await redis_client.delete(*keys)
