"""Deferred jobs end to end: the official openai SDK's files/batches calls through a real
gateway, against the simulated provider's OpenAI Batch API (and its chat endpoint for the
lines that run interactively)."""

from __future__ import annotations

import io
import json
import time
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from nemorouter.catalog import load_catalog
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider

from .conftest import MASTER_KEY, GatewayFactory, fresh_sqlite_url
from .helpers import reset

ENDED = ("completed", "failed", "expired", "cancelled")
PRICE = load_catalog()["gpt-4o-mini"].pricing  # batch lines cost half of it


def deferred_config(sim: SimulatedProvider, **settings: Any) -> dict[str, Any]:
    return {
        "settings": {
            "master_key": MASTER_KEY,
            "database_url": fresh_sqlite_url(),
            "cache": {"enabled": False},
            "breaker": {"consecutive_failures": 50},
            "deferred": {"poll_s": 0.1, "poll_max_s": 0.3, "tick_s": 0.1, "lease_s": 2},
            **settings,
        },
        "providers": {
            # OpenAI's Batch API at its catalog batch price (50 %)
            "oai": {"type": "openai", "base_url": sim.base_url, "api_key": "sk-sim"},
            # no batch price known for this type: its lines run interactively
            "vllm": {"type": "openai-compatible", "base_url": sim.base_url, "api_key": "none"},
        },
        "deployments": [
            {"id": "mini", "model": "gpt-4o-mini", "provider": "oai"},
            {"id": "flash", "model": "gemini-2.5-flash", "provider": "vllm"},
        ],
    }


def jsonl(lines: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(line) + "\n" for line in lines).encode())


def request_line(i: int, model: str = "gpt-4o-mini", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": f"page-{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": f"page {i}"}], **body},
    }


def run(client: openai.OpenAI, lines: list[dict[str, Any]], timeout_s: float = 60, **kw: Any):
    upload = client.files.create(file=("pages.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h", **kw
    )
    return wait(client, batch.id, timeout_s)


def wait(client: openai.OpenAI, batch_id: str, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    batch = client.batches.retrieve(batch_id)
    while batch.status not in ENDED:
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.1)
        batch = client.batches.retrieve(batch_id)
    return batch


def read(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines() if x.strip()]


@pytest.fixture
def sim() -> Any:
    with SimulatedProvider() as server:
        yield reset(server)


@pytest.fixture
def gateway(sim: SimulatedProvider, start_gateway: GatewayFactory) -> BackgroundGateway:
    return start_gateway(deferred_config(sim))


@pytest.fixture
def client(gateway: BackgroundGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=20)


def job(gateway: BackgroundGateway, job_id: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{gateway.base_url.removesuffix('/v1')}/admin/jobs/{job_id}",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    )
    answer.raise_for_status()
    return answer.json()


def half_price(usage: dict[str, Any]) -> Decimal:
    return (
        Decimal(usage["prompt_tokens"]) * PRICE.input_per_mtok
        + Decimal(usage["completion_tokens"]) * PRICE.output_per_mtok
    ) / Decimal(2_000_000)


def test_200_line_job_runs_on_the_provider_batch_api_at_half_price(
    client: openai.OpenAI, sim: SimulatedProvider, gateway: BackgroundGateway
) -> None:
    lines = [request_line(i) for i in range(200)]
    batch = run(client, lines, metadata={"job_id": "deferred-200"})
    assert batch.status == "completed"
    assert batch.request_counts.total == 200 and batch.request_counts.completed == 200
    assert sim.batches.submitted_lines == 200 and sim.request_count == 0  # no live call
    out = read(client, batch.output_file_id)
    assert sorted(o["custom_id"] for o in out) == sorted(x["custom_id"] for x in lines)
    total = Decimal(0)
    for line in out:
        body = line["response"]["body"]
        assert line["response"]["status_code"] == 200 and body["model"] == "gpt-4o-mini"
        cost = Decimal(body["usage"]["cost"])
        assert cost == half_price(body["usage"])
        total += cost
    time.sleep(0.3)  # spend rows are written with the outcomes
    report = job(gateway, "deferred-200")
    assert report["deferred_requests"] == 200
    assert Decimal(report["deferred_cost_usd"]) == total == Decimal(report["cost_usd"])
    assert Decimal(report["interactive_cost_usd"]) == 0
