"""The OpenAI response envelopes, built in one place: a `chat.completion`, a
`chat.completion.chunk` and the stream's closing usage-only chunk.

The adapters (Gemini, Claude) translate their providers' answers into these; the response
cache rebuilds a completion from a relayed stream and replays a stored one as chunks.
"""

from __future__ import annotations

from typing import Any

COMPLETION = "chat.completion"
CHUNK = "chat.completion.chunk"


def completion(
    id: str | None,
    created: int | None,
    model: str | None,
    choices: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    system_fingerprint: str | None = None,
) -> dict[str, Any]:
    """A `chat.completion`; `usage` and `system_fingerprint` only when known."""
    answer: dict[str, Any] = {
        "id": id,
        "object": COMPLETION,
        "created": created,
        "model": model,
        "choices": choices,
    }
    if system_fingerprint is not None:
        answer["system_fingerprint"] = system_fingerprint
    if usage is not None:
        answer["usage"] = usage
    return answer


def message_choice(
    index: int, message: dict[str, Any], finish_reason: str | None, logprobs: Any = None
) -> dict[str, Any]:
    """One choice of a completion."""
    return {
        "index": index,
        "message": message,
        "logprobs": logprobs,
        "finish_reason": finish_reason,
    }


def delta_choice(
    index: int, delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None
) -> dict[str, Any]:
    """One choice of a chunk."""
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}


def chunk(
    id: str | None,
    created: int | None,
    model: str | None,
    choices: list[dict[str, Any]],
    include_usage: bool,
    system_fingerprint: str | None = None,
) -> dict[str, Any]:
    """A `chat.completion.chunk`. When the stream ends with a usage chunk, every other chunk
    carries `usage: null`, as OpenAI's do."""
    out: dict[str, Any] = {
        "id": id,
        "object": CHUNK,
        "created": created,
        "model": model,
        "choices": choices,
    }
    if system_fingerprint is not None:
        out["system_fingerprint"] = system_fingerprint
    if include_usage:
        out["usage"] = None
    return out


def usage_chunk(
    id: str | None,
    created: int | None,
    model: str | None,
    usage: dict[str, Any] | None,
    system_fingerprint: str | None = None,
) -> dict[str, Any]:
    """The stream's closing chunk: no choices, the call's usage."""
    out = chunk(id, created, model, [], False, system_fingerprint)
    out["usage"] = usage
    return out
