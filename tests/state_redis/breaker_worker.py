"""One gateway-like process holding shared circuit breakers (run by test_redis_breaker).

    breaker_worker.py URL PREFIX COOLDOWN_S

Prints "ready", then answers one JSON line per command line on stdin:
`fail N` (N failures of deployment "d"), `success`, `claim` (the router's attempt),
`peek` (the local view as the background refresh left it), `state` (refresh, then peek),
`quit`.
"""

from __future__ import annotations

import asyncio
import json
import sys

from redis.asyncio import Redis

from nemorouter.state.breaker_memory import FailureCounter
from nemorouter.state.breaker_redis import RedisBreakers

REFRESH_S = 0.05


async def main(argv: list[str]) -> None:
    url, prefix, cooldown_s = argv
    breakers = RedisBreakers(
        Redis.from_url(url),
        FailureCounter(3),
        float(cooldown_s),
        ["d"],
        prefix=prefix,
        probe_ttl_s=10.0,
        refresh_s=REFRESH_S,
    )
    await breakers.start()
    print("ready", flush=True)
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).split()
        if not line or line[0] == "quit":
            break
        answer: object = None
        if line[0] == "fail":
            for _ in range(int(line[1])):
                breakers.failure("d")
        elif line[0] == "success":
            breakers.success("d")
        elif line[0] == "claim":
            answer = await breakers.attempt("d")
        elif line[0] == "state":
            await breakers.refresh()
        await breakers.flush()
        view = {"open": breakers.is_open("d"), "available": breakers.available("d")}
        print(json.dumps({"answer": answer, **view}), flush=True)
    await breakers.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
