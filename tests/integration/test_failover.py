"""Failover through a real gateway with the openai SDK: a primary and a secondary simulated
provider in one chain; each failure class, hint honouring, context window, the request
deadline, streams, the breaker, and the fallback log line and spend record."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from nemorouter.testing import Fault, SimulatedProvider
from nemorouter.testing import sim_http as http
from nemorouter.testing.sim_types import Fault as FaultType

from .conftest import MASTER_KEY, GatewayFactory, fresh_sqlite_url

USER = [{"role": "user", "content": "Read this page."}]
SMALL_WINDOW = {"context_window": 1000}  # the secondary (gemini-2.5-pro) has 1M


class ContextSim(SimulatedProvider):
    """Answers an injected 400 the way OpenAI says a prompt exceeds the context window."""

    def _render_fault(self, fault: FaultType) -> bytes:
        if fault.code != 400:
            return super()._render_fault(fault)
        message = "This model's maximum context length is 1000 tokens. However, your messages"
        body = http.error_body(
            message, "invalid_request_error", "messages", "context_length_exceeded"
        )
        return http.json_response(400, body)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ContextSim, SimulatedProvider]]:
    with ContextSim() as primary, SimulatedProvider() as secondary:
        yield primary, secondary


@pytest.fixture
def sims(servers: tuple[ContextSim, SimulatedProvider]) -> tuple[ContextSim, SimulatedProvider]:
    for sim in servers:
        sim.clear()
    return servers


def config(sims: tuple[SimulatedProvider, SimulatedProvider], **settings: Any) -> dict[str, Any]:
    primary, secondary = sims
    return {
        "settings": {
            "master_key": MASTER_KEY,
            "database_url": fresh_sqlite_url(),
            "breaker": {"consecutive_failures": 50},
            "cache": {"enabled": False},
            "request_timeout_s": 5,
            "retry": {"connection": {"retries": 2}, "rate_limited": {"max_wait_s": 2}},
            **settings,
        },
        "providers": {
            "one": {"type": "openai-compatible", "base_url": primary.base_url, "api_key": "none"},
            "two": {"type": "openai-compatible", "base_url": secondary.base_url, "api_key": "none"},
        },
        "deployments": [
            {"id": "primary", "model": "gemini-2.5-flash", "provider": "one", **SMALL_WINDOW},
            {"id": "secondary", "model": "gemini-2.5-pro", "provider": "two"},
        ],
        "groups": {"chain": ["gemini-2.5-flash", "gemini-2.5-pro"]},
    }


def client_for(start_gateway: GatewayFactory, raw: dict[str, Any]) -> openai.OpenAI:
    gateway = start_gateway(raw)
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20)


def ask(client: openai.OpenAI, **extra: Any) -> Any:
    return client.chat.completions.with_raw_response.create(model="chain", messages=USER, **extra)


def fallback_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("fallback ")]


@pytest.mark.parametrize(
    ("fault", "times", "attempts"),
    [
        (Fault.status(503), 2, 3),  # server_error: 1 retry, then the secondary
        (Fault.hang(10), 2, 3),  # timeout: 1 retry
        (Fault.drop(), 3, 4),  # connection: 2 retries (retry.connection)
        (Fault.status(429), 2, 3),  # rate_limited without a hint: 1 retry after a backoff
    ],
    ids=["5xx", "timeout", "connection", "429"],
)
def test_each_failure_class_is_retried_then_falls_back(
    sims: tuple[ContextSim, SimulatedProvider],
    start_gateway: GatewayFactory,
    caplog: pytest.LogCaptureFixture,
    fault: FaultType,
    times: int,
    attempts: int,
) -> None:
    primary, secondary = sims
    settings = {"request_timeout_s": 0.3} if fault.kind == "hang" else {}
    client = client_for(start_gateway, config(sims, **settings))
    primary.inject(fault, times=times)
    with caplog.at_level(logging.WARNING, "nemorouter.router"):
        raw = ask(client, extra_headers={"x-nemo-job-id": "job-f"})
    assert raw.headers["x-nemo-deployment"] == "secondary"
    assert raw.headers["x-nemo-attempts"] == str(attempts)
    assert raw.headers["x-nemo-fallbacks"] == "1"
    assert len(primary.requests) == times and len(secondary.requests) == 1
    [line] = fallback_lines(caplog)
    assert line.job_id == "job-f"  # type: ignore[attr-defined]
    assert line.request_id == raw.headers["x-request-id"]  # type: ignore[attr-defined]
    assert (line.fallback_from, line.fallback_to) == ("gemini-2.5-flash", "gemini-2.5-pro")  # type: ignore[attr-defined]


def test_retry_after_is_honoured_on_the_same_deployment(
    sims: tuple[ContextSim, SimulatedProvider], start_gateway: GatewayFactory
) -> None:
    primary, _secondary = sims
    client = client_for(start_gateway, config(sims))
    primary.inject(Fault.status(429, retry_after=1))
    raw = ask(client)
    assert raw.headers["x-nemo-deployment"] == "primary"
    assert raw.headers["x-nemo-attempts"] == "2"
    first, second = primary.requests
    assert second.at - first.at >= 0.95
    primary.clear()
    primary.inject(Fault.status(429, retry_after_ms=2500))  # beyond max_wait_s (2): move on
    started = time.monotonic()
    raw = ask(client)
    assert time.monotonic() - started < 1.0
    assert raw.headers["x-nemo-deployment"] == "secondary"
    assert len(primary.requests) == 1


def test_client_error_is_neither_retried_nor_failed_over(
    sims: tuple[ContextSim, SimulatedProvider], start_gateway: GatewayFactory
) -> None:
    primary, secondary = sims
    client = client_for(start_gateway, config(sims))
    primary.inject(Fault.status(422))
    with pytest.raises(openai.BadRequestError):
        ask(client)
    assert len(primary.requests) == 1 and secondary.requests == []


def test_context_window_exceeded_moves_to_the_larger_window(
    sims: tuple[ContextSim, SimulatedProvider], start_gateway: GatewayFactory
) -> None:
    primary, _secondary = sims
    client = client_for(start_gateway, config(sims))
    primary.inject(Fault.status(400))
    raw = ask(client)
    assert raw.headers["x-nemo-deployment"] == "secondary"
    assert raw.headers["x-nemo-fallbacks"] == "1"
    assert raw.headers["x-nemo-attempts"] == "2"
    assert len(primary.requests) == 1  # never retried on the same window


def test_the_deadline_ends_every_attempt_with_a_504(
    sims: tuple[ContextSim, SimulatedProvider], start_gateway: GatewayFactory
) -> None:
    primary, secondary = sims
    client = client_for(start_gateway, config(sims, request_deadline_s=0.6))
    primary.inject(Fault.status(503), times=2)
    secondary.inject(Fault.hang(10))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        ask(client)
    assert info.value.status_code == 504
    assert 0.5 < time.monotonic() - started < 2.0
    message = str(info.value.body["message"])  # type: ignore[index]
    assert "deadline (0.6s)" in message
    assert "attempt 1 primary" in message and "cut short by the request deadline" in message


def test_stream_fails_over_before_its_first_byte_only(
    sims: tuple[ContextSim, SimulatedProvider], start_gateway: GatewayFactory
) -> None:
    primary, secondary = sims
    client = client_for(start_gateway, config(sims))
    primary.inject(Fault.status(502), times=2)
    with client.chat.completions.with_streaming_response.create(
        model="chain", messages=USER, stream=True
    ) as response:
        assert response.headers["x-nemo-deployment"] == "secondary"
        assert response.headers["x-nemo-fallbacks"] == "1"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text.startswith("Simulated answer")
    primary.clear()
    secondary.clear()
    primary.inject(Fault.cut_stream(after_chunks=2))  # after the first byte: no failover
    stream = client.chat.completions.create(model="chain", messages=USER, stream=True)
    with pytest.raises(openai.APIError, match="stream broke off"):
        for _ in stream:
            pass
    assert len(primary.requests) == 1 and secondary.requests == []


def test_stream_that_breaks_before_its_first_chunk_fails_over(
    sims: tuple[ContextSim, SimulatedProvider], start_gateway: GatewayFactory
) -> None:
    """A 200 whose body breaks before any chunk: nothing reached the client, so the
    request goes on along the chain like any other failure."""
    primary, secondary = sims
    client = client_for(start_gateway, config(sims))
    primary.inject(Fault.cut_stream(after_chunks=0), times=3)  # the attempt and its 2 retries
    with client.chat.completions.with_streaming_response.create(
        model="chain", messages=USER, stream=True
    ) as response:
        assert response.headers["x-nemo-deployment"] == "secondary"
        assert response.headers["x-nemo-fallbacks"] == "1"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text.startswith("Simulated answer")
    assert len(primary.requests) == 3 and len(secondary.requests) == 1


def test_open_breaker_sends_the_chain_straight_to_the_secondary(
    sims: tuple[ContextSim, SimulatedProvider], start_gateway: GatewayFactory
) -> None:
    primary, _secondary = sims
    gateway = start_gateway(
        config(sims, breaker={"consecutive_failures": 3, "cooldown_s": 0.5}, retries=0)
    )
    client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    primary.inject(Fault.status(500), times=3)
    for _ in range(3):
        assert (
            ask(client, extra_headers={"x-nemo-job-id": "job-b"}).headers["x-nemo-fallbacks"] == "1"
        )
    assert len(primary.requests) == 3
    for _ in range(5):  # open: skipped with no call, still counted as a fallback
        raw = ask(client, extra_headers={"x-nemo-job-id": "job-b"})
        assert raw.headers["x-nemo-deployment"] == "secondary"
        assert raw.headers["x-nemo-fallbacks"] == "1" and raw.headers["x-nemo-attempts"] == "1"
    assert len(primary.requests) == 3
    time.sleep(0.6)  # cooldown over: one probe, it succeeds, the breaker closes
    assert ask(client).headers["x-nemo-deployment"] == "primary"
    assert ask(client).headers["x-nemo-deployment"] == "primary"
    # the spend record carries the fallbacks and attempts of every request
    deadline = time.monotonic() + 5
    while True:
        report = httpx.get(
            f"{gateway.url}/admin/jobs/job-b", headers={"Authorization": f"Bearer {MASTER_KEY}"}
        )
        if report.status_code == 200 and report.json()["requests"] == 8:
            break
        assert time.monotonic() < deadline, report.text
        time.sleep(0.05)
    assert report.json()["fallbacks"] == 8
