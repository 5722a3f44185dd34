"""What a provider's 200 must hold to be taken as an answer.

A 200 whose body is an error object, has the wrong shape, or reports usage no real call has
(negative, fractional, or beyond `MAX_TOKENS`) is not an answer: it is a provider failure of
kind `malformed`, retried and failed over like a 5xx, and never reaches the client or the
spend ledger as a success. Checked here for the OpenAI format (passed through as it comes);
the translating adapters check their own wire format with `malformed` and `token_count`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from nemorouter.types.upstream import FailureKind, UpstreamFailure

# More tokens than any model's window: a count beyond it is the provider's mistake (and
# would overflow the spend store's integer columns once priced).
MAX_TOKENS = 1 << 31
_USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
_DETAIL_COUNTS = {
    "prompt_tokens_details": ("cached_tokens",),
    "completion_tokens_details": ("reasoning_tokens",),
}

T = TypeVar("T")


def malformed(who: str, what: str) -> UpstreamFailure:
    return UpstreamFailure(FailureKind.MALFORMED, f"{who} answered 200 with {what}", status=200)


def token_count(value: Any, name: str, who: str) -> int:
    """A reported token count (absent: 0); anything but 0..MAX_TOKENS is malformed."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise malformed(who, f"an impossible {name} ({str(value)[:40]})")
    return value


def check_usage(usage: Any, who: str) -> None:
    """OpenAI-shaped usage (or none at all)."""
    if usage is None:
        return
    if not isinstance(usage, dict):
        raise malformed(who, "usage that is not an object")
    for name in _USAGE_COUNTS:
        token_count(usage.get(name), f"usage.{name}", who)
    for group, names in _DETAIL_COUNTS.items():
        details = usage.get(group)
        if details is None:
            continue
        if not isinstance(details, dict):
            raise malformed(who, f"usage.{group} that is not an object")
        for name in names:
            token_count(details.get(name), f"usage.{group}.{name}", who)


def _error_text(data: dict[str, Any]) -> str:
    error = data.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    return str(message)[:200]


def check_completion(data: dict[str, Any], who: str) -> dict[str, Any]:
    """An OpenAI chat.completion: no error object, a non-empty list of choices each with a
    message, and believable usage."""
    if data.get("error") is not None:
        raise malformed(who, f"an error object: {_error_text(data)}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise malformed(who, "no list of choices")
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            raise malformed(who, "a choice without a message object")
    check_usage(data.get("usage"), who)
    return data


def check_chunk(chunk: dict[str, Any], who: str) -> dict[str, Any]:
    """An OpenAI chat.completion.chunk: a list of choices (empty for the usage chunk) whose
    deltas are objects, and believable usage."""
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise malformed(who, "a stream chunk whose choices are not a list")
    for choice in choices:
        if not isinstance(choice, dict):
            raise malformed(who, "a stream chunk whose choice is not an object")
        delta = choice.get("delta")
        if delta is not None and not isinstance(delta, dict):
            raise malformed(who, "a stream chunk whose delta is not an object")
    check_usage(chunk.get("usage"), who)
    return chunk


def translated(who: str, translate: Callable[[], T]) -> T:
    """`translate()` of a provider answer; a shape it cannot read is that answer's fault."""
    try:
        return translate()
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise malformed(who, f"a shape that cannot be translated ({type(exc).__name__})") from None
