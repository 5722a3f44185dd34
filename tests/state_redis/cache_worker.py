"""One gateway-like process using the shared Redis response cache (run by test_redis_cache).

    cache_worker.py URL PREFIX write|read

Both modes compute the cache key of the same page request (a PNG made here, wrapped
differently by each mode). `write` stores a completion under it; `read` polls the
cache for up to 10 s and prints the completion id it finds (or "miss").
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from redis.asyncio import Redis

from nemorouter.core.cache_entry import decode_entry, encode_entry, new_entry
from nemorouter.core.cache_key import cache_key
from nemorouter.state.cache_redis import RedisCache
from tests.unit.cache.images import data_url, image_body, page_png


async def main(url: str, prefix: str, mode: str) -> None:
    png = page_png()
    wrapped = data_url(png, "data:image/png;name=p1.png;base64,", wrap=mode == "read")
    key = cache_key(image_body(wrapped), "document-vision", "team:t1")
    cache = RedisCache(Redis.from_url(url), prefix=prefix)
    try:
        if mode == "write":
            response = {"id": f"chatcmpl-from-{key[:8]}", "choices": [], "object": "x"}
            entry = new_entry(response, Decimal("0.0042"), "gemini-2.5-pro", "pro-us")
            await cache.set(key, encode_entry(entry), 60)
            print("stored", flush=True)
            return
        print("ready", flush=True)
        for _ in range(1000):
            value = await cache.get(key)
            if value is not None:
                entry = decode_entry(value)
                assert entry is not None
                print(entry.response["id"], entry.cost_usd, flush=True)
                return
            await asyncio.sleep(0.01)
        print("miss", flush=True)
    finally:
        await cache.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
