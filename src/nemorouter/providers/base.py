"""The adapter interface every provider wire format implements, and its failure taxonomy.

An adapter translates the canonical (OpenAI-format) request for a resolved `Target` into
an `UpstreamRequest` (before any quota is reserved for the call), sends it, and returns
canonical answers: a completion dict, or an async iterator of chunk dicts, labelled with the
target's model name. Everything that goes wrong upstream comes back as an `UpstreamFailure`
whose `kind` tells the router what to do next.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from nemorouter.types.target import Target

if TYPE_CHECKING:
    from nemorouter.providers.media import InlineMedia


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


RETRYABLE = frozenset(
    {
        FailureKind.TIMEOUT,
        FailureKind.CONNECTION,
        FailureKind.RATE_LIMITED,
        FailureKind.SERVER_ERROR,
        FailureKind.QUOTA,
        FailureKind.MALFORMED,
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


class UpstreamRequest:
    """The canonical request translated for one target, for one attempt: built (and so
    checked) before any quota is reserved, encoded only as it is sent, so a request waiting
    in a quota queue does not hold its encoded body as well (the wire body shares its
    strings, data URLs included, with the canonical one)."""

    __slots__ = ("include_usage", "path", "structured", "target", "wire")

    def __init__(
        self,
        target: Target,
        path: str,
        wire: dict[str, Any],
        include_usage: bool = False,
        structured: str | None = None,
    ) -> None:
        self.target = target
        self.path = path  # on the adapter's origin
        self.wire = wire  # the body in the provider's format
        self.include_usage = include_usage  # a stream ends with a usage chunk
        self.structured = structured  # Claude: the forced tool whose input is the answer


class ProviderAdapter(Protocol):
    """One provider endpoint (its credentials and its pooled connections)."""

    name: str
    # Remote (http/https) images must be fetched and sent inline: the provider takes bytes.
    inlines_images: bool

    async def start(self) -> None:
        """Open pooled connections; called once inside the server's event loop."""

    async def close(self) -> None: ...

    def prepare(
        self,
        target: Target,
        body: dict[str, Any],
        fetched: Mapping[str, InlineMedia],
        stream: bool,
    ) -> UpstreamRequest:
        """Translate the canonical `body` (OpenAI format, gateway fields removed) for
        `target`, with the request's remote images already `fetched`. No I/O. A field the
        provider cannot take raises a 400 `invalid_request` naming it (a client error)."""

    async def complete(self, request: UpstreamRequest) -> dict[str, Any]:
        """One non-streaming completion, in the OpenAI response shape."""

    async def open_stream(self, request: UpstreamRequest) -> ChunkStream:
        """Start a streaming completion; failures before the first byte raise here,
        so the router can still retry them. Later failures raise while iterating."""
