"""One gateway-like process hammering a shared Redis window (run by test_redis_processes).

    worker.py URL PREFIX WINDOW_S RPM TPM TOKENS DURATION_S

Prints "ready" once connected, starts on a line "go" on stdin (so both workers start
together), acquires with 8 concurrent tasks for DURATION_S, and prints the server time of
every granted reservation as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from redis.asyncio import Redis

from nemorouter.state import key_subject
from nemorouter.state.redis_windows import RedisWindows


async def main(argv: list[str]) -> None:
    url, prefix, window_s, rpm, tpm, tokens, duration_s = argv
    limit = lambda v: None if v == "-" else int(v)  # noqa: E731
    subject = [key_subject("shared", limit(rpm), limit(tpm))]
    client = Redis.from_url(url)
    store = RedisWindows(client, prefix=prefix, window_s=float(window_s))
    granted: list[float] = []
    await client.ping()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    end = time.monotonic() + float(duration_s)

    async def hammer() -> None:
        while time.monotonic() < end:
            decision = await store.acquire(subject, tokens=int(tokens))
            if decision.allowed and decision.reservation is not None:
                granted.append(decision.reservation.at)

    await asyncio.gather(*(hammer() for _ in range(8)))
    await client.aclose()
    print(json.dumps(granted))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
