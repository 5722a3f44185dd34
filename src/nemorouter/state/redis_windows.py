"""Redis sliding-log windows: N gateway processes share one budget of requests and tokens.

One EVALSHA per acquire (one round trip); the script is loaded on first use and again
after a NOSCRIPT (a restarted or flushed server). An unreachable server raises
state.unavailable.Unavailable (the caller decides: 503 or going on uncounted).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from nemorouter.state.lua_script import LuaScript
from nemorouter.state.memory import never_reason, refused_reason
from nemorouter.state.redis_lua import ACQUIRE, ADJUST
from nemorouter.state.types import (
    NEVER,
    WINDOW_S,
    Decision,
    Reservation,
    Subject,
    WindowUsage,
)
from nemorouter.state.unavailable import REDIS_DOWN, Unavailable

_TTL_MARGIN_MS = 1000  # the hash's TTL past the window; the log keeps one more second


_ACQUIRE = LuaScript(ACQUIRE)
_ADJUST = LuaScript(ADJUST)


class RedisWindows:
    def __init__(
        self,
        client: Redis,
        prefix: str = "nemo:rl:",
        window_s: float = WINDOW_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`clock` replaces the server's TIME: for tests with a fake clock only."""
        self.window_s = window_s
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._window_us = str(round(window_s * 1e6))
        self._ttl_ms = int(window_s * 1000) + _TTL_MARGIN_MS
        # ids unique across processes and restarts: a random process tag and a counter
        self._tag = os.urandom(6).hex()
        self._ids = itertools.count(1)

    def with_window(self, window_s: float) -> RedisWindows:
        """The same client, prefix and clock over another window length (a client
        closed through either store is closed for both)."""
        other = RedisWindows(self._client, self._prefix, window_s, self._clock)
        other._tag = self._tag  # one id space: reservation ids stay unique per process
        other._ids = self._ids
        return other

    def _keys(self, names: Sequence[str]) -> list[str]:
        keys: list[str] = []
        for name in names:
            keys.append(f"{self._prefix}{name}:log")
            keys.append(f"{self._prefix}{name}:sum")
        return keys

    def _now_arg(self) -> str:
        return "" if self._clock is None else str(round(self._clock() * 1e6))

    async def acquire(
        self, subjects: Sequence[Subject], requests: int = 1, tokens: int = 0
    ) -> Decision:
        limited = [s for s in subjects if s.limited]
        if not limited:
            return Decision(True)
        for subject in limited:  # no round trip for a request that can never fit
            reason = never_reason(subject, requests, tokens)
            if reason is not None:
                return Decision(False, NEVER, limited_by=subject.name, reason=reason)
        rid = f"{self._tag}.{next(self._ids)}"
        args: list[str | int] = [
            self._window_us,
            self._now_arg(),
            requests,
            tokens,
            rid,
            self._ttl_ms,
        ]
        for subject in limited:
            args.append(-1 if subject.rpm is None else subject.rpm)
            args.append(-1 if subject.tpm is None else subject.tpm)
        names = [s.name for s in limited]
        try:
            status, blocker, retry, used_r, used_t, reset, now, dim = await _ACQUIRE(
                self._client, self._keys(names), args
            )
        except REDIS_DOWN as exc:
            raise Unavailable("Redis") from exc
        req_usage = tok_usage = None
        head = subjects[0]
        if head.limited:
            reset_s = int(reset) / 1e6
            if head.rpm is not None:
                req_usage = WindowUsage(head.rpm, max(0, head.rpm - int(used_r)), reset_s)
            if head.tpm is not None:
                tok_usage = WindowUsage(head.tpm, max(0, head.tpm - int(used_t)), reset_s)
        if int(status) == 1:
            reservation = Reservation(rid, tuple(names), int(now) / 1e6, requests, tokens)
            return Decision(True, 0.0, reservation, req_usage, tok_usage)
        by = limited[int(blocker) - 1]
        return Decision(
            False,
            int(retry) / 1e6,
            requests=req_usage,
            tokens=tok_usage,
            limited_by=by.name,
            reason=refused_reason(by, dim in (b"t", "t")),
        )

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        await self._adjust(reservation, reservation.requests, actual_tokens)

    async def release(self, reservation: Reservation) -> None:
        await self._adjust(reservation, 0, 0)

    async def _adjust(self, reservation: Reservation, requests: int, tokens: int) -> None:
        args: list[str | int] = [
            self._window_us,
            self._now_arg(),
            reservation.id,
            requests,
            tokens,
            self._ttl_ms,
        ]
        try:
            await _ADJUST(self._client, self._keys(reservation.subjects), args)
        except REDIS_DOWN as exc:
            raise Unavailable("Redis") from exc
        reservation.requests, reservation.tokens = requests, tokens

    async def aclose(self) -> None:
        await self._client.aclose()
