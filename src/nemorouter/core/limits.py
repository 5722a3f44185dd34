"""Per-key and per-team RPM / TPM: sliding windows (state/), checked before routing.

Over a limit: 429 `rate_limit_exceeded` with `retry-after`, the time until the next slot
that fits this request (computed from the window, not a constant). A request larger than
a TPM limit by itself can never fit: 429 without `retry-after`, as OpenAI answers it.
Tokens are reserved from the request's estimate and settled with the real usage.
"""

from __future__ import annotations

from nemorouter.core.auth import Caller
from nemorouter.core.errors import GatewayError
from nemorouter.state.types import Decision, key_subject, team_subject
from nemorouter.state.windows import WindowStore


class KeyLimits:
    def __init__(self, windows: WindowStore) -> None:
        self.windows = windows

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
        decision = await self.windows.acquire(subjects, 1, tokens)
        if not decision.allowed:
            raise rate_limited(decision, key.name)
        return decision

    async def settle(self, decision: Decision | None, actual_tokens: int | None) -> None:
        """The real token count once known; a request that never ran keeps its slot
        (it was sent to the gateway) but not its tokens."""
        if decision is None or decision.reservation is None:
            return
        await self.windows.settle(decision.reservation, actual_tokens or 0)


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
