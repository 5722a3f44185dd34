"""What the router hands back: the answer and how it was reached, and a held stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

from nemorouter.core.deployments import Deployment
from nemorouter.state.types import Reservation
from nemorouter.types.upstream import ChunkStream


class Routed:
    """A successful answer and how it was reached: an upstream call, or (with no
    deployment) the response cache."""

    __slots__ = (
        "attempts",
        "cache",
        "cost",
        "deployment",
        "deployment_id",
        "fallbacks",
        "headers",
        "model",
        "queue_s",
        "response",
        "stream",
        "upstream_s",
    )

    def __init__(self, deployment: Deployment | None, attempts: int, fallbacks: int) -> None:
        self.deployment = deployment
        self.model = deployment.model if deployment is not None else ""
        self.deployment_id = deployment.id if deployment is not None else ""
        self.attempts = attempts
        self.fallbacks = fallbacks
        self.upstream_s = 0.0  # provider time, retry backoffs and quota queue waits
        self.queue_s = 0.0  # of which waiting for a deployment's quota
        self.response: dict[str, Any] | None = None
        self.stream: ChunkStream | None = None
        self.cache = "SKIP"  # x-nemo-cache: HIT | MISS | SKIP
        self.headers: dict[str, str] | None = None  # more response headers (rate limits)
        self.cost: Decimal | None = None  # of a completion; a stream's is known at its end

    @classmethod
    def cached(cls, model: str, deployment_id: str) -> Routed:
        """An answer from the response cache: no call, no attempt."""
        routed = cls(None, 0, 0)
        routed.model, routed.deployment_id = model, deployment_id
        routed.cache = "HIT"
        return routed


class HeldStream:
    """An upstream stream that keeps its deployment counted in flight until closed, and
    settles its quota reservation then with the usage the stream reported.

    `aclose` is idempotent and must be called by whoever received the stream (the
    pipeline's CostedStream closes it when the response ends, however it ends)."""

    def __init__(
        self,
        stream: ChunkStream,
        deployment: Deployment,
        settle: Callable[[Reservation, Any], Awaitable[None]] | None = None,
        reservation: Reservation | None = None,
    ) -> None:
        self._stream = stream
        self._deployment = deployment
        self._open = True
        self._settle = settle
        self._reservation = reservation
        self._usage: Any = None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        try:
            if self._reservation is None:
                async for chunk in self._stream:
                    yield chunk
            else:  # watch for the usage chunk (the pipeline asks every stream for one)
                async for chunk in self._stream:
                    usage = chunk.get("usage")
                    if usage is not None:
                        self._usage = usage
                    yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._deployment.in_flight -= 1
            try:
                await self._stream.aclose()
            finally:
                reservation, self._reservation = self._reservation, None
                if reservation is not None and self._settle is not None:
                    # no usage (cut short): the estimate stays, the call did reach it
                    await self._settle(reservation, self._usage)


class PeekedStream:
    """An upstream stream whose first chunks have already been read.

    The router reads up to the first chunk that carries something (content, a tool call, a
    finish reason, usage) before choosing the stream, so a provider that answers 200 and
    then fails before saying anything is failed over like any other failure: nothing has
    reached the client yet. Iterate it once."""

    def __init__(
        self,
        stream: ChunkStream,
        chunks: AsyncIterator[dict[str, Any]],
        read: list[dict[str, Any]],
    ) -> None:
        self._stream = stream
        self._chunks = chunks
        self._read = read
        self._ended = False

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[dict[str, Any]]:
        read, self._read = self._read, []
        for chunk in read:
            yield chunk
        if not self._ended:
            async for chunk in self._chunks:
                yield chunk

    async def aclose(self) -> None:
        closer = getattr(self._chunks, "aclose", None)
        try:
            if closer is not None:
                await closer()
        finally:
            await self._stream.aclose()


# Leading chunks that say nothing (a role-only delta) are read ahead at most this far.
MAX_SILENT_CHUNKS = 8


async def peek(stream: ChunkStream) -> PeekedStream:
    """Read up to the first chunk that says something (its failure raises here, and the
    stream is closed)."""
    chunks = stream.__aiter__()
    peeked = PeekedStream(stream, chunks, [])
    try:
        while len(peeked._read) < MAX_SILENT_CHUNKS:
            chunk = await chunks.__anext__()
            peeked._read.append(chunk)
            if _says_something(chunk):
                break
    except StopAsyncIteration:
        peeked._ended = True
    except BaseException:
        await peeked.aclose()
        raise
    return peeked


def _says_something(chunk: dict[str, Any]) -> bool:
    if chunk.get("usage"):
        return True
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            return True
        if choice.get("finish_reason"):
            return True
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(value for key, value in delta.items() if key != "role"):
            return True
    return False
