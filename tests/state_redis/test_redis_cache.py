"""The Redis response cache: shared between processes, PX expiry, compression, outages."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from nemorouter.state.cache import build_cache
from nemorouter.state.cache_redis import RedisCache, unpack
from tests.state_redis.conftest import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("cache_worker.py")
KEY = "ab" * 32


async def test_get_set_under_the_prefix(redis_client: Redis, prefix: str) -> None:
    cache = RedisCache(redis_client, prefix=prefix)
    assert await cache.get(KEY) is None
    await cache.set(KEY, b'{"small": true}', 60)
    assert await cache.get(KEY) == b'{"small": true}'
    assert await redis_client.exists(prefix + KEY) == 1
    assert 59_000 < await redis_client.pttl(prefix + KEY) <= 60_000


async def test_expiry_is_redis_px(redis_client: Redis, prefix: str) -> None:
    cache = RedisCache(redis_client, prefix=prefix)
    await cache.set(KEY, b"v", 0.05)
    assert await cache.get(KEY) == b"v"
    await asyncio.sleep(0.12)
    assert await cache.get(KEY) is None


async def test_ttl_zero_means_no_expiry(redis_client: Redis, prefix: str) -> None:
    cache = RedisCache(redis_client, prefix=prefix)
    await cache.set(KEY, b"v", 0)
    assert await redis_client.pttl(prefix + KEY) == -1


async def test_large_values_are_stored_compressed(redis_client: Redis, prefix: str) -> None:
    cache = RedisCache(redis_client, prefix=prefix)
    value = b'{"invoice_number": "INV-2024-00123", "qty": 3}, ' * 60
    await cache.set(KEY, value, 60)
    stored = await redis_client.get(prefix + KEY)
    assert stored is not None and stored[:1] == b"\x01" and len(stored) < len(value) // 3
    assert await cache.get(KEY) == value


async def test_unreadable_stored_values_are_a_miss(redis_client: Redis, prefix: str) -> None:
    cache = RedisCache(redis_client, prefix=prefix)
    for junk in (b"\x07whatever", b"\x01not deflate", b""):
        await redis_client.set(prefix + KEY, junk)
        assert await cache.get(KEY) is None
    assert unpack(b"\x00raw") == b"raw"


async def test_an_outage_is_a_miss_not_an_error() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    cache = RedisCache(client, prefix="nemotest:down:")
    assert await cache.get(KEY) is None
    await cache.set(KEY, b"v", 60)  # does not raise
    await cache.aclose()


async def test_factory_picks_redis_with_a_url(redis_client: Redis, prefix: str) -> None:
    cache = build_cache(redis_client, prefix=prefix)
    assert isinstance(cache, RedisCache)
    await cache.set(KEY, b"v", 60)
    assert await redis_client.get(prefix + KEY) == b"\x00v"
    await cache.aclose()


def test_two_processes_share_one_cache(redis_client: Redis, prefix: str) -> None:
    """A reader process polls; a writer process stores the same page (wrapped differently)."""

    def start(mode: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(WORKER), REDIS_URL, prefix, mode],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    reader = start("read")
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
        writer = start("write")
        assert writer.communicate(timeout=30)[0].strip() == "stored"
        out = reader.communicate(timeout=30)[0].strip()
    finally:
        if reader.poll() is None:
            reader.kill()
    assert writer.returncode == 0 and reader.returncode == 0
    assert out.startswith("chatcmpl-from-") and out.endswith(" 0.0042")
