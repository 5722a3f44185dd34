"""Client-side pacing: as many pages in flight as the gateway's limits allow, no more.

- `retry-after` on a 429 (or a 503) pauses every worker until then and halves the
  concurrency; each success adds back a little (additive increase, multiplicative decrease).
- A 402 with `retry-after` (the budget's rest is held by reservations of calls in flight)
  is the same news as a 429: fewer calls at once, after a pause.
- `x-ratelimit-remaining-requests` / `x-ratelimit-reset-requests` let the pacer see the
  window running out and wait for its reset instead of provoking a 429 storm.
- `stop()` ends the job: no request starts after it, waiting workers are woken to give up,
  while requests already sent finish (their answers are paid for and get written).
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
        self.budget_waits = 0  # 402s with a hint: budget held by reservations in flight
        self.stopped = False
        self._paused_until = 0.0
        self._remaining: int | None = None
        self._reset_at = 0.0
        self._changed = asyncio.Condition()

    async def acquire(self) -> bool:
        """Wait until another request may start; False once the job is stopping."""
        async with self._changed:
            while True:
                if self.stopped:
                    return False
                now = time.monotonic()
                wait = self._wait_s(now)
                if wait <= 0:
                    self.in_flight += 1
                    return True
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
            budget_held = status == 402 and hint is not None
            if status == 429 or budget_held or (status >= 500 and hint is not None):
                if budget_held:
                    self.budget_waits += 1
                else:
                    self.throttled += 1
                if now >= self._paused_until:  # once per burst: the rest of it is the same news
                    self.limit = max(1.0, self.limit / 2)
                self._paused_until = max(self._paused_until, now + (hint or DEFAULT_BACKOFF_S))
            elif status == 200:
                self.limit = min(float(self.max), self.limit + 1.0 / self.limit)
            self._changed.notify_all()

    async def backoff(self, seconds: float) -> None:
        """Sleep before a retry, cut short if the job stops meanwhile."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self.stopped), seconds)

    async def stop(self) -> None:
        """No request starts from now on; workers waiting for a slot are woken to give up."""
        async with self._changed:
            self.stopped = True
            self._changed.notify_all()
