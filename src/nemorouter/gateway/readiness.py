"""GET /health/ready: may this instance take traffic? The store, Redis (when configured)
and the spend writer, each checked with a bound, all at once: a dead dependency makes the
probe answer 503 within CHECK_TIMEOUT_S, never hang it."""

from __future__ import annotations

import asyncio
from typing import Any

from nemorouter.wiring import Services

CHECK_TIMEOUT_S = 2.0


async def readiness(services: Services) -> tuple[int, dict[str, Any]]:
    """(status code, body): 200 `ready`, or 503 `unavailable` naming what is down."""
    if not services.started:
        return 503, {"status": "starting"}
    store_ok, redis_ok = await asyncio.gather(
        services.store.ready(),  # bounded by store.engine.ping
        _redis_answers(services),
    )
    checks = {"store": "ok" if store_ok else "unreachable"}
    if services.redis is not None:
        checks["redis"] = "ok" if redis_ok else "unreachable"
    checks["spend_writer"] = "ok" if services.store.writer.healthy else "failing"
    down = [name for name, state in checks.items() if state != "ok"]
    if down:
        body = {"status": "unavailable", "down": down, "checks": checks}
        body["store"] = services.store.description
        return 503, body
    return 200, {"status": "ready", "deployments": len(services.config.deployments)}


async def _redis_answers(services: Services) -> bool:
    if services.redis is None:
        return True
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await services.redis.ping()
    except Exception:  # any failure is "not ready"; the reason is in the gateway's log
        return False
    return True
