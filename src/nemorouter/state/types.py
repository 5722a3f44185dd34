"""Values shared by every window backend: who is limited, what was reserved, what was decided.

msgspec Structs, not dataclasses: a decision is built on every request, and a frozen
dataclass costs ~1.3 us to construct against ~0.1 us; gc=False since they hold no cycles.
"""

from __future__ import annotations

import math

import msgspec

WINDOW_S = 60.0  # RPM and TPM are per minute
NEVER = math.inf  # retry_after_s of a request that can never fit its limits


class Subject(msgspec.Struct, frozen=True, gc=False):
    """One limited thing (a key, a team, a deployment) and its limits; None = unlimited."""

    name: str
    rpm: int | None = None
    tpm: int | None = None

    @property
    def limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None


# Namespaced names, so a key id can never collide with a team or deployment id.
def key_subject(key_id: str, rpm: int | None, tpm: int | None) -> Subject:
    return Subject(f"key:{key_id}", rpm, tpm)


def team_subject(team_id: str, rpm: int | None, tpm: int | None) -> Subject:
    return Subject(f"team:{team_id}", rpm, tpm)


def deployment_subject(deployment_id: str, rpm: int | None, tpm: int | None) -> Subject:
    return Subject(f"deployment:{deployment_id}", rpm, tpm)


class Reservation(msgspec.Struct, gc=False):
    """What `acquire` counted; hand it back to `settle` or `release`.

    `handle` is the backend's own (memory: the log entry; Redis: unused, the id is enough).
    """

    id: str
    subjects: tuple[str, ...]
    at: float  # window-clock time of the reservation (memory: the injected clock; Redis: TIME)
    requests: int
    tokens: int
    handle: object = None


class WindowUsage(msgspec.Struct, frozen=True, gc=False):
    """One dimension (requests or tokens) of the header subject, for x-ratelimit-* headers."""

    limit: int
    remaining: int
    reset_s: float  # until the oldest counted usage leaves the window


class Decision(msgspec.Struct, frozen=True, gc=False):
    allowed: bool
    # 0 when allowed; else seconds until enough usage leaves the window for this request to
    # fit (given no other traffic); NEVER when it is larger than a limit.
    retry_after_s: float = 0.0
    reservation: Reservation | None = None
    # The header subject (the first one passed to acquire); None when it has no such limit.
    requests: WindowUsage | None = None
    tokens: WindowUsage | None = None
    limited_by: str | None = None  # name of the subject that refused
    reason: str | None = None  # for the error message
    waited_s: float = 0.0  # time spent queued (quota gate only)

    @property
    def never(self) -> bool:
        """The request exceeds a limit by itself: waiting cannot help."""
        return self.retry_after_s == NEVER

    def headers(self) -> dict[str, str]:
        """OpenAI's x-ratelimit-* headers for the header subject, plus retry-after if refused."""
        out: dict[str, str] = {}
        for kind, usage in (("requests", self.requests), ("tokens", self.tokens)):
            if usage is not None:
                out[f"x-ratelimit-limit-{kind}"] = str(usage.limit)
                out[f"x-ratelimit-remaining-{kind}"] = str(usage.remaining)
                out[f"x-ratelimit-reset-{kind}"] = format_duration(usage.reset_s)
        if not self.allowed and not self.never:
            # whole seconds, rounded up: a client retrying on time must not be refused again
            out["retry-after"] = str(max(1, math.ceil(self.retry_after_s)))
        return out


ALLOWED = Decision(True)  # nothing limited: shared, never mutated


def format_duration(seconds: float) -> str:
    """Go's time.Duration format, as OpenAI's reset headers use: "20ms", "1s", "8.64s", "6m0s"."""
    ms = math.ceil(seconds * 1000.0 - 1e-6)  # up, so a client is never early; 1e-6: float noise
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    minutes, ms = divmod(ms, 60_000)
    hours, minutes = divmod(minutes, 60)
    secs = f"{ms // 1000}.{ms % 1000:03d}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs
