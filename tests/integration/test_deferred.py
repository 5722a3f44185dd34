"""Deferred jobs end to end: the official openai SDK's files/batches calls through a real
gateway, against the simulated provider's OpenAI Batch API (and its chat endpoint for the
lines that run interactively)."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from nemorouter.catalog import load_catalog
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.services import fresh_postgres_database

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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Any:
    if request.param == "sqlite":
        yield fresh_sqlite_url()
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture
def gateway(
    sim: SimulatedProvider, start_gateway: GatewayFactory, database_url: str
) -> BackgroundGateway:
    return start_gateway(deferred_config(sim, database_url=database_url))


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
    output = client.files.retrieve(batch.output_file_id)
    assert output.purpose == "batch_output" and batch.error_file_id is None
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


def admin(gateway: BackgroundGateway, method: str, path: str, **kw: Any) -> Any:
    answer = httpx.request(
        method,
        f"{gateway.base_url.removesuffix('/v1')}{path}",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        **kw,
    )
    answer.raise_for_status()
    return answer.json()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_malformed_file_is_a_400_naming_the_line(client: openai.OpenAI) -> None:
    lines = jsonl([request_line(0)]).getvalue() + b"{not json\n"
    with pytest.raises(openai.BadRequestError, match="Line 2 of the input file"):
        client.files.create(file=("bad.jsonl", io.BytesIO(lines)), purpose="batch")
    wrong_url = [request_line(0), {**request_line(1), "url": "/v1/embeddings"}]
    with pytest.raises(openai.BadRequestError, match="Line 2 of the input file: 'url'"):
        client.files.create(file=("bad.jsonl", jsonl(wrong_url)), purpose="batch")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_invalid_lines_go_to_the_error_file_and_the_rest_completes(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    lines = [
        request_line(0),
        request_line(1, model="no-such-model"),  # 404 interactively
        {**request_line(2), "body": {"model": "gpt-4o-mini"}},  # no messages: 400
        request_line(3, tags=["audio"]),  # no deployment has the tag: 400 tag_mismatch
        request_line(4),
    ]
    sim.batches.fail_custom_ids = {"l4"}  # the provider fails the last line: 500 in its batch
    batch = run(client, lines)
    assert batch.status == "completed"
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 4)
    assert [o["custom_id"] for o in read(client, batch.output_file_id)] == ["page-0"]
    errors = {e["custom_id"]: e for e in read(client, batch.error_file_id)}
    assert errors["page-1"]["response"]["status_code"] == 404
    assert errors["page-1"]["response"]["body"]["error"]["code"] == "model_not_found"
    assert errors["page-2"]["response"]["status_code"] == 400
    assert errors["page-3"]["response"]["body"]["error"]["code"] == "tag_mismatch"
    assert errors["page-4"]["response"] is None and errors["page-4"]["error"]["code"]
    assert sim.batches.submitted_lines == 2  # only admitted lines reach the provider


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_fallback_interactive_retries_failed_lines_live(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    sim.batches.fail_custom_ids = {"l1"}
    batch = run(client, [request_line(i) for i in range(3)], metadata={"fallback": "interactive"})
    assert batch.status == "completed" and batch.request_counts.completed == 3
    assert sim.request_count == 1  # the failed line, once, through the chat endpoint
    assert batch.error_file_id is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_mixed_batch_runs_lines_without_a_batch_api_interactively(
    client: openai.OpenAI, sim: SimulatedProvider, gateway: BackgroundGateway
) -> None:
    lines = [request_line(i) for i in range(6)]
    lines += [request_line(i, model="gemini-2.5-flash") for i in range(6, 10)]
    batch = run(client, lines, metadata={"job_id": "mixed-job"})
    assert batch.status == "completed" and batch.request_counts.completed == 10
    assert sim.batches.submitted_lines == 6 and sim.request_count == 4
    out = {o["custom_id"]: o["response"]["body"] for o in read(client, batch.output_file_id)}
    assert {out[f"page-{i}"]["model"] for i in range(6, 10)} == {"gemini-2.5-flash"}
    costs = [Decimal(body["usage"]["cost"]) for body in out.values()]
    deadline = time.monotonic() + 10
    report = job(gateway, "mixed-job")
    while report["interactive_requests"] < 4:  # live lines' rows go through the batched writer
        assert time.monotonic() < deadline
        time.sleep(0.1)
        report = job(gateway, "mixed-job")
    assert (report["deferred_requests"], report["interactive_requests"]) == (6, 4)
    assert Decimal(report["deferred_cost_usd"]) + Decimal(report["interactive_cost_usd"]) == sum(
        costs
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_budget_refuses_lines_and_another_key_sees_nothing(
    client: openai.OpenAI, sim: SimulatedProvider, gateway: BackgroundGateway
) -> None:
    created = admin(gateway, "POST", "/admin/keys", json={"name": "small", "budget_usd": "0.0006"})
    keyed = openai.OpenAI(base_url=gateway.base_url, api_key=created["key"], max_retries=0)
    # each line's worst case at the batch price: ~8 prompt tokens + 16,384 max output
    batch = run(keyed, [request_line(i) for i in range(3)])
    errors = read(keyed, batch.error_file_id)
    assert batch.request_counts.completed == 1 and len(errors) == 2
    assert {e["response"]["body"]["error"]["code"] for e in errors} == {"budget_exceeded"}
    assert {e["response"]["status_code"] for e in errors} == {402}
    narrow = admin(gateway, "POST", "/admin/keys", json={"name": "n", "models": ["gpt-4o-mini"]})
    limited = openai.OpenAI(base_url=gateway.base_url, api_key=narrow["key"], max_retries=0)
    mixed = run(limited, [request_line(0), request_line(1, model="gemini-2.5-flash")])
    [refused] = read(limited, mixed.error_file_id)
    assert refused["custom_id"] == "page-1" and refused["response"]["status_code"] == 403
    assert refused["response"]["body"]["error"]["code"] == "model_not_allowed"
    other = admin(gateway, "POST", "/admin/keys", json={"name": "other"})
    stranger = openai.OpenAI(base_url=gateway.base_url, api_key=other["key"], max_retries=0)
    with pytest.raises(openai.NotFoundError):
        stranger.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        stranger.files.content(batch.output_file_id)
    assert [b.id for b in stranger.batches.list()] == []
    assert [b.id for b in keyed.batches.list()] == [batch.id]
    with pytest.raises(openai.BadRequestError, match="'limit' must be 1 to 100"):
        keyed.batches.list(limit=0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cancel_ends_the_batch_and_its_provider_batch(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    sim.batches.progress_s = 30
    upload = client.files.create(file=("p.jsonl", jsonl([request_line(i) for i in range(4)])),
                                 purpose="batch")  # fmt: skip
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 10
    while sim.batches.submitted_lines < 4:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.batches.cancel(batch.id).status == "cancelling"
    ended = wait(client, batch.id, 20)
    assert ended.status == "cancelled" and ended.cancelled_at is not None
    assert all(b.cancelled is not None for b in sim.batches.batches.values())
    codes = {e["error"]["code"] for e in read(client, ended.error_file_id)}
    assert codes == {"no_result"} and ended.request_counts.failed == 4


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_restarted_gateway_resumes_polling_and_loses_no_line(
    sim: SimulatedProvider, start_gateway: GatewayFactory, database_url: str
) -> None:
    sim.batches.progress_s = 2.0
    config = deferred_config(sim, database_url=database_url)
    first = start_gateway(config)
    client = openai.OpenAI(base_url=first.base_url, api_key=MASTER_KEY, max_retries=0)
    upload = client.files.create(file=("p.jsonl", jsonl([request_line(i) for i in range(50)])),
                                 purpose="batch")  # fmt: skip
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h",
        metadata={"job_id": "resumed"},
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while sim.batches.submitted_lines < 50:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.stop()  # the provider batch is still in progress
    second = start_gateway(config)
    client = openai.OpenAI(base_url=second.base_url, api_key=MASTER_KEY, max_retries=0)
    ended = wait(client, batch.id, 30)
    assert ended.status == "completed" and ended.request_counts.completed == 50
    assert len(sim.batches.batches) == 1  # polled again, never submitted again
    assert len(read(client, ended.output_file_id)) == 50
    report = job(second, "resumed")
    assert report["deferred_requests"] == 50


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_provider_batch_that_expires_leaves_error_lines_or_runs_them_live(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    sim.batches.expire = True  # the provider answers half the lines, then its window ends
    batch = run(client, [request_line(i) for i in range(4)])
    assert batch.status == "completed"
    assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 2)
    codes = {e["error"]["code"] for e in read(client, batch.error_file_id)}
    assert codes == {"batch_expired"}
    retried = run(client, [request_line(i) for i in range(4)], metadata={"fallback": "interactive"})
    assert retried.request_counts.completed == 4 and sim.request_count == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_job_id_comes_from_the_line_else_the_batch_else_the_header(
    client: openai.OpenAI, gateway: BackgroundGateway
) -> None:
    own = request_line(0, metadata={"job_id": "line-job"})
    batch = run(client, [own, request_line(1)], extra_headers={"x-nemo-job-id": "header-job"})
    assert batch.status == "completed"
    assert job(gateway, "line-job")["deferred_requests"] == 1
    assert job(gateway, "header-job")["deferred_requests"] == 1
    with pytest.raises(openai.BadRequestError, match=r"metadata\.job_id"):
        run(client, [request_line(0)], metadata={"job_id": "x" * 300})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_batch_past_its_24h_window_expires(
    client: openai.OpenAI, sim: SimulatedProvider, database_url: str
) -> None:
    sim.batches.progress_s = 60
    upload = client.files.create(file=("p.jsonl", jsonl([request_line(i) for i in range(3)])),
                                 purpose="batch")  # fmt: skip
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.expires_at == batch.created_at + 24 * 3600
    deadline = time.monotonic() + 10
    while sim.batches.submitted_lines < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:  # the window has passed
        db.execute("UPDATE deferred_batches SET expires_at = 0 WHERE id = ?", (batch.id,))
    ended = wait(client, batch.id, 20)
    assert ended.status == "expired" and ended.expired_at is not None
    assert ended.request_counts.failed == 3
    assert all(b.cancelled is not None for b in sim.batches.batches.values())  # stopped upstream


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_refused_submission_is_retried_or_fails_its_lines(
    client: openai.OpenAI, sim: SimulatedProvider
) -> None:
    sim.batches.refuse_create = [429, 429]  # passing: tried again with backoff
    batch = run(client, [request_line(i) for i in range(3)])
    assert batch.request_counts.completed == 3 and len(sim.batches.batches) == 1
    sim.batches.refuse_create = [400]  # refused for good: the lines fail, the batch completes
    batch = run(client, [request_line(i) for i in range(3)])
    assert batch.status == "completed" and batch.request_counts.failed == 3
    assert {e["error"]["code"] for e in read(client, batch.error_file_id)} == {"batch_failed"}
    sim.batches.refuse_create = [400]
    batch = run(client, [request_line(i) for i in range(3)], metadata={"fallback": "interactive"})
    assert batch.request_counts.completed == 3 and sim.request_count == 3  # run live instead
