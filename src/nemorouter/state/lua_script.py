"""A Lua script run by SHA on a Redis server (shared by the windows and the budgets)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import NoScriptError


class LuaScript:
    """EVALSHA, loading the script on NOSCRIPT."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(
        self, client: Redis, keys: Sequence[str], args: Sequence[str | int]
    ) -> list[Any]:
        try:
            reply = await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:  # a restarted or flushed server: load it, run it again
            await client.script_load(self.source)
            reply = await client.evalsha(self.sha, len(keys), *keys, *args)
        return cast(list[Any], reply)
