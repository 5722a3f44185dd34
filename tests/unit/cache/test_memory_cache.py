"""The memory backend: LRU bounded by bytes, TTL on read (fake clock), and the factory."""

from __future__ import annotations

from nemorouter.state.cache import build_cache
from nemorouter.state.cache_memory import ENTRY_OVERHEAD, MemoryCache
from tests.unit.state.fakes import FakeClock

KEY_LEN = 64


def k(i: int) -> str:
    return f"{i:064x}"


def entry_cost(value_len: int) -> int:
    return KEY_LEN + value_len + ENTRY_OVERHEAD


async def test_get_set_and_overwrite() -> None:
    cache = MemoryCache()
    assert await cache.get(k(1)) is None
    await cache.set(k(1), b"one", 60)
    assert await cache.get(k(1)) == b"one"
    await cache.set(k(1), b"uno!", 60)
    assert await cache.get(k(1)) == b"uno!"
    assert len(cache) == 1 and cache.size == entry_cost(4)


async def test_bounded_in_bytes_least_recently_used_goes_first() -> None:
    cache = MemoryCache(max_bytes=3 * entry_cost(1000))
    for i in range(3):
        await cache.set(k(i), bytes(1000), 60)
    assert cache.size == 3 * entry_cost(1000)
    assert await cache.get(k(0)) is not None  # 0 is now the most recent; 1 the least
    await cache.set(k(3), bytes(1000), 60)
    assert await cache.get(k(1)) is None
    assert all([await cache.get(k(i)) for i in (0, 2, 3)])
    assert cache.size <= cache.max_bytes


async def test_one_large_value_evicts_as_many_as_needed() -> None:
    cache = MemoryCache(max_bytes=10 * entry_cost(100))
    for i in range(10):
        await cache.set(k(i), bytes(100), 60)
    await cache.set(k(99), bytes(5 * entry_cost(100)), 60)
    assert cache.size <= cache.max_bytes
    assert await cache.get(k(99)) is not None
    assert await cache.get(k(0)) is None and await cache.get(k(9)) is not None


async def test_value_larger_than_the_cache_is_not_stored() -> None:
    cache = MemoryCache(max_bytes=entry_cost(100))
    await cache.set(k(1), bytes(100), 60)
    await cache.set(k(2), bytes(101), 60)
    assert await cache.get(k(2)) is None
    assert await cache.get(k(1)) is not None  # and did not empty the cache


async def test_ttl_checked_on_read() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set(k(1), b"v", 10)
    clock.advance(9.999)
    assert await cache.get(k(1)) == b"v"
    clock.advance(0.001)
    assert await cache.get(k(1)) is None
    assert len(cache) == 0 and cache.size == 0  # the expired entry is dropped


async def test_ttl_zero_means_no_expiry() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set(k(1), b"v", 0)
    clock.advance(10**9)
    assert await cache.get(k(1)) == b"v"


async def test_overwrite_renews_the_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set(k(1), b"v", 10)
    clock.advance(8)
    await cache.set(k(1), b"w", 10)
    clock.advance(8)
    assert await cache.get(k(1)) == b"w"


async def test_factory_picks_memory_without_redis_url() -> None:
    cache = build_cache(None, max_bytes=1234)
    assert isinstance(cache, MemoryCache) and cache.max_bytes == 1234
    await cache.set(k(1), b"v", 60)
    assert await cache.get(k(1)) == b"v"
    await cache.aclose()
