"""The tokens a request reserves against a tpm quota (the canonical request itself lives on
the floor: types/request.py)."""

from __future__ import annotations

from nemorouter.core.prompt_correction import PromptCorrection
from nemorouter.types.image_tokens import ANY
from nemorouter.types.request import DEFAULT_COMPLETION_TOKENS, PDF_PAGE_TOKENS, ChatRequest


def reserve_tokens(
    request: ChatRequest,
    rule: str = ANY,
    correction: PromptCorrection | None = None,
    pdf_page_tokens: int = PDF_PAGE_TOKENS,
) -> int:
    """Tokens a request reserves against a tpm quota: its prompt estimate (for a known
    deployment: under its image rule and learned correction) plus the output it allows
    itself (max_completion_tokens / max_tokens), else DEFAULT_COMPLETION_TOKENS. A PDF of
    unknown length counts no pages here: the reservation is settled with the real usage."""
    out = request.max_output or DEFAULT_COMPLETION_TOKENS
    prompt = request.prompt_tokens_for(rule, pdf_page_tokens, worst=False)
    if correction is not None:
        prompt = correction.apply(prompt)
    return prompt + out
