"""Router: least-busy selection, one retry on a retryable failure, chain links, error shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nemorouter.config import Config, parse_config
from nemorouter.core import router as router_module
from nemorouter.core.candidates import plan
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.router import Router
from nemorouter.state.breaker_memory import Breakers
from nemorouter.types.errors import GatewayError
from nemorouter.types.request import parse_chat_request
from nemorouter.types.target import Target
from nemorouter.types.upstream import FailureKind, UpstreamFailure

OK = {"choices": [{"message": {"content": "ok"}}]}


class ScriptedAdapter:
    """Answers per deployment id from a script: a dict (success) or an UpstreamFailure."""

    name = "fake"

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.calls: list[str] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    inlines_images = False

    def prepare(self, target: Target, body: dict[str, Any], fetched: Any, stream: bool) -> Any:
        return target

    def _next(self, target: Target) -> Any:
        self.calls.append(target.deployment_id)
        queue = self.script.get(target.deployment_id, [])
        outcome = queue.pop(0) if queue else OK
        if isinstance(outcome, UpstreamFailure):
            raise outcome
        return outcome

    async def complete(self, target: Target) -> dict[str, Any]:
        await asyncio.sleep(0)
        return self._next(target)

    async def open_stream(self, target: Target) -> Any:
        self._next(target)
        return FakeStream()


class FakeStream:
    closed = False

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[dict[str, Any]]:
        yield {"choices": [{"delta": {"content": "a"}}]}

    async def aclose(self) -> None:
        self.closed = True


def make_config(retries: int = 1) -> Config:
    return parse_config(
        {
            "settings": {"master_key": "sk-test-master-key", "retries": retries},
            "providers": {"p": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}},
            "deployments": [
                {"id": "pro-a", "model": "gemini-2.5-pro", "provider": "p"},
                {"id": "pro-b", "model": "gemini-2.5-pro", "provider": "p"},
                {"id": "flash", "model": "gemini-2.5-flash", "provider": "p"},
            ],
            "groups": {"chain": ["gemini-2.5-pro", "gemini-2.5-flash"]},
        },
        env={},
    )


class PlannedRouter:
    """The router behind the same route plan the pipeline makes (no tags required)."""

    def __init__(
        self, pool: DeploymentPool, retries: int, breakers: Breakers | None = None
    ) -> None:
        self.pool = pool
        self.router = Router(retries, breakers or Breakers(100, 30.0))

    async def complete(self, request: Any, request_id: str) -> Any:
        links = plan(self.pool, request.model, frozenset(), 0, request_id)
        return await self.router.complete(request, links, request_id)

    async def open_stream(self, request: Any, request_id: str) -> Any:
        links = plan(self.pool, request.model, frozenset(), 0, request_id)
        return await self.router.open_stream(request, links, request_id)


def setup(retries: int = 1) -> tuple[PlannedRouter, ScriptedAdapter, DeploymentPool]:
    adapter = ScriptedAdapter()
    pool = DeploymentPool(make_config(retries), {"p": adapter})  # type: ignore[dict-item]
    return PlannedRouter(pool, retries), adapter, pool


def request(model: str, stream: bool = False) -> Any:
    return parse_chat_request(
        f'{{"model": "{model}", "stream": {str(stream).lower()}, "messages": [{{"role": "user", "content": "x"}}]}}'.encode()
    )


def fail(
    kind: FailureKind, status: int | None = None, retry_after: float | None = None
) -> UpstreamFailure:
    return UpstreamFailure(kind, "simulated", status=status, retry_after=retry_after)


async def test_least_in_flight_spreads_load() -> None:
    router, adapter, pool = setup()
    pool.by_model["gemini-2.5-pro"][0].in_flight = 5
    for _ in range(3):
        routed = await router.complete(request("gemini-2.5-pro"), "r")
        assert routed.deployment.id == "pro-b"
    pool.by_model["gemini-2.5-pro"][0].in_flight = 0
    await asyncio.gather(*(router.complete(request("gemini-2.5-pro"), "r") for _ in range(10)))
    assert adapter.calls.count("pro-a") >= 4 and adapter.calls.count("pro-b") >= 4


async def test_retry_goes_to_the_other_deployment() -> None:
    router, adapter, _ = setup()
    adapter.script = {
        "pro-a": [fail(FailureKind.SERVER_ERROR, 503)],
        "pro-b": [fail(FailureKind.SERVER_ERROR, 503)],
    }
    routed = await router.complete(request("chain"), "r")
    # both pro deployments failed once each (one retry), then the chain fell back to flash
    assert sorted(adapter.calls[:2]) == ["pro-a", "pro-b"]
    assert routed.deployment.id == "flash"
    assert routed.attempts == 3
    assert routed.fallbacks == 1


async def test_retry_on_same_deployment_waits_for_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    router, adapter, _ = setup()
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        if seconds:  # the scripted adapter itself yields with sleep(0)
            waits.append(seconds)

    monkeypatch.setattr(router_module.asyncio, "sleep", fake_sleep)
    adapter.script = {"flash": [fail(FailureKind.RATE_LIMITED, 429, retry_after=2.0)]}
    routed = await router.complete(request("gemini-2.5-flash"), "r")
    assert adapter.calls == ["flash", "flash"]
    assert waits == [2.0]
    assert routed.attempts == 2
    assert routed.upstream_s >= 2.0


async def test_hint_too_long_gives_up_the_link_and_returns_it() -> None:
    router, adapter, _ = setup()
    adapter.script = {"flash": [fail(FailureKind.RATE_LIMITED, 429, retry_after=60)]}
    with pytest.raises(GatewayError) as info:
        await router.complete(request("gemini-2.5-flash"), "r")
    assert adapter.calls == ["flash"]
    assert info.value.status == 503
    assert info.value.code == "all_deployments_failed"
    assert info.value.headers["retry-after"] == "60"


async def test_client_error_is_not_retried() -> None:
    router, adapter, _ = setup()
    adapter.script = {"flash": [fail(FailureKind.CLIENT_ERROR, 400)]}
    with pytest.raises(GatewayError) as info:
        await router.complete(request("gemini-2.5-flash"), "r")
    assert adapter.calls == ["flash"]
    assert info.value.status == 400
    assert "flash" in info.value.message


async def test_all_failed_lists_attempts_and_504_on_timeout() -> None:
    router, adapter, pool = setup(retries=1)
    adapter.script = {
        "pro-a": [fail(FailureKind.TIMEOUT)],
        "pro-b": [fail(FailureKind.TIMEOUT)],
    }
    with pytest.raises(GatewayError) as info:
        await router.complete(request("gemini-2.5-pro"), "r")
    error = info.value
    assert error.status == 504
    assert error.code == "all_deployments_failed"
    assert "attempt 1" in error.message and "attempt 2" in error.message
    assert "pro-a" in error.message and "pro-b" in error.message
    assert all(d.in_flight == 0 for d in pool.by_model["gemini-2.5-pro"])


async def test_all_failed_is_503_when_last_was_not_a_timeout() -> None:
    router, adapter, _ = setup(retries=1)
    adapter.script = {
        "pro-a": [fail(FailureKind.CONNECTION)],
        "pro-b": [fail(FailureKind.CONNECTION)],
    }
    with pytest.raises(GatewayError) as info:
        await router.complete(request("gemini-2.5-pro"), "r")
    assert info.value.status == 503
    assert "retry-after" not in info.value.headers


async def test_no_retries_when_configured_off() -> None:
    router, adapter, _ = setup(retries=0)
    adapter.script = {"flash": [fail(FailureKind.SERVER_ERROR, 500)]}
    with pytest.raises(GatewayError) as info:
        await router.complete(request("gemini-2.5-flash"), "r")
    assert info.value.status == 503
    assert adapter.calls == ["flash"]


async def test_unknown_model_is_404_and_auto_uses_everything() -> None:
    router, _adapter, _ = setup()
    with pytest.raises(GatewayError) as info:
        await router.complete(request("gpt-9"), "r")
    assert info.value.status == 404
    assert info.value.code == "model_not_found"
    assert "chain" in info.value.message
    routed = await router.complete(request("auto"), "r")
    assert routed.deployment.model == "gemini-2.5-pro"


async def test_stream_holds_deployment_until_closed() -> None:
    router, _adapter, pool = setup()
    routed = await router.open_stream(request("gemini-2.5-flash", stream=True), "r")
    flash = pool.by_model["gemini-2.5-flash"][0]
    assert flash.in_flight == 1
    assert routed.stream is not None
    chunks = [chunk async for chunk in routed.stream]
    assert len(chunks) == 1
    assert flash.in_flight == 0
    await routed.stream.aclose()  # idempotent
    assert flash.in_flight == 0


async def test_open_circuit_is_skipped_without_a_call_then_probed() -> None:
    clock = [0.0]
    breakers = Breakers(2, 30.0, clock=lambda: clock[0])
    adapter = ScriptedAdapter()
    pool = DeploymentPool(make_config(1), {"p": adapter})  # type: ignore[dict-item]
    router = PlannedRouter(pool, 1, breakers)
    adapter.script = {"flash": [fail(FailureKind.SERVER_ERROR, 503)] * 2}
    with pytest.raises(GatewayError):
        await router.complete(request("gemini-2.5-flash"), "r")  # two failures: circuit opens
    assert breakers.is_open("flash")
    calls = len(adapter.calls)
    with pytest.raises(GatewayError) as info:
        await router.complete(request("gemini-2.5-flash"), "r")
    assert len(adapter.calls) == calls  # no network call while open
    assert "circuit open" in info.value.message
    routed = await router.complete(request("chain"), "r")  # the chain goes around it
    assert routed.deployment.model == "gemini-2.5-pro"
    clock[0] = 31.0  # cooldown over: one probe, it succeeds, the circuit closes
    routed = await router.complete(request("gemini-2.5-flash"), "r")
    assert routed.deployment.id == "flash"
    assert not breakers.is_open("flash")
