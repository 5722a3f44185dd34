"""The adapter interface every provider wire format implements, and its failure taxonomy.

An adapter translates the canonical (OpenAI-format) request for a resolved `Target` into
an `UpstreamRequest` (before any quota is reserved for the call), sends it, and returns
canonical answers: a completion dict, or an async iterator of chunk dicts, labelled with the
target's model name. Everything that goes wrong upstream comes back as an `UpstreamFailure`
whose `kind` tells the router what to do next (types/upstream.py: shared with core).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from nemorouter.types.target import Target
from nemorouter.types.upstream import ChunkStream

if TYPE_CHECKING:
    from nemorouter.providers.media import InlineMedia


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
