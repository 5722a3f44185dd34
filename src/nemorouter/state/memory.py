"""In-process sliding-log windows: the default backend, on the hot path of every request.

Synchronous inside (the async methods never suspend), so a check-and-reserve over several
subjects is atomic with respect to the event loop. One log entry ([time, requests, tokens])
is shared by every subject of a reservation; settle and release mutate it in place.
Times are integer microseconds: float seconds would put an entry a hair inside or outside
the window at exactly retry_after, and the boundary must be exact.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence

from nemorouter.state.types import (
    ALLOWED,
    NEVER,
    WINDOW_S,
    Decision,
    Reservation,
    Subject,
    WindowUsage,
)

_T, _R, _K = 0, 1, 2  # entry fields: time, requests, tokens


class _Window:
    __slots__ = ("log", "requests", "tokens")

    def __init__(self) -> None:
        self.log: deque[list[int]] = deque()
        self.requests = 0
        self.tokens = 0

    def prune(self, cutoff: int) -> None:
        log = self.log
        while log and log[0][_T] <= cutoff:
            entry = log.popleft()
            self.requests -= entry[_R]
            self.tokens -= entry[_K]

    def wait(self, field: int, excess: int, cutoff: int) -> int:
        """Microseconds until `excess` units of `field` have left the window."""
        freed = 0
        for entry in self.log:
            freed += entry[field]
            if freed >= excess:
                return entry[_T] - cutoff
        return 0  # unreachable while the request fits the limit


def never_reason(subject: Subject, requests: int, tokens: int) -> str | None:
    """Why a request can never fit this subject, if it cannot."""
    if subject.tpm is not None and tokens > subject.tpm:
        return f"request of {tokens} tokens exceeds {subject.name}'s limit of {subject.tpm} tokens per minute"
    if subject.rpm is not None and requests > subject.rpm:
        return f"{subject.name} allows {subject.rpm} requests per minute"
    return None


def refused_reason(subject: Subject, by_tokens: bool) -> str:
    if by_tokens:
        return f"{subject.name} is over its limit of {subject.tpm} tokens per minute"
    return f"{subject.name} is over its limit of {subject.rpm} requests per minute"


class MemoryWindows:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, window_s: float = WINDOW_S
    ) -> None:
        self.window_s = window_s
        self._window_us = round(window_s * 1e6)
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._ids = itertools.count(1)

    async def acquire(
        self, subjects: Sequence[Subject], requests: int = 1, tokens: int = 0
    ) -> Decision:
        return self.acquire_now(subjects, requests, tokens)

    def acquire_now(
        self, subjects: Sequence[Subject], requests: int = 1, tokens: int = 0
    ) -> Decision:
        """The whole acquire, synchronous; written for speed (it runs on every request)."""
        now = round(self._clock() * 1e6)
        cutoff = now - self._window_us
        windows: list[_Window] = []
        names: list[str] = []
        worst = 0
        blocker: Subject | None = None
        by_tokens = False
        for subject in subjects:
            rpm, tpm = subject.rpm, subject.tpm
            if rpm is None and tpm is None:
                continue
            if (tpm is not None and tokens > tpm) or (rpm is not None and requests > rpm):
                reason = never_reason(subject, requests, tokens)
                return Decision(False, NEVER, limited_by=subject.name, reason=reason)
            window = self._windows.get(subject.name)
            if window is None:
                window = self._windows[subject.name] = _Window()
            log = window.log
            if log and log[0][_T] <= cutoff:
                window.prune(cutoff)
            windows.append(window)
            names.append(subject.name)
            if rpm is not None and window.requests + requests > rpm:
                wait = window.wait(_R, window.requests + requests - rpm, cutoff)
                if blocker is None or wait > worst:
                    worst, blocker, by_tokens = wait, subject, False
            if tpm is not None and window.tokens + tokens > tpm:
                wait = window.wait(_K, window.tokens + tokens - tpm, cutoff)
                if blocker is None or wait > worst:
                    worst, blocker, by_tokens = wait, subject, True
        if blocker is not None:
            req_usage, tok_usage = self._usage(subjects[0], windows[0], now)
            return Decision(
                False,
                worst / 1e6,
                requests=req_usage,
                tokens=tok_usage,
                limited_by=blocker.name,
                reason=refused_reason(blocker, by_tokens),
            )
        if not windows:
            return ALLOWED
        entry = [now, requests, tokens]
        for window in windows:
            window.log.append(entry)
            window.requests += requests
            window.tokens += tokens
        reservation = Reservation(
            f"m{next(self._ids)}", tuple(names), now / 1e6, requests, tokens, entry
        )
        req_usage, tok_usage = self._usage(subjects[0], windows[0], now)
        return Decision(True, 0.0, reservation, req_usage, tok_usage)

    def _usage(
        self, head: Subject, window: _Window, now: int
    ) -> tuple[WindowUsage | None, WindowUsage | None]:
        """The header subject's windows (`window` is its own only when it is limited)."""
        rpm, tpm = head.rpm, head.tpm
        if rpm is None and tpm is None:
            return None, None
        log = window.log
        reset = (log[0][_T] + self._window_us - now) / 1e6 if log else 0.0
        req = tok = None
        if rpm is not None:
            used = window.requests
            req = WindowUsage(rpm, rpm - used if used < rpm else 0, reset)
        if tpm is not None:
            used = window.tokens
            tok = WindowUsage(tpm, tpm - used if used < tpm else 0, reset)
        return req, tok

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        self._adjust(reservation, reservation.requests, actual_tokens)

    async def release(self, reservation: Reservation) -> None:
        self._adjust(reservation, 0, 0)

    def _adjust(self, reservation: Reservation, requests: int, tokens: int) -> None:
        entry = reservation.handle
        assert isinstance(entry, list)
        cutoff = round(self._clock() * 1e6) - self._window_us
        d_req, d_tok = requests - entry[_R], tokens - entry[_K]
        for name in reservation.subjects:
            window = self._windows[name]
            window.prune(cutoff)
            # entries only leave through prune, in time order: past it, the entry is counted
            if entry[_T] > cutoff:
                window.requests += d_req
                window.tokens += d_tok
        entry[_R], entry[_K] = requests, tokens
        reservation.requests, reservation.tokens = requests, tokens

    async def aclose(self) -> None:
        pass
