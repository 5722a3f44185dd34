"""Rate windows and the deployment quota gate over one backend: Redis when the wiring hands
a client (a redis_url is configured), else memory.

Deployment quotas are counted over a window QUOTA_GUARD_S longer than the provider's.
The gateway reserves a request a moment before the provider counts it (the dispatch:
serialisation, the connection, the network), and that moment varies from request to
request. When the provider's sliding window is exactly full, a request dispatched
faster than the one it replaces (the one that just left the gateway's window) lands
inside the provider's window and is refused with a 429. Any window of W = 60 s + guard
on the gateway's side holds at most the quota, so the provider sees at most the quota in
any 60 s as long as the dispatch times of two requests differ by less than the guard.
The cost is guard / (60 s + guard) of the quota: 1.6 % at 1 s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from nemorouter.state.memory import MemoryWindows
from nemorouter.state.quota import QuotaGate
from nemorouter.state.types import WINDOW_S
from nemorouter.state.windows import WindowStore

QUOTA_GUARD_S = 1.0  # see the module docstring


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
    quotas: QuotaGate  # deployment quotas: same backend (and Redis client), guarded window

    async def aclose(self) -> None:
        # The quota windows share this store's Redis client (memory ones hold nothing).
        await self.windows.aclose()


def build_windows(
    redis: Redis | None, prefix: str = "nemo:rl:", window_s: float = WINDOW_S
) -> WindowStore:
    if redis is None:
        return MemoryWindows(window_s=window_s)
    from nemorouter.state.redis_windows import RedisWindows  # imported only when configured

    return RedisWindows(redis, prefix=prefix, window_s=window_s)


def _quota_windows(windows: WindowStore, window_s: float) -> WindowStore:
    """A store like `windows` (same backend, same Redis client) over `window_s`."""
    if isinstance(windows, MemoryWindows):
        return MemoryWindows(window_s=window_s)
    from nemorouter.state.redis_windows import RedisWindows

    assert isinstance(windows, RedisWindows)
    return windows.with_window(window_s)


def build_state(
    redis: Redis | None,
    deployments: Iterable[_HasQuota] = (),
    prefix: str = "nemo:rl:",
    window_s: float = WINDOW_S,
    guard_s: float = QUOTA_GUARD_S,
) -> State:
    """`redis` is the worker's one client (None: memory), `deployments` config.Config's.

    `window_s` other than 60 s is for tests (short windows); `guard_s` widens the quota
    windows only (see the module docstring)."""
    windows = build_windows(redis, prefix, window_s)
    quota_windows = _quota_windows(windows, window_s + guard_s) if guard_s else windows
    quotas = QuotaGate(quota_windows, {d.id: (d.rpm, d.tpm) for d in deployments})
    return State(windows, quotas)
