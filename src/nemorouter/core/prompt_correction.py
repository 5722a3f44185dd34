"""A deployment's learned ratio of reported to estimated prompt tokens.

The gateway's prompt estimate cannot see what a provider adds (system tokens, a tokenizer
that splits text finer, schema or tool definitions it counts as prompt). After each call
the ratio of the prompt tokens the provider reported to the gateway's own estimate is
folded in here, and later reservations for the deployment multiply their prompt estimate
by it. The factor rises at once to a larger ratio (so a budget is protected from the next
call on) and falls back slowly (DECAY per call) when calls report less; it is never below
1, so the estimate's own conservative rules are never weakened. One float per deployment
and per process, updated in the event loop: no lock, no I/O.
"""

from __future__ import annotations

import math

# Share of the gap closed per call when the ratio is lower: ~100 calls to lose most of it.
DECAY = 1 / 32
# A factor beyond this is a provider's accounting error, not overhead: it is not learned
# whole (an absurd report would otherwise block every budgeted caller for a long time).
MAX_FACTOR = 1000.0


class PromptCorrection:
    __slots__ = ("factor",)

    def __init__(self) -> None:
        self.factor = 1.0

    def apply(self, estimated_tokens: int) -> int:
        """The estimate scaled by the learned factor (tokens, rounded up)."""
        factor = self.factor
        return estimated_tokens if factor == 1.0 else math.ceil(estimated_tokens * factor)

    def observe(self, estimated_tokens: int, reported_tokens: int) -> float:
        """Fold one call's reported prompt tokens in; return that call's ratio."""
        if estimated_tokens <= 0 or reported_tokens <= 0:
            return 0.0
        ratio = min(reported_tokens / estimated_tokens, MAX_FACTOR)
        if ratio >= self.factor:
            self.factor = ratio
        else:
            self.factor = max(1.0, self.factor - (self.factor - ratio) * DECAY)
        return ratio
