"""The tokens a request reserves against a tpm quota; the canonical request itself lives on
the floor (types/request.py) and is re-exported here for the modules that read it as core's."""

from __future__ import annotations

from nemorouter.core.prompt_correction import PromptCorrection
from nemorouter.types.image_tokens import ANY
from nemorouter.types.request import (
    DEFAULT_COMPLETION_TOKENS,
    GATEWAY_FIELDS,
    MAX_JSON_DEPTH,
    MAX_TOKENS,
    ChatRequest,
    check_values,
    parse_chat_request,
)

__all__ = [
    "DEFAULT_COMPLETION_TOKENS",
    "GATEWAY_FIELDS",
    "MAX_JSON_DEPTH",
    "MAX_TOKENS",
    "ChatRequest",
    "check_values",
    "parse_chat_request",
    "reserve_tokens",
]


def reserve_tokens(
    request: ChatRequest, rule: str = ANY, correction: PromptCorrection | None = None
) -> int:
    """Tokens a request reserves against a tpm quota: its prompt estimate (for a known
    deployment: under its image rule and learned correction) plus the output it allows
    itself (max_completion_tokens / max_tokens), else DEFAULT_COMPLETION_TOKENS."""
    out = request.max_output or DEFAULT_COMPLETION_TOKENS
    prompt = request.prompt_tokens_for(rule)
    if correction is not None:
        prompt = correction.apply(prompt)
    return prompt + out
