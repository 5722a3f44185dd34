"""Circuit breakers, one per deployment: stop calling a deployment that keeps failing.

Closed: calls go through; `threshold` consecutive retryable failures open it. Open: the
deployment is skipped with no network call for `cooldown_s`. Half-open: after the
cooldown one probe goes through; success closes the breaker, failure re-opens it.
In-process state; sharing it through Redis comes with the state backends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("nemorouter.breaker")


class _State:
    __slots__ = ("failures", "opened_at", "probing")

    def __init__(self) -> None:
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False


class Breakers:
    def __init__(
        self, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._states: dict[str, _State] = {}

    def available(self, deployment_id: str) -> bool:
        """May a call go to this deployment now (closed, or half-open with no probe out)?"""
        state = self._states.get(deployment_id)
        if state is None or state.opened_at is None:
            return True
        return not state.probing and self._clock() - state.opened_at >= self.cooldown_s

    def attempt(self, deployment_id: str) -> None:
        """A call is going out; past the cooldown it is the half-open probe."""
        state = self._states.get(deployment_id)
        if state is not None and state.opened_at is not None:
            state.probing = True

    def success(self, deployment_id: str) -> None:
        state = self._states.get(deployment_id)
        if state is not None:
            if state.opened_at is not None:
                log.info("circuit of deployment %s closed again", deployment_id)
            del self._states[deployment_id]

    def failure(self, deployment_id: str) -> None:
        state = self._states.setdefault(deployment_id, _State())
        state.failures += 1
        if state.probing or (state.opened_at is None and state.failures >= self.threshold):
            state.opened_at = self._clock()
            state.probing = False
            log.warning(
                "circuit of deployment %s open for %gs after %d consecutive failures",
                deployment_id, self.cooldown_s, state.failures,
            )  # fmt: skip

    def is_open(self, deployment_id: str) -> bool:
        state = self._states.get(deployment_id)
        return state is not None and state.opened_at is not None
