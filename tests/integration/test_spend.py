"""Spend records through a real gateway, on SQLite and on PostgreSQL: the per-call cost
headers of a job add up to the job's cost in the admin API, to the last digit."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import Fault, SimulatedProvider
from tests.services import fresh_postgres_database

from .conftest import MASTER_KEY, GatewayFactory, fresh_sqlite_url, gateway_config

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(params=["sqlite", "postgresql"])
def spend_gateway(
    request: pytest.FixtureRequest, sim: SimulatedProvider, start_gateway: GatewayFactory
) -> Iterator[BackgroundGateway]:
    if request.param == "sqlite":
        yield start_gateway(gateway_config(sim, database_url=fresh_sqlite_url()))
        return
    with fresh_postgres_database() as url:
        gateway = start_gateway(gateway_config(sim, database_url=url))
        yield gateway
        gateway.stop()  # before the database is dropped


def admin_get(gateway: BackgroundGateway, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{gateway.url}{path}", params=params, headers=ADMIN, timeout=30)


def page_image(shade: int) -> str:
    image = Image.new("L", (64, 80), color=shade)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def one_call(client: openai.OpenAI, i: int, job: str) -> Decimal:
    """Call i of the job, in one of several shapes; returns its cost header."""
    content: Any = f"Invoice page {i}: " + "line item " * (i % 37)
    if i % 5 == 0:
        content = [{"type": "text", "text": content}, {"type": "image_url", "image_url": {"url": page_image(i % 255)}}]  # fmt: skip
    model = ("gemini-2.5-flash", "gemini-2.5-pro", "document-vision")[i % 3]
    extra_headers: dict[str, str] = {}
    metadata: dict[str, Any] = {"doc": f"doc-{i // 10}", "page": i % 10}
    if i % 4 == 0:
        extra_headers["x-nemo-job-id"] = job  # the header
    elif i % 4 == 1:
        metadata["tags"] = [f"job:{job}"]  # LiteLLM's job tag
    else:
        metadata["job_id"] = job
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": content}],
        max_tokens=50 + i % 200,
        extra_headers=extra_headers,
        extra_body={"metadata": metadata},
    )
    assert raw.headers["x-nemo-response-cost"] == raw.headers["x-litellm-response-cost"]
    return Decimal(raw.headers["x-nemo-response-cost"])


def test_job_cost_equals_the_sum_of_its_cost_headers(spend_gateway: BackgroundGateway) -> None:
    client = openai.OpenAI(base_url=spend_gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    job = "invoices-2026-11"
    with ThreadPoolExecutor(16) as pool:
        costs = list(pool.map(lambda i: one_call(client, i, job), range(500)))
    summed = sum(costs, Decimal(0))
    assert summed > 0

    report = admin_get(spend_gateway, f"/admin/jobs/{job}").json()
    assert Decimal(report["cost_usd"]) == summed  # to the last digit
    assert report["cost_usd"] == format(summed.normalize(), "f")
    assert report["requests"] == report["succeeded"] == 500
    assert report["failed"] == 0
    assert sum(Decimal(m["cost_usd"]) for m in report["models"].values()) == summed
    assert sum(m["requests"] for m in report["models"].values()) == 500

    listed = admin_get(spend_gateway, "/admin/jobs").json()["jobs"]
    assert [j["job_id"] for j in listed] == [job]
    by_model = admin_get(spend_gateway, "/admin/spend", group_by="model", job_id=job).json()
    assert Decimal(by_model["total_cost_usd"]) == summed
    by_day = admin_get(spend_gateway, "/admin/spend", group_by="day").json()
    assert sum(row["requests"] for row in by_day["rows"]) == 500


def test_failures_and_streams_are_recorded(
    spend_gateway: BackgroundGateway, sim: SimulatedProvider
) -> None:
    client = openai.OpenAI(base_url=spend_gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    meta = {"metadata": {"job_id": "mixed", "customer": "acme"}}
    sim.inject(Fault.status(500), times=2)  # both attempts of the one deployment fail
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gemini-2.5-pro", messages=[{"role": "user", "content": "x"}], extra_body=meta
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}], extra_body=meta
        )
    stream = client.chat.completions.create(
        model="gemini-2.5-flash",
        messages=[{"role": "user", "content": "stream this"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body=meta,
    )
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]
    stream_cost = Decimal(usage[0].model_dump()["cost"])

    report = admin_get(spend_gateway, "/admin/jobs/mixed").json()
    assert (report["requests"], report["succeeded"], report["failed"]) == (3, 1, 2)
    assert Decimal(report["cost_usd"]) == stream_cost
    assert report["models"]["gemini-2.5-flash"] == {"requests": 1, "cost_usd": str(stream_cost)}


def test_admin_api_refuses_bad_keys_and_bad_queries(spend_gateway: BackgroundGateway) -> None:
    assert httpx.get(f"{spend_gateway.url}/admin/jobs").status_code == 401
    wrong = httpx.get(f"{spend_gateway.url}/admin/jobs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    bad_group = admin_get(spend_gateway, "/admin/spend", group_by="colour")
    assert bad_group.status_code == 400
    assert bad_group.json()["error"]["param"] == "group_by"
    assert admin_get(spend_gateway, "/admin/spend", start="yesterday").status_code == 400
    assert admin_get(spend_gateway, "/admin/jobs", limit="0").status_code == 400
    missing = admin_get(spend_gateway, "/admin/jobs/never-ran")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "job_not_found"


def test_metrics_count_requests_tokens_and_cost(
    sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    gateway = start_gateway(gateway_config(sim))
    client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    costs = Decimal(0)
    tokens = 0
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "hello"}]
        )
        costs += Decimal(raw.headers["x-nemo-response-cost"])
        usage = raw.parse().usage
        assert usage is not None
        tokens += usage.prompt_tokens
    text = httpx.get(f"{gateway.url}/metrics").text
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['nemorouter_requests_total{model="gemini-2.5-flash",status="200"}'] == 3
    assert samples['nemorouter_tokens_total{kind="prompt",model="gemini-2.5-flash"}'] == tokens
    assert samples['nemorouter_cost_usd_total{model="gemini-2.5-flash"}'] == pytest.approx(
        float(costs)
    )
    assert samples['nemorouter_request_duration_seconds_count{model="gemini-2.5-flash"}'] == 3
