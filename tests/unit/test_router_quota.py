"""Router + deployment quota gate: siblings with room first, FIFO waits, queue timeouts,
reservations settled with the real usage or given back.

Waits are real (asyncio sleeps), so the windows that must reopen are a fraction of a second.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nemorouter.config import parse_config
from nemorouter.core.candidates import plan
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.request import reserve_tokens
from nemorouter.core.router import Router
from nemorouter.state import MemoryWindows, QuotaGate
from nemorouter.state.breaker_memory import Breakers
from nemorouter.types.errors import GatewayError
from nemorouter.types.request import DEFAULT_COMPLETION_TOKENS, ChatRequest, parse_chat_request
from nemorouter.types.target import Target
from nemorouter.types.upstream import FailureKind, UpstreamFailure

USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


class Adapter:
    """Answers every call (after `latency_s`) with USAGE, unless a failure is scripted."""

    name = "fake"

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.calls: list[tuple[str, str, float]] = []  # (deployment, first message, time)
        self.failures: list[UpstreamFailure] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    inlines_images = False

    def prepare(self, target: Target, body: dict[str, Any], fetched: Any, stream: bool) -> Any:
        return target, body

    async def _call(self, upstream: tuple[Target, dict[str, Any]]) -> None:
        target, body = upstream
        self.calls.append((target.deployment_id, body["messages"][0]["content"], time.monotonic()))
        await asyncio.sleep(self.latency_s)
        if self.failures:
            raise self.failures.pop(0)

    async def complete(self, upstream: tuple[Target, dict[str, Any]]) -> dict[str, Any]:
        await self._call(upstream)
        return {"choices": [{"message": {"content": "ok"}}], "usage": dict(USAGE)}

    async def open_stream(self, upstream: tuple[Target, dict[str, Any]]) -> Any:
        await self._call(upstream)
        return Stream()


class Stream:
    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        yield {"choices": [{"delta": {"content": "a"}}]}
        yield {"choices": [], "usage": dict(USAGE)}

    async def aclose(self) -> None:
        pass


def deployments(**quotas: dict[str, int]) -> list[dict[str, Any]]:
    """pro-a, pro-b (gemini-2.5-pro) and flash (gemini-2.5-flash), with the given quotas."""
    models = {"pro-a": "gemini-2.5-pro", "pro-b": "gemini-2.5-pro", "flash": "gemini-2.5-flash"}
    return [
        {"id": d, "model": m, "provider": "p", **quotas.get(d.replace("-", "_"), {})}
        for d, m in models.items()
    ]


class Setup:
    def __init__(
        self,
        window_s: float = 60.0,
        queue_timeout_s: float = 5.0,
        retries: int = 0,
        latency_s: float = 0.0,
        **quotas: dict[str, int],
    ) -> None:
        config = parse_config(
            {
                "settings": {"master_key": "sk-test-master-key", "retries": retries},
                "providers": {"p": {"type": "openai-compatible", "base_url": "http://x:9/v1"}},
                "deployments": deployments(**quotas),
                "groups": {"chain": ["gemini-2.5-pro", "gemini-2.5-flash"]},
            },
            env={},
        )
        self.adapter = Adapter(latency_s)
        self.pool = DeploymentPool(config, {"p": self.adapter})  # type: ignore[dict-item]
        self.windows = MemoryWindows(window_s=window_s)
        self.gate = QuotaGate(self.windows, {d.id: (d.rpm, d.tpm) for d in config.deployments})
        self.router = Router(retries, Breakers(100, 30.0), self.gate, queue_timeout_s)

    async def complete(self, model: str, content: str = "x", **body: Any) -> Any:
        request = make_request(model, content, **body)
        links = plan(self.pool, model, frozenset(), 0, "r")
        return await self.router.complete(request, links, "r")

    async def open_stream(self, model: str) -> Any:
        request = make_request(model, "x", stream=True)
        links = plan(self.pool, model, frozenset(), 0, "r")
        return await self.router.open_stream(request, links, "r")

    async def used(self, deployment_id: str) -> tuple[int, int]:
        """(requests, tokens) counted now in the deployment's window (reserves nothing)."""
        subject = self.gate._subjects[deployment_id]
        decision = self.windows.acquire_now([subject], 0, 0)
        assert decision.requests is not None or decision.tokens is not None
        req = subject.rpm - decision.requests.remaining if decision.requests and subject.rpm else 0
        tok = subject.tpm - decision.tokens.remaining if decision.tokens and subject.tpm else 0
        return req, tok

    def called(self) -> list[str]:
        return [deployment for deployment, _, _ in self.adapter.calls]


