"""Is the gateway there at all? Consecutive connection failures mean nobody is listening.

A connection failure is the gateway's address not taking the request: refused, a name that
does not resolve, a connect timeout, or the connection closed or reset before a complete
answer. An HTTP answer of any status (a 5xx too) proves the gateway is there, and so does a
slow answer running out of time (the connection was made): both reset the count.

The job stops after UNREACHABLE_AFTER_FAILURES failures in a row spanning at least
UNREACHABLE_AFTER_S seconds: a gateway restarting (a second or two) does not end a long job,
a gateway that is not running ends it within a few seconds instead of 90.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nemorouter.providers.http_connection import UpstreamDisconnected, UpstreamTimeout

UNREACHABLE_AFTER_FAILURES = 3
UNREACHABLE_AFTER_S = 2.0


def is_connection_failure(exc: BaseException) -> bool:
    """True for "could not reach the gateway", False for "it was reached but was too slow"."""
    if isinstance(exc, UpstreamDisconnected):
        return True
    # The pool's connect timeout ("cannot connect to HOST in time") vs the answer's deadline.
    return isinstance(exc, UpstreamTimeout) and str(exc).startswith("cannot connect")


class Reachability:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.failures = 0
        self.first_failure_at: float | None = None
        self.last_error = ""

    def reached(self) -> None:
        self.failures = 0
        self.first_failure_at = None

    def failed(self, exc: BaseException) -> bool:
        """Count one connection failure; True once the gateway is to be taken as unreachable."""
        now = self._clock()
        self.failures += 1
        if self.first_failure_at is None:
            self.first_failure_at = now
        self.last_error = str(exc)
        return (
            self.failures >= UNREACHABLE_AFTER_FAILURES
            and now - self.first_failure_at >= UNREACHABLE_AFTER_S
        )

    def span_s(self) -> float:
        return 0.0 if self.first_failure_at is None else self._clock() - self.first_failure_at
