"""Deferred jobs (issue 20): the words the gateway's batch endpoints, the store and each
provider's batch API backend share.

A caller's batch (OpenAI `/v1/batches` over a JSONL file of chat-completion requests) is
split by the deployment each line routes to; each such *part* goes to that deployment's
provider batch API (Gemini API batch mode, Vertex AI batch inference, Anthropic Message
Batches, OpenAI Batch API) through a `DeferredBackend`, or, where the provider has none,
through the interactive path with pacing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from nemorouter.types.target import Target


class PartStatus(StrEnum):
    """Where one provider batch is, in OpenAI's batch vocabulary (the caller sees these)."""

    VALIDATING = "validating"  # accepted, not started
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"  # every line has an outcome (some may be errors)
    FAILED = "failed"  # the whole batch was refused or broke; no line outcomes
    EXPIRED = "expired"  # the provider's window passed; finished lines still have outcomes
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"  # finished lines still have outcomes

    @property
    def ended(self) -> bool:
        return self in (
            PartStatus.COMPLETED,
            PartStatus.FAILED,
            PartStatus.EXPIRED,
            PartStatus.CANCELLED,
        )


@dataclass(frozen=True, slots=True)
class DeferredLine:
    """One request of a part, already translated by the deployment's adapter.

    `custom_id` is unique within the part (the gateway's own id for the caller's line);
    `wire` is exactly the body the adapter's `prepare(target, body, media, stream=False)`
    gives for an interactive call (`UpstreamRequest.wire`), `path` its interactive path; the
    backend wraps them in its batch API's line format."""

    custom_id: str
    wire: dict[str, Any]
    path: str
    structured: str | None = None  # UpstreamRequest.structured (Claude: the forced tool name)


@dataclass(frozen=True, slots=True)
class PartProgress:
    """A provider batch's state as last polled."""

    status: PartStatus
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    message: str | None = None  # why a batch FAILED (the provider's words; never a secret)


@dataclass(frozen=True, slots=True)
class LineOutcome:
    """One line's result, translated back to the OpenAI chat-completion format.

    Exactly one of `response` (a `chat.completion` object with `usage`, the model label of
    the target, as an interactive answer would be) or `error` (`{"code", "message"}`) is
    set. `usage` is the OpenAI usage dict the line is costed from (the response's, or the
    usage a provider reports for a failed line, else None)."""

    custom_id: str
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    usage: dict[str, Any] | None = field(default=None)


class DeferredBackend(Protocol):
    """One provider endpoint's batch API (built once per provider config, like an adapter).

    Every call may raise `types.upstream.UpstreamFailure` (classified like interactive
    calls); the gateway retries polling with backoff and never loses a submitted part:
    the provider id returned by `submit` is stored before anything else happens."""

    async def submit(self, target: Target, lines: Sequence[DeferredLine]) -> str:
        """Create the provider batch for `lines` (all for `target`); its provider id."""
        ...

    async def poll(self, provider_id: str) -> PartProgress: ...

    def results(
        self, target: Target, provider_id: str, lines: Sequence[DeferredLine]
    ) -> AsyncIterator[LineOutcome]:
        """Every line outcome of an ended batch (a line with no outcome is reported as an
        error line `{"code": "no_result"}` by the caller, not here)."""
        ...

    async def cancel(self, provider_id: str) -> None: ...

    async def close(self) -> None: ...
