"""A shared store (Redis, the database) that cannot be reached, as the state layer reports it.

The state backends turn a connection failure into `Unavailable`; core decides what it means
for the request (a 503 with retry-after, or going on without the store: docs/gateway.md "Outages").
Only the exception path pays for this: nothing is checked while the stores answer.
"""

from __future__ import annotations

import logging
import time

from redis import exceptions as redis_errors

# Failures that mean "the server cannot serve now", not "this command is wrong": a refused
# or lost connection, a timeout, a server still loading, a replica or a cluster failing over.
REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    OSError,
    TimeoutError,
)

LOG_EVERY_S = 30.0


class Unavailable(Exception):
    """`what` (e.g. "Redis (budgets)") could not be reached; the cause is chained."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is unreachable")
        self.what = what


class OutageLog:
    """One warning per concern per LOG_EVERY_S: an outage must not log once per request."""

    def __init__(self, logger: logging.Logger, every_s: float = LOG_EVERY_S) -> None:
        self._log = logger
        self._every_s = every_s
        self._last: dict[str, float] = {}

    def warn(self, what: str, exc: BaseException | None, consequence: str) -> None:
        now = time.monotonic()
        if now - self._last.get(what, -self._every_s) >= self._every_s:
            self._last[what] = now
            cause = f"{type(exc).__name__}: {exc}" if exc is not None else "unreachable"
            self._log.warning("%s unreachable (%s); %s", what, cause, consequence)
