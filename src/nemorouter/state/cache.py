"""The response cache's interface and its factory (issue #9).

Values are opaque bytes (core.cache_entry encodes them); keys are core.cache_key digests.
Memory (one process, bounded in bytes, LRU) by default; Redis when settings.redis_url is
set (the wiring hands its one client), so every instance serves every other instance's answers.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

from nemorouter.state.cache_memory import DEFAULT_MAX_BYTES, MemoryCache


class ResponseCache(Protocol):
    async def get(self, key: str) -> bytes | None:
        """The stored value, or None (absent, expired, or the backend is unreachable)."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s` seconds (0 = no expiry: the LRU bound or Redis's
        maxmemory policy evicts it). Never raises for a backend outage: a cache that
        cannot store is a miss next time, not a failed request."""
        ...

    async def aclose(self) -> None: ...


def build_cache(
    redis: Redis | None, prefix: str = "nemo:cache:", max_bytes: int = DEFAULT_MAX_BYTES
) -> ResponseCache:
    """`max_bytes` bounds the memory backend; Redis is bounded by its own maxmemory."""
    if redis is None:
        return MemoryCache(max_bytes)
    from nemorouter.state.cache_redis import RedisCache  # imported only when configured

    return RedisCache(redis, prefix=prefix)
