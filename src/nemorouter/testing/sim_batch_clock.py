"""What the simulated batch APIs share: how a batch moves through time, and how a line is
answered by the simulator's own interactive path.

A simulated batch of n lines finishes line i at `created + delay_s * (i + 1) / n`, so a poll
part-way sees part of it done. A cancel stops it: lines finished by then keep their answers,
the rest are cancelled, and the batch ends `cancel_lag_s` later. `expire_s` (shorter than
`delay_s`) makes it expire: lines not finished by then are expired. Each line's answer is
computed at submission by the simulator's interactive handler (same validation, same
answers, same usage), so a line the interactive API would refuse fails alone. The magic
prompt word `SIM_BATCH_FAIL` makes a line fail with a server error (a partial failure).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import msgspec

FAIL_WORD = b"SIM_BATCH_FAIL"


@dataclass
class BatchTiming:
    """The settable timing of a simulator's batches (seconds)."""

    delay_s: float = 0.5
    expire_s: float | None = None  # None: never expires within a test
    cancel_lag_s: float = 0.05


@dataclass
class SimBatch:
    id: str
    keys: list[str]
    answers: list[tuple[int, Any]]  # per line: the interactive status and JSON body
    timing: BatchTiming
    created: float = field(default_factory=time.time)
    cancelled_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what a wire format keeps besides

    def done_at(self, i: int) -> float:
        return self.created + self.timing.delay_s * (i + 1) / len(self.keys)

    @property
    def cutoff(self) -> float:
        """When processing stops: the end of the last line, a cancel, or expiry."""
        end = self.done_at(len(self.keys) - 1)
        if self.cancelled_at is not None:
            end = min(end, self.cancelled_at)
        if self.timing.expire_s is not None:
            end = min(end, self.created + self.timing.expire_s)
        return end

    @property
    def expires_at(self) -> float:
        return self.created + (self.timing.expire_s or 86400.0)

    def ended_at(self) -> float:
        if self.cancelled_at is not None and self.cancelled_at <= self.done_at(len(self.keys) - 1):
            return self.cancelled_at + self.timing.cancel_lag_s
        return self.cutoff

    def ended(self, now: float | None = None) -> bool:
        return (now or time.time()) >= self.ended_at()

    def cancelling(self, now: float | None = None) -> bool:
        return self.cancelled_at is not None and not self.ended(now)

    def expired(self) -> bool:
        """Whether expiry (not a cancel or the end) stopped it, leaving lines undone."""
        if self.timing.expire_s is None:
            return False
        deadline = self.created + self.timing.expire_s
        return deadline < self.done_at(len(self.keys) - 1) and (
            self.cancelled_at is None or deadline < self.cancelled_at
        )

    def line_state(self, i: int, now: float | None = None) -> str:
        """done | processing | cancelled | expired (the last two only once stopped)."""
        now = now or time.time()
        if self.done_at(i) <= min(now, self.cutoff):
            return "done"
        if now < self.cutoff:
            return "processing"
        return "expired" if self.expired() else "cancelled"

    def counts(self, now: float | None = None) -> dict[str, int]:
        out = {"done": 0, "ok": 0, "failed": 0, "processing": 0, "cancelled": 0, "expired": 0}
        for i in range(len(self.keys)):
            state = self.line_state(i, now)
            out[state] += 1
            if state == "done":
                out["ok" if self.answers[i][0] == 200 else "failed"] += 1
        return out


def reply_json(reply: bytes) -> tuple[int, Any]:
    """A simulator's complete HTTP reply (as `_answer` renders it) as (status, JSON body)."""
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, msgspec.json.decode(body)
    except msgspec.DecodeError:
        return status, {"error": {"message": body.decode("utf-8", "replace")[:200]}}


def rfc3339(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1e6):06d}Z"
