"""Every error row of DESIGN §2.1 that exists so far raises the matching SDK exception."""

from __future__ import annotations

import httpx
import openai
import pytest

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import Fault, SimulatedProvider
from nemorouter.testing.processes import free_port

from .conftest import MASTER_KEY, GatewayFactory, gateway_config

USER = [{"role": "user", "content": "hello"}]


def error_body(exc: openai.APIStatusError) -> dict[str, object]:
    body = exc.body
    assert isinstance(body, dict)
    assert set(body) == {"message", "type", "param", "code"}
    return body


def test_missing_and_wrong_key_are_401(gateway: BackgroundGateway) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key="sk-wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gemini-2.5-pro", messages=USER)
    assert error_body(info.value)["code"] == "invalid_api_key"
    body = {"model": "gemini-2.5-pro", "messages": USER}
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer  x"}):
        response = httpx.post(f"{gateway.base_url}/chat/completions", json=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
    client = openai.OpenAI(base_url=gateway.base_url, api_key="sk-wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_invalid_body_is_400(client: openai.OpenAI, gateway: BackgroundGateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gemini-2.5-pro", messages=[])
    assert error_body(info.value)["code"] == "invalid_request"
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_unknown_model_and_route_are_404(client: openai.OpenAI, gateway: BackgroundGateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-17", messages=USER)
    body = error_body(info.value)
    assert body["code"] == "model_not_found"
    assert "gemini-2.5-flash" in str(body["message"])
    response = httpx.get(f"{gateway.url}/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = httpx.get(f"{gateway.base_url}/chat/completions")
    assert response.status_code == 405


def test_body_over_limit_is_413(sim: SimulatedProvider, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(gateway_config(sim, max_body_mb=0.25))
    client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    big = [{"role": "user", "content": "x" * 400_000}]
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gemini-2.5-pro", messages=big)
    assert info.value.status_code == 413
    assert error_body(info.value)["code"] == "request_too_large"
    assert sim.requests == []

    # chunked upload without content-length is cut off too
    def chunks():
        yield b'{"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}]}'

    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        content=chunks(),
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
    )
    assert response.status_code == 413


def test_one_retry_recovers_a_blip(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.inject(Fault.status(503))
    raw = client.chat.completions.with_raw_response.create(model="gemini-2.5-pro", messages=USER)
    assert raw.headers["x-nemo-attempts"] == "2"
    assert len(sim.requests) == 2


def test_dropped_connection_is_retried(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.inject(Fault.drop())
    raw = client.chat.completions.with_raw_response.create(model="gemini-2.5-pro", messages=USER)
    assert raw.headers["x-nemo-attempts"] == "2"


def test_rate_limit_hint_is_honoured(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.inject(Fault.status(429, retry_after=1))
    raw = client.chat.completions.with_raw_response.create(model="gemini-2.5-pro", messages=USER)
    assert raw.headers["x-nemo-attempts"] == "2"
    first, second = sim.requests
    assert second.at - first.at >= 0.95


def test_persistent_failure_is_503_listing_attempts(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    sim.inject(Fault.status(500), times=2)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gemini-2.5-pro", messages=USER)
    assert info.value.status_code == 503
    body = error_body(info.value)
    assert body["code"] == "all_deployments_failed"
    assert "attempt 1 pro" in str(body["message"]) and "attempt 2 pro" in str(body["message"])


def test_upstream_timeout_is_504(sim: SimulatedProvider, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(gateway_config(sim, request_timeout_s=0.3))
    client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    sim.inject(Fault.hang(seconds=5), times=2)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gemini-2.5-pro", messages=USER)
    assert info.value.status_code == 504
    assert "timeout" in str(error_body(info.value)["message"])


def test_provider_rejection_is_a_400_not_retried(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    sim.inject(Fault.status(400))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gemini-2.5-pro", messages=USER)
    assert "rejected the request" in str(error_body(info.value)["message"])
    assert len(sim.requests) == 1


def test_stream_cut_midway_raises_in_the_sdk(client: openai.OpenAI, sim: SimulatedProvider) -> None:
    sim.inject(Fault.cut_stream(after_chunks=2))
    stream = client.chat.completions.create(model="gemini-2.5-pro", messages=USER, stream=True)
    with pytest.raises(openai.APIError, match="stream broke off"):
        for _ in stream:
            pass


def test_stream_failing_before_first_byte_is_retried(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    sim.inject(Fault.status(502))
    stream = client.chat.completions.create(model="gemini-2.5-pro", messages=USER, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("Simulated answer")
    assert len(sim.requests) == 2


def dead_pro_client(sim: SimulatedProvider, start_gateway: GatewayFactory) -> openai.OpenAI:
    """A gateway whose gemini-2.5-pro deployment points at a closed port."""
    raw = gateway_config(sim)
    raw["providers"]["dead"] = {
        "type": "openai-compatible",
        "base_url": f"http://127.0.0.1:{free_port()}/v1",
    }
    raw["deployments"][2]["provider"] = "dead"
    gateway = start_gateway(raw)
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)


def test_chain_falls_back_past_a_dead_provider(
    sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    client = dead_pro_client(sim, start_gateway)
    response = client.chat.completions.with_raw_response.create(
        model="document-vision", messages=USER
    )
    assert response.headers["x-nemo-model"] == "gemini-2.5-flash"
    assert response.headers["x-nemo-fallbacks"] == "1"
    assert response.headers["x-nemo-attempts"] == "3"


def test_request_fallbacks_and_disable_fallbacks(
    sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    client = dead_pro_client(sim, start_gateway)
    response = client.chat.completions.with_raw_response.create(
        model="gemini-2.5-pro", messages=USER, extra_body={"fallbacks": ["gemini-2.5-flash"]}
    )
    assert response.headers["x-nemo-model"] == "gemini-2.5-flash"
    assert response.headers["x-nemo-fallbacks"] == "1"
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="document-vision", messages=USER, extra_body={"disable_fallbacks": True}
        )


def test_circuit_opens_and_the_dead_deployment_gets_no_calls(
    sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    gateway = start_gateway(
        gateway_config(sim, breaker={"consecutive_failures": 2, "cooldown_s": 60})
    )
    client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    sim.inject(Fault.status(503), times=2)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gemini-2.5-pro", messages=USER)
    sent = len(sim.requests)
    with pytest.raises(openai.InternalServerError, match="circuit open"):
        client.chat.completions.create(model="gemini-2.5-pro", messages=USER)
    assert len(sim.requests) == sent  # skipped with no network call
    response = client.chat.completions.with_raw_response.create(
        model="document-vision", messages=USER
    )
    assert response.headers["x-nemo-model"] == "gemini-2.5-flash"  # the chain routes around it
