"""Per-key and per-team RPM / TPM: sliding windows (state/), checked before routing.

Over a limit: 429 `rate_limit_exceeded` with `retry-after`, the time until the next slot
that fits this request (computed from the window, not a constant). A request larger than
a TPM limit by itself can never fit: 429 without `retry-after`, as OpenAI answers it.
Tokens are reserved from the request's estimate and settled with the real usage.

Windows in Redis and Redis unreachable: 503 `service_unavailable` with `retry-after`
(`settings.redis_down.rate_limits: closed`, the default), or the request goes through
uncounted (`open`). A settle that fails is logged, never the request's failure.
"""

from __future__ import annotations

import logging

from nemorouter.core.auth import Caller
from nemorouter.state.types import Decision, key_subject, team_subject
from nemorouter.state.unavailable import OutageLog, Unavailable
from nemorouter.state.windows import WindowStore
from nemorouter.types.errors import GatewayError, service_unavailable

log = logging.getLogger("nemorouter.limits")
_outages = OutageLog(log)
LIMITS = "Redis (key rate limits)"


class KeyLimits:
    def __init__(self, windows: WindowStore, fail_open: bool = False) -> None:
        self.windows = windows
        self.fail_open = fail_open

    async def admit(self, caller: Caller, tokens: int) -> Decision | None:
        """Count the request against its key's and team's limits, or raise 429."""
        key = caller.key
        if key is None:
            return None  # the master key has no limits
        subjects = [key_subject(key.id, key.rpm, key.tpm)]
        team = caller.team
        if team is not None and (team.rpm is not None or team.tpm is not None):
            subjects.append(team_subject(team.id, team.rpm, team.tpm))
        if not any(subject.limited for subject in subjects):
            return None
        try:
            decision = await self.windows.acquire(subjects, 1, tokens)
        except Unavailable as exc:
            if not self.fail_open:
                raise service_unavailable(LIMITS) from exc
            _outages.warn(LIMITS, exc.__cause__, "requests go through uncounted (fail open)")
            return None
        if not decision.allowed:
            raise rate_limited(decision, key.name)
        return decision

    async def settle(self, decision: Decision | None, actual_tokens: int | None) -> None:
        """The real token count once known; a request that never ran keeps its slot
        (it was sent to the gateway) but not its tokens."""
        if decision is None or decision.reservation is None:
            return
        try:
            await self.windows.settle(decision.reservation, actual_tokens or 0)
        except Unavailable as exc:
            _outages.warn(LIMITS, exc.__cause__, "a request's real token count was not recorded")


def rate_limited(decision: Decision, key_name: str) -> GatewayError:
    limited_by = (decision.limited_by or "").replace(":", " ", 1)
    if decision.never:
        message = f"This request is larger than the {limited_by} limit allows ({decision.reason})."
    else:
        message = (
            f"Rate limit of {limited_by or f'key {key_name!r}'} reached ({decision.reason}); "
            f"retry after {decision.retry_after_s:.3f}s."
        )
    return GatewayError(429, "rate_limit_exceeded", message, headers=decision.headers())
