"""The request parameters a model refuses, taken out of the canonical request before it is
translated (the target's `refuses`, from the catalog, where each rule's source is cited).

A refused parameter is a 400 that would stop the fallback chain for a request any other
model answers, so it is dropped (or, for `max_tokens`, renamed) and the change logged once
per deployment and rule. The canonical request is never changed in place: the next link
of the chain may take the parameter.
"""

from __future__ import annotations

import logging
from typing import Any

from nemorouter.types.target import (
    FREQUENCY_PENALTY,
    MAX_TOKENS,
    NON_DEFAULT_TEMPERATURE,
    PRESENCE_PENALTY,
    TEMPERATURE,
    TOP_P,
    TOP_P_WITH_TEMPERATURE,
    Target,
)

log = logging.getLogger(__name__)

_logged: set[tuple[str, str]] = set()  # (deployment, rule): bounded by the configuration


def _set(body: dict[str, Any], name: str) -> bool:
    return body.get(name) is not None


def _changes(body: dict[str, Any], refuses: frozenset[str]) -> dict[str, str | None]:
    """parameter -> its new name (None: dropped), for the rules that apply to `body`."""
    out: dict[str, str | None] = {}
    for name in (TEMPERATURE, TOP_P, PRESENCE_PENALTY, FREQUENCY_PENALTY):
        if name in refuses and _set(body, name):
            out[name] = None
    if TOP_P_WITH_TEMPERATURE in refuses and _set(body, "top_p") and _set(body, "temperature"):
        out["top_p"] = None  # keep the more common knob, as LiteLLM and the SDK users do
    temperature = body.get("temperature")
    if NON_DEFAULT_TEMPERATURE in refuses and temperature is not None and temperature != 1:
        out["temperature"] = None
    if MAX_TOKENS in refuses and _set(body, "max_tokens"):
        # max_completion_tokens, when the client sent both, is the one that counts already
        out["max_tokens"] = None if _set(body, "max_completion_tokens") else "max_completion_tokens"
    return out


def applied(target: Target, body: dict[str, Any]) -> dict[str, Any]:
    """`body` as `target`'s model takes it: the same object when no rule applies."""
    if not target.refuses:
        return body
    changes = _changes(body, target.refuses)
    if not changes:
        return body
    out = {k: v for k, v in body.items() if k not in changes}
    for name, renamed in changes.items():
        if renamed is not None:
            out[renamed] = body[name]
        if (target.deployment_id, name) not in _logged:
            _logged.add((target.deployment_id, name))
            what = f"renamed {renamed}" if renamed else "dropped"
            log.info(
                "deployment %s: %s refuses %s; %s (logged once)",
                target.deployment_id,
                target.provider_model,
                name,
                what,
            )
    return out
