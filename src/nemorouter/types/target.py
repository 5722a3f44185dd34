"""A deployment as an adapter sees it: where a call goes and what the model can do.

Built once at start from the deployment's configuration merged with the catalog's facts
(the deployment's own values win), so the adapter that sends a call, the budget that
reserves its worst case and the router that checks the context window all read the same
numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from nemorouter.types.prices import Pricing


@dataclass(frozen=True, slots=True)
class Target:
    deployment_id: str
    provider_model: str  # the model name sent upstream
    model: str  # the configured model name: the label every answer reports
    max_output_tokens: int | None  # the most the model may write; None (or 0): unknown
    context_window: int  # tokens; 0: unknown
    pricing: Pricing | None  # None: unknown, the call is not costed
    # The max_tokens a non-streaming call is sent when the client names none, if lower than
    # max_output_tokens (Claude: see core/deployments `nonstreaming_default`).
    nonstreaming_max_tokens: int | None = None

    def default_max_tokens(self, stream: bool) -> int | None:
        """What a call that names no limit may write: the adapter sends it, the budget
        reserves it."""
        if not stream and self.nonstreaming_max_tokens is not None:
            return self.nonstreaming_max_tokens
        return self.max_output_tokens
