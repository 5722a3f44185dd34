"""Retry policy per failure class, hint caps, context-window fallback, the request deadline
and the fallback log line, through the router with a scripted adapter."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from nemorouter.config import parse_config
from nemorouter.core import router as router_module
from nemorouter.core.candidates import plan
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.retry import RetryPolicy
from nemorouter.core.router import Router
from nemorouter.state.breaker_memory import Breakers
from nemorouter.types.errors import GatewayError
from nemorouter.types.upstream import FailureKind, UpstreamFailure

from .test_router import ScriptedAdapter, fail, request

SETTINGS = {
    "master_key": "sk-test-master-key",
    "retries": 1,
    "retry": {
        "connection": {"retries": 2},
        "rate_limited": {"retries": 2, "max_wait_s": 3},
        "backoff_base_s": 0.2,
        "backoff_cap_s": 1.0,
        "jitter": 0.5,
    },
}


def deployment(name: str, model: str, window: int) -> dict[str, Any]:
    return {"id": name, "model": model, "provider": "p", "context_window": window}


def make(settings: dict[str, Any] | None = None, deadline_s: float = 60.0) -> tuple[Any, Any]:
    config = parse_config(
        {
            "settings": settings or SETTINGS,
            "providers": {"p": {"type": "openai-compatible", "base_url": "http://x:9/v1"}},
            "deployments": [
                deployment("small", "gemini-2.5-flash", 1000),
                deployment("same", "gemini-2.5-flash-lite", 1000),
                deployment("large", "gemini-2.5-pro", 2000),
            ],
            "groups": {"chain": ["gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro"]},
        },
        env={},
    )
    adapter = ScriptedAdapter()
    pool = DeploymentPool(config, {"p": adapter})  # type: ignore[dict-item]
    router = Router(
        RetryPolicy.from_settings(config.settings), Breakers(100, 30.0), deadline_s=deadline_s
    )
    return (pool, router), adapter


async def route(setup: Any, model: str, job_id: str | None = None) -> Any:
    pool, router = setup
    links = plan(pool, model, frozenset(), 0, "req-1")
    return await router.complete(request(model), links, "req-1", job_id)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoffs and hint waits, recorded instead of slept."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        if seconds:  # the scripted adapter itself yields with sleep(0)
            recorded.append(seconds)

    monkeypatch.setattr(router_module.asyncio, "sleep", fake_sleep)
    return recorded


def test_settings_per_class_default_to_retries() -> None:
    (_, router), _ = make()
    policy = router.policy
    assert policy.retries(FailureKind.TIMEOUT) == 1  # settings.retries
    assert policy.retries(FailureKind.SERVER_ERROR) == 1
    assert policy.retries(FailureKind.CONNECTION) == 2
    assert policy.retries(FailureKind.RATE_LIMITED) == 2
    assert policy.retries(FailureKind.CLIENT_ERROR) == 0
    assert policy.retries(FailureKind.CONTEXT_WINDOW) == 0
    assert policy.max_wait_s(FailureKind.RATE_LIMITED) == 3
    assert policy.max_wait_s(FailureKind.SERVER_ERROR) == 10  # retry.max_wait_s


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(1, 10.0, base_s=0.1, cap_s=1.0, jitter=0.5, rand=lambda: 0.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    policy = RetryPolicy(1, 10.0, base_s=0.1, cap_s=1.0, jitter=0.5, rand=lambda: 1.0)
    assert policy.backoff(2) == pytest.approx(0.1)  # at most half taken off
    hinted = UpstreamFailure(FailureKind.RATE_LIMITED, "x", retry_after=4.0)
    assert policy.wait(hinted, 1) == 4.0
    assert RetryPolicy(1, 3.0).wait(hinted, 1) is None  # beyond the cap: give the link up


@pytest.mark.parametrize(
    ("kind", "status", "calls"),
    [
        (FailureKind.TIMEOUT, None, 2),  # 1 retry
        (FailureKind.SERVER_ERROR, 503, 2),  # 1 retry
        (FailureKind.CONNECTION, None, 3),  # 2 retries
        (FailureKind.RATE_LIMITED, 429, 3),  # 2 retries
    ],
)
async def test_each_class_gets_its_retries_then_the_next_link(
    kind: FailureKind, status: int | None, calls: int, waits: list[float]
) -> None:
    setup, adapter = make()
    adapter.script = {"small": [fail(kind, status)] * 5}
    routed = await route(setup, "chain")
    assert adapter.calls == ["small"] * calls + ["same"]
    assert routed.attempts == calls + 1
    assert routed.fallbacks == 1
    # one deployment per link: every retry waits a backoff, 0.2 * 2^(n-1), at most half off
    assert len(waits) == calls - 1
    for n, wait in enumerate(waits, 1):
        assert 0.1 * 2 ** (n - 1) <= wait <= 0.2 * 2 ** (n - 1)


async def test_hint_is_honoured_up_to_the_class_cap(waits: list[float]) -> None:
    setup, adapter = make()
    adapter.script = {"small": [fail(FailureKind.RATE_LIMITED, 429, retry_after=2.5)]}
    routed = await route(setup, "chain")
    assert adapter.calls == ["small", "small"]
    assert waits == [2.5]
    assert routed.fallbacks == 0


async def test_hint_beyond_the_cap_moves_to_the_next_link(waits: list[float]) -> None:
    setup, adapter = make()
    adapter.script = {"small": [fail(FailureKind.RATE_LIMITED, 429, retry_after=3.5)]}
    routed = await route(setup, "chain")
    assert adapter.calls == ["small", "same"]
    assert waits == []
    assert routed.fallbacks == 1


async def test_client_error_is_neither_retried_nor_failed_over() -> None:
    setup, adapter = make()
    adapter.script = {"small": [fail(FailureKind.CLIENT_ERROR, 400)]}
    with pytest.raises(GatewayError) as info:
        await route(setup, "chain")
    assert info.value.status == 400
    assert adapter.calls == ["small"]


async def test_context_window_moves_to_a_larger_window_skipping_smaller_links(
    caplog: pytest.LogCaptureFixture,
) -> None:
    setup, adapter = make()
    adapter.script = {"small": [fail(FailureKind.CONTEXT_WINDOW, 400)]}
    with caplog.at_level(logging.WARNING, "nemorouter.router"):
        routed = await route(setup, "chain", job_id="job-7")
    assert adapter.calls == ["small", "large"]  # never retried, "same" (1000) skipped
    assert routed.deployment.id == "large"
    assert routed.fallbacks == 2
    lines = [r for r in caplog.records if r.getMessage().startswith("fallback ")]
    assert [(r.fallback_from, r.fallback_to) for r in lines] == [  # type: ignore[attr-defined]
        ("gemini-2.5-flash", "gemini-2.5-flash-lite"),
        ("gemini-2.5-flash-lite", "gemini-2.5-pro"),
    ]
    assert lines[0].getMessage() == (
        "fallback request_id=req-1 job_id=job-7 from=gemini-2.5-flash "
        "to=gemini-2.5-flash-lite reason=context window exceeded"
    )
    assert lines[1].fallback_reason == "context window 1000 not larger than 1000"  # type: ignore[attr-defined]
    assert all(r.job_id == "job-7" and r.request_id == "req-1" for r in lines)  # type: ignore[attr-defined]


async def test_context_window_with_no_larger_link_is_the_providers_400() -> None:
    setup, adapter = make()
    adapter.script = {"large": [fail(FailureKind.CONTEXT_WINDOW, 400)]}
    with pytest.raises(GatewayError) as info:
        await route(setup, "gemini-2.5-pro")
    assert info.value.status == 400
    assert adapter.calls == ["large"]


async def test_a_backoff_past_the_deadline_ends_the_request_at_once(waits: list[float]) -> None:
    setup, adapter = make(deadline_s=0.05)
    adapter.script = {"small": [fail(FailureKind.SERVER_ERROR, 503)]}  # backoff 0.1-0.2 s
    with pytest.raises(GatewayError) as info:
        await route(setup, "chain")
    assert info.value.status == 504
    assert adapter.calls == ["small"]
    assert waits == []  # not slept: it would end past the deadline


async def test_the_deadline_cuts_a_hanging_call_with_a_504_listing_attempts() -> None:
    setup, adapter = make({"master_key": "sk-test-master-key", "retries": 0}, deadline_s=0.3)
    pool, _ = setup

    async def complete(target: Any) -> Any:
        adapter.calls.append(target.deployment_id)
        await asyncio.sleep(0.05)
        if target.deployment_id == "small":
            raise fail(FailureKind.SERVER_ERROR, 503)
        await asyncio.sleep(5)  # "same" hangs: the deadline cuts it

    adapter.complete = complete  # type: ignore[method-assign]
    started = asyncio.get_running_loop().time()
    with pytest.raises(GatewayError) as info:
        await route(setup, "chain")
    elapsed = asyncio.get_running_loop().time() - started
    assert info.value.status == 504
    assert info.value.code == "all_deployments_failed"
    message = info.value.message
    assert "deadline (0.3s)" in message
    assert "attempt 1 small" in message and "server_error 503" in message
    assert "attempt 2 same" in message and "cut short by the request deadline" in message
    assert info.value.attempts == 2 and info.value.fallbacks == 1
    assert 0.25 < elapsed < 0.6
    assert adapter.calls == ["small", "same"]
    assert all(d.in_flight == 0 for ds in pool.by_model.values() for d in ds)
