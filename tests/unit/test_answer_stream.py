"""The one relay a client's stream goes through: peeking, holding the deployment and its
quota reservation, costing, filtering usage, and one close hook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from nemorouter.core.answer_stream import MAX_SILENT_CHUNKS, AnswerStream, peek
from nemorouter.types.prices import Pricing
from nemorouter.types.upstream import FailureKind, UpstreamFailure

USAGE = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000, "total_tokens": 2_000_000}
PRICING = Pricing(input_per_mtok=Decimal(1), output_per_mtok=Decimal(2))


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant"}
    if content is not None:
        delta["content"] = content
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def usage_chunk() -> dict[str, Any]:
    return {"choices": [], "usage": dict(USAGE)}


class Upstream:
    """A provider stream: its chunks, then an optional failure; counts its closes."""

    def __init__(self, chunks: list[dict[str, Any]], fail: bool = False) -> None:
        self.chunks = chunks
        self.fail = fail
        self.read = 0
        self.closed = 0

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        for item in self.chunks:
            self.read += 1
            yield item
        if self.fail:
            raise UpstreamFailure(FailureKind.CONNECTION, "cut")

    async def aclose(self) -> None:
        self.closed += 1


class Held:
    """The router's side: a deployment's in-flight count and its quota settlements."""

    def __init__(self) -> None:
        self.deployment: Any = SimpleNamespace(in_flight=1)
        self.settled: list[Any] = []

    async def settle(self, reservation: Any, usage: Any) -> None:
        self.settled.append((reservation, usage))


async def relay(stream: AnswerStream) -> list[dict[str, Any]]:
    return [item async for item in stream]


async def test_peek_reads_up_to_the_first_chunk_that_says_something() -> None:
    upstream = Upstream([chunk(), chunk(), chunk("hi"), chunk(" there", "stop")])
    stream = await peek(upstream)
    assert upstream.read == 3  # two silent role-only deltas, then the first word
    assert [c["choices"][0]["delta"].get("content") for c in await relay(stream)] == [
        None,
        None,
        "hi",
        " there",
    ]


async def test_peek_reads_silent_chunks_at_most_so_far() -> None:
    upstream = Upstream([chunk() for _ in range(MAX_SILENT_CHUNKS + 4)])
    await peek(upstream)
    assert upstream.read == MAX_SILENT_CHUNKS


async def test_a_failure_before_anything_was_said_raises_at_peek_and_closes() -> None:
    upstream = Upstream([chunk()], fail=True)
    with pytest.raises(UpstreamFailure):
        await peek(upstream)
    assert upstream.closed == 1


async def test_held_stream_releases_its_deployment_and_settles_quota_once() -> None:
    upstream, held = Upstream([chunk("a", "stop"), usage_chunk()]), Held()
    stream = await peek(upstream)
    stream.hold(held.deployment, held.settle, "reservation")
    await relay(stream)
    # the upstream side is let go as soon as the provider finished, before the close
    assert held.deployment.in_flight == 0
    assert held.settled == [("reservation", USAGE)]
    await stream.aclose()
    await stream.aclose()
    assert held.deployment.in_flight == 0
    assert len(held.settled) == 1
    assert upstream.closed == 1


async def test_a_stream_dropped_midway_keeps_the_estimate_and_runs_the_hook_once() -> None:
    upstream, held = Upstream([chunk("a"), chunk("b"), chunk("c", "stop"), usage_chunk()]), Held()
    stream = await peek(upstream)
    stream.hold(held.deployment, held.settle, "reservation")
    closes: list[AnswerStream] = []

    async def on_close(closed: AnswerStream) -> None:
        closes.append(closed)

    stream.on_close = on_close
    async for _ in stream:
        break  # the client went away after one chunk
    await stream.aclose()
    await stream.aclose()
    assert closes == [stream]
    assert not stream.ended
    assert held.settled == [("reservation", None)]  # no usage: the estimate stays
    assert held.deployment.in_flight == 0


async def test_costed_stream_adds_the_cost_and_hides_usage_the_client_did_not_ask_for() -> None:
    stream = await peek(Upstream([chunk("a", "stop"), usage_chunk()]))
    seen: list[dict[str, Any]] = []
    stream.cost_with(PRICING, client_wants_usage=False, observe=seen.append)
    relayed = await relay(stream)
    assert stream.ended
    assert stream.cost == Decimal(3)
    assert stream.usage is not None
    assert stream.usage["cost"] == "3"
    assert all("usage" not in c for c in relayed)
    assert len(relayed) == 1  # the usage-only chunk is dropped for this client
    assert len(seen) == 2  # the cache's builder sees every upstream chunk


async def test_costed_stream_shows_usage_with_its_cost_when_asked() -> None:
    stream = await peek(Upstream([chunk("a", "stop"), usage_chunk()]))
    stream.cost_with(PRICING, client_wants_usage=True)
    relayed = await relay(stream)
    assert relayed[-1]["usage"]["cost"] == "3"


async def test_a_failure_midway_is_kept_for_the_record() -> None:
    stream = await peek(Upstream([chunk("a")], fail=True))
    stream.cost_with(PRICING, client_wants_usage=False)
    with pytest.raises(UpstreamFailure):
        await relay(stream)
    assert stream.failure is not None
    assert not stream.ended


async def test_replay_relays_chunks_in_hand() -> None:
    chunks = [chunk("cached", "stop")]
    stream = AnswerStream.replay(chunks)
    assert await relay(stream) == chunks
    assert stream.ended
