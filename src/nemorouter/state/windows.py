"""The one interface both window backends (memory, Redis) implement.

Each limited subject has a sliding log of its reservations over the last `window_s`
seconds: (time, requests, tokens) per entry, plus running totals. A log, not fixed
windows, so there is no double burst at a window edge; not sub-buckets, so a refused
request's retry_after is exact (it fits at that instant, and not a millisecond before) and
the count is never approximate. It costs one entry per request per subject while the
entry is in the window (at most rpm entries for an rpm-limited subject) and, amortised,
O(1) work per acquire: each entry is appended once and pruned once. Only a refusal walks
the log, to find when enough usage will have left it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from nemorouter.state.types import Decision, Reservation, Subject


class WindowStore(Protocol):
    window_s: float

    async def acquire(
        self, subjects: Sequence[Subject], requests: int = 1, tokens: int = 0
    ) -> Decision:
        """Reserve `requests` and `tokens` in every subject, only if all have room (atomic).
        A shared backend that cannot be reached raises state.unavailable.Unavailable (so do
        settle and release).

        The first subject is the header subject (its usage is reported in the decision).
        Subjects with no limit are not tracked.
        """
        ...

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        """Replace the reserved token estimate by the real count (no-op once out of window)."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Un-count a reservation whose request was never sent."""
        ...

    async def aclose(self) -> None: ...