def make_request(model: str, content: str, **body: Any) -> ChatRequest:
    import orjson

    raw = {"model": model, "messages": [{"role": "user", "content": content}], **body}
    return parse_chat_request(orjson.dumps(raw))


async def fill(setup: Setup, deployment_id: str, count: int = 1) -> None:
    for _ in range(count):
        assert (await setup.gate.try_acquire(deployment_id, 0)).allowed


async def test_full_deployment_sends_the_request_to_its_sibling_with_room() -> None:
    s = Setup(pro_a={"rpm": 1}, pro_b={"rpm": 5})
    await fill(s, "pro-a")
    for _ in range(3):
        routed = await s.complete("gemini-2.5-pro")
        assert routed.deployment.id == "pro-b" and routed.queue_s == 0.0
    assert s.called() == ["pro-b"] * 3


async def test_a_sibling_without_a_quota_always_has_room() -> None:
    s = Setup(pro_a={"rpm": 1})
    await fill(s, "pro-a")
    routed = await s.complete("gemini-2.5-pro")
    assert routed.deployment.id == "pro-b"


async def test_deployments_without_quota_take_no_reservation() -> None:
    s = Setup()
    routed = await s.complete("gemini-2.5-pro")
    assert routed.queue_s == 0.0 and not s.gate.gated(routed.deployment.id)


async def test_both_full_waits_in_arrival_order_then_proceeds() -> None:
    window = 0.25
    s = Setup(window_s=window, pro_a={"rpm": 1}, pro_b={"rpm": 1})
    await fill(s, "pro-a")
    await fill(s, "pro-b")
    started = time.monotonic()
    tasks = []
    for i in range(4):
        tasks.append(asyncio.create_task(s.complete("gemini-2.5-pro", f"m{i}")))
        await asyncio.sleep(0.01)  # a definite arrival order
    routed = await asyncio.gather(*tasks)
    order = [content for _, content, _ in s.adapter.calls]
    assert order == ["m0", "m1", "m2", "m3"]
    first_call = s.adapter.calls[0][2] - started
    assert first_call >= window - 0.05  # nobody went before the window reopened
    # never more than one call per deployment in any window
    for dep in ("pro-a", "pro-b"):
        times = [t for d, _, t in s.adapter.calls if d == dep]
        assert all(b - a >= window - 0.01 for a, b in itertools.pairwise(times))
    assert all(r.queue_s > 0 for r in routed)
    assert s.gate.stats.timeouts == 0


async def test_queue_timeout_fails_the_link_and_the_chain_moves_on() -> None:
    s = Setup(queue_timeout_s=0.1, pro_a={"rpm": 1}, pro_b={"rpm": 1})
    await fill(s, "pro-a")
    await fill(s, "pro-b")
    started = time.monotonic()
    routed = await s.complete("chain")
    assert time.monotonic() - started >= 0.1
    assert routed.deployment.id == "flash" and routed.fallbacks == 1
    assert routed.queue_s >= 0.1
    assert s.called() == ["flash"]
    assert s.gate.stats.timeouts == 1


async def test_queue_timeout_on_the_only_link_is_a_503_that_lists_it() -> None:
    s = Setup(queue_timeout_s=0.05, pro_a={"rpm": 1}, pro_b={"rpm": 1})
    await fill(s, "pro-a")
    await fill(s, "pro-b")
    with pytest.raises(GatewayError) as caught:
        await s.complete("gemini-2.5-pro")
    error = caught.value
    assert error.status == 503 and error.code == "all_deployments_failed"
    assert "quota: no room in deployment:pro-" in error.message
    assert "within 0.05s" in error.message
    assert int(error.headers["retry-after"]) >= 59  # when the window has room again
    assert s.called() == []


async def test_a_request_larger_than_every_quota_fails_at_once() -> None:
    s = Setup(queue_timeout_s=5.0, flash={"tpm": 100})
    started = time.monotonic()
    with pytest.raises(GatewayError) as caught:
        await s.complete("gemini-2.5-flash", max_tokens=1000)
    assert time.monotonic() - started < 1.0
    assert "exceeds deployment:flash's limit of 100 tokens per minute" in caught.value.message
    assert s.called() == []


