"""Upstream failures and their kinds, and the open chunk stream: the words adapters speak and
the router, retry policy and pipeline read, so neither package owns them."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Any, Protocol


class FailureKind(enum.StrEnum):
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    # The provider refused the request itself (bad image, bad parameter): no point retrying.
    CLIENT_ERROR = "client_error"
    # The prompt does not fit the model's context window (a 400 too): retrying the same
    # model cannot help, a later chain link with a larger window may.
    CONTEXT_WINDOW = "context_window"
    # The gateway's own ceiling for the deployment (its rpm/tpm quota) had no room in time:
    # nothing was sent; the chain moves on.
    QUOTA = "quota"
    # The provider answered 200 with something that is not a usable answer (an error object,
    # the wrong shape, absurd usage, broken or oversized compression): its fault, like a 5xx,
    # so it is retried and failed over under the server_error policy.
    MALFORMED = "malformed"
    # The deployment's own credentials failed: no access token could be had (the token
    # endpoint or metadata server refused or was unreachable). Nothing reached the provider;
    # the deployment's fault, like a 5xx, so it is retried and failed over under the
    # server_error policy and counted by the breaker.
    AUTH = "auth"


RETRYABLE = frozenset(
    {
        FailureKind.TIMEOUT,
        FailureKind.CONNECTION,
        FailureKind.RATE_LIMITED,
        FailureKind.SERVER_ERROR,
        FailureKind.QUOTA,
        FailureKind.MALFORMED,
        FailureKind.AUTH,
    }
)


class UpstreamFailure(Exception):
    """A failed call to a provider, classified."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def describe(self) -> str:
        status = f" {self.status}" if self.status else ""
        hint = f", retry after {self.retry_after:g}s" if self.retry_after is not None else ""
        return f"{self.kind}{status}: {self.message}{hint}"


class ChunkStream(Protocol):
    """An open upstream stream: the status line has arrived, chunks follow."""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...
