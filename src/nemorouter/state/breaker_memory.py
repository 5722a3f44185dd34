"""Circuit breakers, one per deployment: stop calling a deployment that keeps failing.

Closed: calls go through. It opens after `threshold` consecutive failures, or when at least
`failure_rate` of the calls of the last `window_s` failed (once there were `min_calls`).
Open: the deployment is skipped with no network call for `cooldown_s`. Half-open: after the
cooldown one probe goes through; its success closes the breaker, its failure re-opens it.
Answers of calls that started before the breaker opened do not change an open breaker, and
a success of a call that started before the current run of failures does not end that run:
when a deployment dies, the calls already in flight still finish well for a while (a page
takes seconds), and would otherwise keep resetting the count while new calls all fail.

`Breakers` keeps this in the process; with Redis, state/breaker_redis.py shares the open /
half-open state between instances (each counts its own calls: see there). The wiring picks
one at start.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("nemorouter.breaker")

Clock = Callable[[], float]
# The rate window is counted in this many buckets: memory and work per call stay constant
# whatever the traffic; the window slides in steps of window_s / BUCKETS.
BUCKETS = 10


class BreakerStore(Protocol):
    """What the router asks of the breakers (memory or shared through Redis)."""

    cooldown_s: float
    clock: Clock  # the time a call starts, as `success` / `failure` take it

    def available(self, deployment_id: str) -> bool:
        """May a call go to this deployment now (closed, or half-open with no probe out)?
        The hot path: no I/O."""
        ...

    async def attempt(self, deployment_id: str) -> bool:
        """A call is about to go out; past the cooldown it is the probe, which only one
        caller gets: False means someone else has it (skip the deployment)."""
        ...

    def success(self, deployment_id: str, started: float | None = None) -> None:
        """A call that started at `started` (self.clock) found the deployment up."""
        ...

    def failure(self, deployment_id: str, started: float | None = None) -> None: ...

    def release(self, deployment_id: str) -> None:
        """A call ended with no verdict on the deployment (cancelled, cut by the request's
        deadline): a probe it held may be given to someone else."""
        ...

    def is_open(self, deployment_id: str) -> bool: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class _Counts:
    __slots__ = ("calls", "consecutive", "failures", "since", "slots")

    def __init__(self) -> None:
        self.consecutive = 0
        self.since = math.inf  # when the earliest call of the current run of failures started
        self.slots = [-1] * BUCKETS  # the bucket number each slot currently counts
        self.calls = [0] * BUCKETS
        self.failures = [0] * BUCKETS


class FailureCounter:
    """Consecutive failures and the failure rate over a sliding window, per deployment."""

    def __init__(
        self,
        threshold: int,
        failure_rate: float | None = None,
        window_s: float = 60.0,
        min_calls: int = 20,
        clock: Clock = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.failure_rate = failure_rate
        self.window_s = window_s
        self.min_calls = min_calls
        self._width = window_s / BUCKETS
        self._clock = clock
        self._counts: dict[str, _Counts] = {}

    def _bucket(self, counts: _Counts) -> int:
        number = int(self._clock() / self._width)
        slot = number % BUCKETS
        if counts.slots[slot] != number:  # a bucket from an earlier turn of the ring
            counts.slots[slot] = number
            counts.calls[slot] = counts.failures[slot] = 0
        return slot

    def ok(self, deployment_id: str, started: float | None = None) -> None:
        counts = self._counts.get(deployment_id)
        if counts is None:
            if self.failure_rate is None:
                return  # nothing to count until a failure
            counts = self._counts[deployment_id] = _Counts()
        if started is None or started >= counts.since:
            counts.consecutive, counts.since = 0, math.inf
        if self.failure_rate is not None:
            counts.calls[self._bucket(counts)] += 1

    def failed(self, deployment_id: str, started: float | None = None) -> str | None:
        """Count a failure; the reason to open the breaker now, if there is one."""
        counts = self._counts.get(deployment_id)
        if counts is None:
            counts = self._counts[deployment_id] = _Counts()
        counts.consecutive += 1
        if started is not None and started < counts.since:
            counts.since = started
        if counts.consecutive >= self.threshold:
            return f"{counts.consecutive} consecutive failures"
        if self.failure_rate is None:
            return None
        slot = self._bucket(counts)
        counts.calls[slot] += 1
        counts.failures[slot] += 1
        oldest = counts.slots[slot] - BUCKETS + 1
        calls = failures = 0
        for i in range(BUCKETS):
            if counts.slots[i] >= oldest:
                calls += counts.calls[i]
                failures += counts.failures[i]
        if calls >= self.min_calls and failures >= self.failure_rate * calls:
            return f"{failures} of {calls} calls failed in {self.window_s:g}s"
        return None

    def reset(self, deployment_id: str) -> None:
        self._counts.pop(deployment_id, None)


class _Open:
    __slots__ = ("opened_at", "probing")

    def __init__(self, opened_at: float) -> None:
        self.opened_at = opened_at
        self.probing = False


class Breakers:
    """In-process breakers (BreakerStore)."""

    def __init__(
        self,
        threshold: int,
        cooldown_s: float,
        clock: Clock = time.monotonic,
        *,
        failure_rate: float | None = None,
        window_s: float = 60.0,
        min_calls: int = 20,
    ) -> None:
        self.cooldown_s = cooldown_s
        self.clock = self._clock = clock
        self.counter = FailureCounter(threshold, failure_rate, window_s, min_calls, clock)
        self._open: dict[str, _Open] = {}

    def available(self, deployment_id: str) -> bool:
        state = self._open.get(deployment_id)
        if state is None:
            return True
        return not state.probing and self._clock() - state.opened_at >= self.cooldown_s

    async def attempt(self, deployment_id: str) -> bool:
        state = self._open.get(deployment_id)
        if state is None:
            return True
        if state.probing or self._clock() - state.opened_at < self.cooldown_s:
            return False
        state.probing = True
        return True

    def success(self, deployment_id: str, started: float | None = None) -> None:
        state = self._open.get(deployment_id)
        if state is None:
            self.counter.ok(deployment_id, started)
        elif state.probing:
            del self._open[deployment_id]
            self.counter.reset(deployment_id)
            log.info("circuit of deployment %s closed again", deployment_id)

    def failure(self, deployment_id: str, started: float | None = None) -> None:
        state = self._open.get(deployment_id)
        if state is not None:
            if state.probing:
                state.opened_at, state.probing = self._clock(), False
                log.warning(
                    "circuit of deployment %s open again for %gs: the probe failed",
                    deployment_id, self.cooldown_s,
                )  # fmt: skip
            return
        reason = self.counter.failed(deployment_id, started)
        if reason is not None:
            self._open[deployment_id] = _Open(self._clock())
            log.warning(
                "circuit of deployment %s open for %gs after %s",
                deployment_id, self.cooldown_s, reason,
            )  # fmt: skip

    def release(self, deployment_id: str) -> None:
        state = self._open.get(deployment_id)
        if state is not None:
            state.probing = False

    def is_open(self, deployment_id: str) -> bool:
        return deployment_id in self._open

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
