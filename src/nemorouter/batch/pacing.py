"""Client-side pacing: as many pages in flight as the gateway's limits allow, no more.

- `retry-after` on a 429 (or a 503) pauses every worker until then and halves the
  concurrency; each success adds back a little (additive increase, multiplicative decrease).
- `x-ratelimit-remaining-requests` / `x-ratelimit-reset-requests` let the pacer see the
  window running out and wait for its reset instead of provoking a 429 storm.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DEFAULT_BACKOFF_S = 1.0


def parse_duration(value: str) -> float | None:
    """Seconds from "12", "1.5", "20ms", "8.64s" or Go-style "6m0s"."""
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


class Pacer:
    def __init__(self, max_concurrency: int) -> None:
        self.max = max_concurrency
        self.limit = float(max_concurrency)
        self.in_flight = 0
        self.throttled = 0  # 429s (and 503s with a hint) seen
        self._paused_until = 0.0
        self._remaining: int | None = None
        self._reset_at = 0.0
        self._changed = asyncio.Condition()

    async def acquire(self) -> None:
        """Wait until another request may start."""
        async with self._changed:
            while True:
                now = time.monotonic()
                wait = self._wait_s(now)
                if wait <= 0:
                    self.in_flight += 1
                    return
                with contextlib.suppress(TimeoutError):  # time to look again
                    await asyncio.wait_for(self._changed.wait(), timeout=wait)

    def _wait_s(self, now: float) -> float:
        if now < self._paused_until:
            return self._paused_until - now
        if self._remaining is not None and self._remaining <= self.in_flight:
            if now < self._reset_at:
                return self._reset_at - now
            self._remaining = None  # the window has reset
        if self.in_flight >= max(1, int(self.limit)):
            return 60.0  # woken by a release
        return 0.0

    async def release(self, status: int, headers: Mapping[str, str]) -> None:
        now = time.monotonic()
        async with self._changed:
            self.in_flight -= 1
            remaining = headers.get("x-ratelimit-remaining-requests")
            reset = parse_duration(headers.get("x-ratelimit-reset-requests", ""))
            if remaining is not None and remaining.isdigit():
                self._remaining = int(remaining)
                self._reset_at = now + (reset if reset is not None else DEFAULT_BACKOFF_S)
            hint = parse_duration(headers.get("retry-after", ""))
            if status == 429 or (status >= 500 and hint is not None):
                self.throttled += 1
                if now >= self._paused_until:  # once per burst: the rest of it is the same news
                    self.limit = max(1.0, self.limit / 2)
                self._paused_until = max(self._paused_until, now + (hint or DEFAULT_BACKOFF_S))
            elif status == 200:
                self.limit = min(float(self.max), self.limit + 1.0 / self.limit)
            self._changed.notify_all()
