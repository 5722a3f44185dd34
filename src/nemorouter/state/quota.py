"""Provider deployment quotas: each deployment's rpm/tpm is a ceiling the gateway never exceeds.

`try_acquire` never waits, so the router can prefer another deployment of the same model
that has room. `acquire` waits in a FIFO queue per deployment (within this process) until
the window has room or the timeout passes (then the caller fails over). Only the head of
a queue touches the window: it sleeps until the decision's retry_after (when the oldest
blocking usage leaves the window), or until a settle/release frees room early, never
polling. Leaving the queue (served, timed out or cancelled) hands the head to the next.

With the windows in Redis and Redis unreachable, the gate fails closed: `Unavailable`
(a 503 to the client), never an uncounted call. The quota is the provider's, shared by
every instance; calls past it come back as provider 429s, which cost retries, trip the
breakers and slow every key, not only the one that sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping

from msgspec.structs import replace

from nemorouter.state.types import ALLOWED, Decision, Reservation, Subject, deployment_subject
from nemorouter.state.unavailable import Unavailable
from nemorouter.state.windows import WindowStore

# A head re-checks at least this often: in a shared (Redis) window another process's
# settle can free room earlier than the computed time, and only this process is woken.
RECHECK_S = 5.0
QUOTAS = "Redis (deployment quotas)"


class WaitStats:
    """Queue waits of gated acquires (0 for the ones served at once), for p50/p99."""

    def __init__(self, size: int = 100_000) -> None:
        self.waits: deque[float] = deque(maxlen=size)
        self.served = 0
        self.timeouts = 0

    def record(self, waited_s: float, served: bool) -> None:
        self.waits.append(waited_s)
        if served:
            self.served += 1
        else:
            self.timeouts += 1

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the recorded waits, in seconds (0 when none)."""
        if not self.waits:
            return 0.0
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]

    def summary(self) -> dict[str, float]:
        return {
            "served": self.served,
            "timeouts": self.timeouts,
            "p50_s": self.percentile(50),
            "p99_s": self.percentile(99),
            "max_s": max(self.waits, default=0.0),
        }


class _Waiter:
    __slots__ = ("event", "wake_at", "woken")

    def __init__(self) -> None:
        self.event: asyncio.Event | None = None  # made only when it has to wait (most don't)
        self.woken = False
        self.wake_at = 0.0  # loop time the head means to re-check (for try_acquire's hint)

    def wake(self) -> None:
        self.woken = True
        if self.event is not None:
            self.event.set()

    async def sleep(self, seconds: float) -> None:
        """Until `seconds` pass or wake() is called (also if called before this)."""
        if self.woken:
            return
        if self.event is None:
            self.event = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), seconds)


class QuotaGate:
    def __init__(
        self,
        windows: WindowStore,
        quotas: Mapping[str, tuple[int | None, int | None]],
        recheck_s: float = RECHECK_S,
    ) -> None:
        """`quotas`: deployment id -> (rpm, tpm); a deployment with neither is not gated."""
        self._windows = windows
        self._recheck_s = recheck_s
        self._subjects: dict[str, Subject] = {}
        self._queues: dict[str, deque[_Waiter]] = {}
        for deployment_id, (rpm, tpm) in quotas.items():
            subject = deployment_subject(deployment_id, rpm, tpm)
            if subject.limited:
                self._subjects[deployment_id] = subject
                self._queues[subject.name] = deque()
        self.stats = WaitStats()

    def gated(self, deployment_id: str) -> bool:
        return deployment_id in self._subjects

    def queued(self, deployment_id: str) -> int:
        subject = self._subjects.get(deployment_id)
        return 0 if subject is None else len(self._queues[subject.name])

    async def try_acquire(self, deployment_id: str, tokens: int = 0) -> Decision:
        """Reserve one request and `tokens` now if the window has room and nobody is queued."""
        subject = self._subjects.get(deployment_id)
        if subject is None:
            return ALLOWED
        queue = self._queues[subject.name]
        if queue:  # the queued callers come first
            hint = max(0.0, queue[0].wake_at - asyncio.get_running_loop().time())
            return Decision(
                False,
                hint,
                limited_by=subject.name,
                reason=f"{len(queue)} requests are queued for {subject.name}'s quota",
            )
        try:
            return await self._windows.acquire((subject,), 1, tokens)
        except Unavailable as exc:
            raise Unavailable(QUOTAS) from exc

    async def acquire(self, deployment_id: str, tokens: int, timeout_s: float) -> Decision:
        """Wait in arrival order for room, at most `timeout_s`; refused on timeout or never."""
        subject = self._subjects.get(deployment_id)
        if subject is None:
            return ALLOWED
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + timeout_s
        queue = self._queues[subject.name]
        waiter = _Waiter()
        queue.append(waiter)
        last: Decision | None = None
        try:
            while True:
                if queue[0] is waiter:
                    waiter.woken = False  # a wake-up from here on means "look again"
                    if waiter.event is not None:
                        waiter.event.clear()
                    try:
                        last = await self._windows.acquire((subject,), 1, tokens)
                    except Unavailable as exc:
                        raise Unavailable(QUOTAS) from exc
                    if last.allowed:
                        waited = loop.time() - start
                        self.stats.record(waited, True)
                        return _with_wait(last, waited)
                    if last.never:  # waiting cannot help: neither a wait nor a timeout
                        return last
                    delay = min(last.retry_after_s, self._recheck_s)
                else:
                    delay = deadline - loop.time()  # woken when it becomes the head
                now = loop.time()
                remaining = deadline - now
                if remaining <= 0:
                    return self._timed_out(subject, last, now - start, timeout_s)
                waiter.wake_at = now + min(delay, remaining)
                await waiter.sleep(min(delay, remaining))
        finally:
            _leave(queue, waiter)

    def _timed_out(
        self, subject: Subject, last: Decision | None, waited: float, timeout_s: float
    ) -> Decision:
        self.stats.record(waited, False)
        retry = 0.0 if last is None else last.retry_after_s
        return Decision(
            False,
            retry,
            requests=None if last is None else last.requests,
            tokens=None if last is None else last.tokens,
            limited_by=subject.name,
            reason=f"no room in {subject.name}'s quota within {timeout_s:g}s",
            waited_s=waited,
        )

    async def settle(self, reservation: Reservation | None, actual_tokens: int) -> None:
        if reservation is None:
            return
        freed = actual_tokens < reservation.tokens
        await self._windows.settle(reservation, actual_tokens)
        if freed:
            self._wake_heads(reservation)

    async def release(self, reservation: Reservation | None) -> None:
        """The request was never sent: give its request and tokens back."""
        if reservation is None:
            return
        await self._windows.release(reservation)
        self._wake_heads(reservation)

    def _wake_heads(self, reservation: Reservation) -> None:
        for name in reservation.subjects:
            queue = self._queues.get(name)
            if queue:
                queue[0].wake()


def _leave(queue: deque[_Waiter], waiter: _Waiter) -> None:
    if queue and queue[0] is waiter:
        queue.popleft()
        if queue:
            queue[0].wake()  # the next in line tries at once
    else:
        queue.remove(waiter)


def _with_wait(decision: Decision, waited: float) -> Decision:
    return decision if waited <= 0.0 else replace(decision, waited_s=waited)
