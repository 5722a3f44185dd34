"""The one stream the gateway relays to a client, whatever it came from.

An upstream stream reaches the client through a single relay, not a stack of wrappers:
- the router reads its first chunks before choosing it (`peek`), so a provider that
  answers 200 and fails before saying anything is failed over like any other failure;
- while it is open its deployment stays counted in flight, and when it ends its quota
  reservation is settled with the usage it reported (`upstream_settle`);
- the pipeline then has it costed from the final usage chunk (`usage.cost` added; the
  usage-only chunk reaches the client only if the client asked for it), shown to the
  response cache's builder (`observe`), and finished by one hook (`on_close`) that runs
  once when it is closed, however it ended.
A cached answer replayed as a stream is the same relay over chunks already in hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

from nemorouter.core.cost import call_cost
from nemorouter.core.deployments import Deployment
from nemorouter.state.types import Reservation
from nemorouter.types.money import usd
from nemorouter.types.prices import Pricing
from nemorouter.types.upstream import ChunkStream, UpstreamFailure

# Leading chunks that say nothing (a role-only delta) are read ahead at most this far.
MAX_SILENT_CHUNKS = 8

Settle = Callable[[Reservation, Any], Awaitable[None]]


class AnswerStream:
    """Chunks for the client; `aclose` is idempotent and must be called by whoever holds
    the stream (the HTTP layer, when the response ends however it ends)."""

    def __init__(
        self,
        chunks: AsyncIterator[dict[str, Any]] | None,
        read: list[dict[str, Any]],
        upstream: ChunkStream | None = None,
    ) -> None:
        self._chunks = chunks  # the rest of the upstream's chunks (None: all are in `read`)
        self._read = read
        self._upstream = upstream
        # set by the router for an upstream call
        self._deployment: Deployment | None = None
        self._settle: Settle | None = None
        self._reservation: Reservation | None = None
        # set by the pipeline
        self._pricing: Pricing | None = None
        self._costed = False
        self._wanted = True
        self._observe: Callable[[dict[str, Any]], None] | None = None
        self.on_close: Callable[[AnswerStream], Awaitable[None]] | None = None
        # what happened
        self.usage: dict[str, Any] | None = None
        self.cost: Decimal | None = None
        self.ended = False  # the provider (or the replay) finished the stream
        self.failure: UpstreamFailure | None = None

    @classmethod
    def replay(cls, chunks: list[dict[str, Any]]) -> AnswerStream:
        """Chunks already in hand (a cached answer)."""
        return cls(None, chunks)

    def hold(self, deployment: Deployment, settle: Settle, reservation: Reservation | None) -> None:
        """Keep `deployment` counted in flight until the upstream ends; then settle its
        quota reservation with the usage reported (the estimate stays if none was)."""
        self._deployment = deployment
        self._settle = settle
        self._reservation = reservation

    def cost_with(
        self,
        pricing: Pricing | None,
        client_wants_usage: bool,
        observe: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._pricing = pricing
        self._costed = True
        self._wanted = client_wants_usage
        self._observe = observe

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._relay()

    async def _relay(self) -> AsyncIterator[dict[str, Any]]:
        try:
            read, self._read = self._read, []
            for chunk in read:
                chunk = self._pass(chunk)
                if chunk is not None:
                    yield chunk
            if self._chunks is not None:
                async for chunk in self._chunks:
                    chunk = self._pass(chunk)
                    if chunk is not None:
                        yield chunk
        except UpstreamFailure as failure:
            self.failure = failure
            raise
        finally:
            await self._let_go()
        self.ended = True

    def _pass(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """The chunk as the client gets it (None: not for this client)."""
        if self._observe is not None:
            self._observe(chunk)  # every upstream chunk, before the client's filtering
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
            if self._costed:
                self.cost = call_cost(self._pricing, usage)
                if self.cost is not None:
                    usage["cost"] = usd(self.cost)
            if not self._wanted:
                if not chunk.get("choices"):
                    return None  # the usage-only chunk the client did not ask for
                del chunk["usage"]
        elif not self._wanted:
            chunk.pop("usage", None)
        return chunk

    async def _let_go(self) -> None:
        """Release the upstream side once: its connection, its in-flight count, its quota."""
        chunks, self._chunks = self._chunks, None
        upstream, self._upstream = self._upstream, None
        deployment, self._deployment = self._deployment, None
        try:
            try:
                closer = getattr(chunks, "aclose", None)
                if closer is not None:
                    await closer()
            finally:
                if upstream is not None:
                    await upstream.aclose()
        finally:
            if deployment is not None:
                deployment.in_flight -= 1
            reservation, self._reservation = self._reservation, None
            if reservation is not None and self._settle is not None:
                await self._settle(reservation, self.usage)

    async def aclose(self) -> None:
        try:
            await self._let_go()
        finally:
            on_close, self.on_close = self.on_close, None
            if on_close is not None:
                await on_close(self)


async def peek(stream: ChunkStream) -> AnswerStream:
    """Read up to the first chunk that says something (its failure raises here, and the
    stream is closed)."""
    chunks = stream.__aiter__()
    read: list[dict[str, Any]] = []
    answer = AnswerStream(chunks, read, stream)
    try:
        while len(read) < MAX_SILENT_CHUNKS:
            chunk = await chunks.__anext__()
            read.append(chunk)
            if _says_something(chunk):
                break
    except StopAsyncIteration:
        answer._chunks = None  # ended already: nothing more to read
        await _close(chunks)
    except BaseException:
        await answer._let_go()
        raise
    return answer


async def _close(chunks: AsyncIterator[dict[str, Any]]) -> None:
    closer = getattr(chunks, "aclose", None)
    if closer is not None:
        await closer()


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
