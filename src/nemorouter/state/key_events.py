"""Key changes (revocation, edits) reach every instance at once, through Redis pub/sub.

Each instance drops the changed key from its key cache when the message arrives. After a
lost connection an instance cannot know what it missed, so it drops its whole cache. While
Redis is down it tries to subscribe again every RECONNECT_S (logged once per outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from nemorouter.state.unavailable import REDIS_DOWN

log = logging.getLogger("nemorouter.state")
RECONNECT_S = 1.0


class KeyEvents:
    def __init__(
        self, client: Redis, channel: str, on_change: Callable[[str | None], None]
    ) -> None:
        self._client = client
        self._channel = channel
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="key-events")
        # Subscribed before the gateway serves, so no change made after start is missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def publish(self, key_id: str) -> None:
        """Tell every instance; with Redis down the change is stored all the same, and the
        others learn of it when they resubscribe (dropping their whole key cache) or when
        their cached copy expires, whichever comes first."""
        try:
            await self._client.publish(self._channel, key_id)
        except REDIS_DOWN as exc:
            log.warning(
                "key events: change of key %s not published (Redis unreachable: %s); other "
                "instances see it when Redis is back or within their key cache TTL",
                key_id, type(exc).__name__,
            )  # fmt: skip

    async def _listen(self) -> None:
        first = True
        lost = False
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    if not first:
                        self._on_change(None)  # whatever changed while we were away
                    if lost:
                        log.warning("key events: Redis reachable again; subscribed")
                    first = lost = False
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            data = message["data"]
                            self._on_change(data.decode() if isinstance(data, bytes) else str(data))
            except (RedisError, OSError) as exc:
                if not lost:
                    log.warning(
                        "key events: Redis connection lost (%s); reconnecting every %gs",
                        type(exc).__name__, RECONNECT_S,
                    )  # fmt: skip
                lost = True
                await asyncio.sleep(RECONNECT_S)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
