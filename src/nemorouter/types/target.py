"""A deployment as an adapter sees it: where a call goes and what the model can do.

Built once at start from the deployment's configuration merged with the catalog's facts
(the deployment's own values win), so the adapter that sends a call, the budget that
reserves its worst case and the router that checks the context window all read the same
numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from nemorouter.types.prices import Pricing

# Request parameters a model answers 400 to (catalog `refuses`, with its source). Each name
# is one rule the adapter applies to the canonical request before translating it:
TEMPERATURE = "temperature"  # never sent
TOP_P = "top_p"  # never sent
TOP_P_WITH_TEMPERATURE = "top_p_with_temperature"  # both set: top_p is dropped
NON_DEFAULT_TEMPERATURE = "non_default_temperature"  # only temperature 1 is sent
MAX_TOKENS = "max_tokens"  # renamed max_completion_tokens
PRESENCE_PENALTY = "presence_penalty"  # never sent
FREQUENCY_PENALTY = "frequency_penalty"  # never sent
PARAM_RULES = frozenset(
    {
        TEMPERATURE,
        TOP_P,
        TOP_P_WITH_TEMPERATURE,
        NON_DEFAULT_TEMPERATURE,
        MAX_TOKENS,
        PRESENCE_PENALTY,
        FREQUENCY_PENALTY,
    }
)

# How a model answers a `json_schema` response format (catalog `structured_output`):
# natively, or (Claude without native structured outputs at its provider) by one forced tool
# call whose input is the answer.
NATIVE = "native"
TOOL = "tool"


@dataclass(frozen=True, slots=True)
class Target:
    deployment_id: str
    provider_model: str  # the model name sent upstream
    model: str  # the configured model name: the label every answer reports
    max_output_tokens: int | None  # the most the model may write; None (or 0): unknown
    context_window: int  # tokens; 0: unknown
    pricing: Pricing | None  # None: unknown, the call is not costed
    refuses: frozenset[str] = frozenset()  # PARAM_RULES names: parameters it answers 400 to
    native_structured: bool = False  # json_schema answered natively (Claude: else a tool)
    # The max_tokens a non-streaming call is sent when the client names none, if lower than
    # max_output_tokens (Claude: see core/deployments `nonstreaming_default`).
    nonstreaming_max_tokens: int | None = None

    def default_max_tokens(self, stream: bool) -> int | None:
        """What a call that names no limit may write: the adapter sends it, the budget
        reserves it."""
        if not stream and self.nonstreaming_max_tokens is not None:
            return self.nonstreaming_max_tokens
        return self.max_output_tokens
