"""Choose the state backend once, at start: Redis when a redis_url is configured, else memory."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from nemorouter.state.memory import MemoryWindows
from nemorouter.state.quota import QuotaGate
from nemorouter.state.windows import WindowStore


class _HasRedisUrl(Protocol):
    @property
    def redis_url(self) -> str | None: ...


class _HasQuota(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def rpm(self) -> int | None: ...
    @property
    def tpm(self) -> int | None: ...


@dataclass(slots=True)
class State:
    windows: WindowStore  # key and team RPM/TPM
    quotas: QuotaGate  # deployment quotas, on the same windows

    async def aclose(self) -> None:
        await self.windows.aclose()


def build_windows(redis_url: str | None, prefix: str = "nemo:rl:") -> WindowStore:
    if redis_url is None:
        return MemoryWindows()
    from redis.asyncio import Redis  # imported only when configured

    from nemorouter.state.redis_windows import RedisWindows

    return RedisWindows(Redis.from_url(redis_url), prefix=prefix)


def build_state(
    settings: _HasRedisUrl, deployments: Iterable[_HasQuota] = (), prefix: str = "nemo:rl:"
) -> State:
    """`settings` is config.Settings, `deployments` config.Config.deployments."""
    windows = build_windows(settings.redis_url, prefix)
    quotas = QuotaGate(windows, {d.id: (d.rpm, d.tpm) for d in deployments})
    return State(windows, quotas)