def test_reserved_tokens_are_the_prompt_estimate_plus_the_allowed_output() -> None:
    # 400 characters at 3 a token (134) + one message (4) + the reply's priming (3) = 141
    request = make_request("m", "x" * 400)
    assert reserve_tokens(request) == 141 + DEFAULT_COMPLETION_TOKENS
    assert reserve_tokens(make_request("m", "x" * 400, max_tokens=50)) == 191
    assert reserve_tokens(make_request("m", "x" * 400, max_completion_tokens=70)) == 211
    both = make_request("m", "x" * 400, max_completion_tokens=70, max_tokens=9)
    assert reserve_tokens(both) == 211


async def test_reservation_holds_the_estimate_during_the_call_and_real_usage_after() -> None:
    s = Setup(latency_s=0.05, flash={"rpm": 10, "tpm": 10_000})
    task = asyncio.create_task(s.complete("gemini-2.5-flash", "x" * 400, max_tokens=300))
    await asyncio.sleep(0.02)
    assert await s.used("flash") == (1, 441)  # 141 prompt + 300 allowed output
    await task
    assert await s.used("flash") == (1, 15)  # USAGE's prompt + completion


async def test_stream_reservation_is_settled_when_the_stream_is_closed() -> None:
    s = Setup(flash={"rpm": 10, "tpm": 10_000})
    routed = await s.open_stream("gemini-2.5-flash")
    assert await s.used("flash") == (1, 8 + DEFAULT_COMPLETION_TOKENS)  # "x": 1 + 4 + 3
    assert routed.stream is not None
    chunks = [chunk async for chunk in routed.stream]  # the stream closes itself at its end
    assert chunks[-1]["usage"] == USAGE
    assert await s.used("flash") == (1, 15)


async def test_stream_closed_early_keeps_its_estimate() -> None:
    s = Setup(flash={"rpm": 10, "tpm": 10_000})
    routed = await s.open_stream("gemini-2.5-flash")
    await routed.stream.aclose()
    assert await s.used("flash") == (1, 8 + DEFAULT_COMPLETION_TOKENS)


async def test_reservation_released_when_the_request_never_reached_the_provider() -> None:
    s = Setup(flash={"rpm": 1, "tpm": 10_000})
    s.adapter.failures.append(
        UpstreamFailure(FailureKind.CONNECTION, "cannot connect to x:9: refused")
    )
    with pytest.raises(GatewayError):
        await s.complete("gemini-2.5-flash")
    assert await s.used("flash") == (0, 0)
    routed = await s.complete("gemini-2.5-flash")  # the quota's one request is free again
    assert routed.queue_s == 0.0


async def test_failure_that_reached_the_provider_keeps_the_request_counted() -> None:
    s = Setup(queue_timeout_s=0.05, flash={"rpm": 1, "tpm": 10_000})
    s.adapter.failures.append(UpstreamFailure(FailureKind.SERVER_ERROR, "boom", status=500))
    with pytest.raises(GatewayError):
        await s.complete("gemini-2.5-flash", "x" * 40)
    assert await s.used("flash") == (1, 10)  # the request, and only its prompt's tokens
    with pytest.raises(GatewayError) as caught:
        await s.complete("gemini-2.5-flash")
    assert "quota" in caught.value.message


async def test_a_retry_takes_a_new_reservation() -> None:
    quota = {"rpm": 5, "tpm": 10_000}
    s = Setup(retries=1, pro_a=quota, pro_b=quota)
    s.adapter.failures.append(UpstreamFailure(FailureKind.SERVER_ERROR, "boom", status=503))
    routed = await s.complete("gemini-2.5-pro")
    assert routed.attempts == 2
    first, second = s.called()
    assert first != second  # the retry went to the sibling ...
    assert await s.used(first) == (1, 1)  # ... the failed call keeps its request
    assert await s.used(second) == (1, 15)  # ... and the retry has its own, settled


async def test_cancelled_waiter_leaves_the_queue() -> None:
    s = Setup(window_s=0.2, flash={"rpm": 1})
    await fill(s, "flash")
    waiting = asyncio.create_task(s.complete("gemini-2.5-flash", "gone"))
    await asyncio.sleep(0.02)
    assert s.gate.queued("flash") == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert s.gate.queued("flash") == 0
    routed = await s.complete("gemini-2.5-flash", "next")
    assert routed.deployment.id == "flash" and [c for _, c, _ in s.adapter.calls] == ["next"]
