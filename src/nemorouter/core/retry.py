"""Retry policy per failure class: how often, and how long to wait before the same deployment.

A retry goes to another deployment of the link at once when there is one; only a retry on
the same deployment waits: the provider's hint (retry-after, Google RetryInfo) when it is
at most the class's `max_wait_s` (a longer hint gives the link up: the chain moves on),
else an exponential backoff with jitter.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from nemorouter.types.upstream import FailureKind, UpstreamFailure

# The classes a policy names; any other kind is never retried on the same link.
CLASSES = (
    FailureKind.TIMEOUT,
    FailureKind.CONNECTION,
    FailureKind.SERVER_ERROR,
    FailureKind.RATE_LIMITED,
)
# Kinds with no policy of their own that follow another class's: a malformed 200 and a
# credential failure are the deployment's fault like a 5xx.
_FOLLOWS = {
    FailureKind.MALFORMED: FailureKind.SERVER_ERROR,
    FailureKind.AUTH: FailureKind.SERVER_ERROR,
}


class RetryPolicy:
    __slots__ = ("_max_wait", "_random", "_retries", "base_s", "cap_s", "jitter")

    def __init__(
        self,
        retries: int | dict[FailureKind, int] = 1,
        max_wait_s: float | dict[FailureKind, float] = 10.0,
        base_s: float = 0.1,
        cap_s: float = 5.0,
        jitter: float = 0.5,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._retries = _per_class(retries)
        self._max_wait = _per_class(max_wait_s)
        self.base_s = base_s
        self.cap_s = cap_s
        self.jitter = jitter
        self._random = rand

    @classmethod
    def from_settings(cls, settings: Any) -> RetryPolicy:
        """From config.Settings: `retry.<class>` overrides, `retries` the default count."""
        retry = settings.retry
        counts: dict[FailureKind, int] = {}
        waits: dict[FailureKind, float] = {}
        for kind in CLASSES:
            own = getattr(retry, kind.value)
            counts[kind] = settings.retries if own.retries is None else own.retries
            waits[kind] = retry.max_wait_s if own.max_wait_s is None else own.max_wait_s
        return cls(counts, waits, retry.backoff_base_s, retry.backoff_cap_s, retry.jitter)

    def retries(self, kind: FailureKind) -> int:
        """Retries a failure of this class gets within one link (0 for other kinds)."""
        return self._retries.get(_FOLLOWS.get(kind, kind), 0)

    def max_wait_s(self, kind: FailureKind) -> float:
        return self._max_wait.get(_FOLLOWS.get(kind, kind), 0.0)

    def backoff(self, retry: int) -> float:
        """Seconds before retry number `retry` (1-based) when the provider gave no hint."""
        full = min(self.cap_s, self.base_s * (2 ** (retry - 1)))
        return full * (1.0 - self.jitter * self._random())

    def wait(self, failure: UpstreamFailure, retry: int) -> float | None:
        """Seconds to wait before retrying the same deployment, or None to give it up."""
        hint = failure.retry_after
        if hint is not None:
            return hint if hint <= self.max_wait_s(failure.kind) else None
        return self.backoff(retry)


def _per_class(value: Any) -> dict[FailureKind, Any]:
    return dict(value) if isinstance(value, dict) else dict.fromkeys(CLASSES, value)
