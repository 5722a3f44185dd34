"""LiteLLM's probe paths answer as the gateway's own: a Kubernetes manifest copied from a
LiteLLM deployment (`/health/liveliness`, `/health/readiness`) keeps working unchanged."""

from __future__ import annotations

import httpx

from nemorouter.testing import SimulatedProvider
from nemorouter.testing.processes import free_port

from .conftest import GatewayFactory, gateway_config
from .helpers import BackgroundGateway


def _pairs(gateway: BackgroundGateway) -> list[tuple[httpx.Response, httpx.Response]]:
    get = lambda path: httpx.get(f"{gateway.url}{path}", timeout=10)  # noqa: E731
    return [
        (get("/health"), get("/health/liveliness")),
        (get("/health/ready"), get("/health/readiness")),
    ]


def test_litellm_probe_paths_answer_like_health_and_ready(gateway: BackgroundGateway) -> None:
    (live, liveliness), (ready, readiness) = _pairs(gateway)
    assert liveliness.status_code == live.status_code == 200
    assert liveliness.json() == live.json() == {"status": "ok"}
    assert readiness.status_code == ready.status_code == 200
    assert readiness.json() == ready.json()
    assert readiness.json()["status"] == "ready"


def test_readiness_alias_reports_a_dependency_down_as_ready_does(
    sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    # Redis configured but nothing listens there: not ready, on both paths.
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    gateway = start_gateway(gateway_config(sim, redis_url=dead_redis))
    (live, liveliness), (ready, readiness) = _pairs(gateway)
    assert live.status_code == liveliness.status_code == 200
    assert ready.status_code == readiness.status_code == 503
    assert readiness.json()["status"] == ready.json()["status"] == "unavailable"
    assert readiness.json()["down"] == ready.json()["down"]
