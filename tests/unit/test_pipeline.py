"""The pipeline over its stages, with in-memory fakes (no HTTP server, database or Redis).

Each test would fail if its stage were skipped: the refusal comes from that stage, and
the fakes show that no provider call was made, or that a reservation was given back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from nemorouter.core.pipeline import Inbound
from nemorouter.types.errors import GatewayError
from nemorouter.types.upstream import FailureKind, UpstreamFailure
from tests.unit.pipeline_fakes import Harness, key

MASTER = b"Bearer sk-master"


def body(model: str = "gemini-2.5-flash", stream: bool = False, **fields: Any) -> bytes:
    return orjson.dumps(
        {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]} | fields
    )


async def test_an_unknown_key_is_refused_before_anything_runs() -> None:
    harness = Harness()
    with pytest.raises(GatewayError) as refused:
        await harness.chat(body(), token=b"Bearer sk-wrong")
    assert refused.value.status == 401
    assert harness.provider.calls == [] and harness.rows.rows == []


async def test_required_tags_no_deployment_has_are_refused() -> None:
    harness = Harness()
    with pytest.raises(GatewayError) as refused:
        await harness.chat(body("gemini-2.5-flash"), tags=b"eu")  # only pro-a is tagged eu
    assert refused.value.code == "tag_mismatch"
    assert harness.provider.calls == []
    [row] = harness.rows.rows  # the refused request is recorded, once
    assert row["status"] == 400 and row["error_code"] == "tag_mismatch"
    await harness.chat(body("gemini-2.5-pro"), tags=b"eu")  # a tagged deployment: served
    assert harness.provider.calls == ["pro-a"]


async def test_a_key_over_its_rpm_gets_429_without_a_provider_call() -> None:
    harness = Harness({b"Bearer sk-k1": key(rpm=1)})
    await harness.chat(body())
    with pytest.raises(GatewayError) as refused:
        await harness.chat(body())
    assert refused.value.status == 429 and refused.value.code == "rate_limit_exceeded"
    assert harness.provider.calls == ["flash"]
    assert [row["status"] for row in harness.rows.rows] == [200, 429]


async def test_a_spent_budget_is_402_without_a_provider_call() -> None:
    harness = Harness({b"Bearer sk-k1": key(budget_pico=10**9)}, spent=10**9)  # $0.001 spent
    with pytest.raises(GatewayError) as refused:
        await harness.chat(body())
    assert refused.value.status == 402 and refused.value.code == "budget_exceeded"
    assert "retry-after" not in refused.value.headers  # truly spent
    assert harness.provider.calls == []
    assert harness.rows.rows[-1]["error_code"] == "budget_exceeded"


async def test_a_cache_hit_makes_no_provider_call_and_costs_nothing() -> None:
    harness = Harness()
    first = await harness.chat(body())
    assert first.cost is not None and first.cost > 0
    second = await harness.chat(body())
    assert harness.provider.calls == ["flash"]  # the second came from the cache
    assert second.cost == Decimal(0)
    assert second.response["choices"][0]["message"]["content"] == "ok"
    hit = harness.rows.rows[-1]
    assert hit["cache_hit"] is True and hit["cost_pico"] == 0
    assert hit["saved_pico"] == harness.rows.rows[0]["cost_pico"] > 0


async def test_a_failed_deployment_falls_back_to_the_next_model_of_the_chain() -> None:
    harness = Harness()
    harness.provider.script["pro-a"] = [
        UpstreamFailure(FailureKind.SERVER_ERROR, "down", status=500)
    ]
    routed = await harness.chat(body("chain"))
    assert harness.provider.calls == ["pro-a", "flash"]
    assert routed.deployment_id == "flash"
    [row] = harness.rows.rows
    assert row["status"] == 200 and row["deployment"] == "flash" and row["fallbacks"] == 1


async def test_a_stream_leaves_exactly_one_record_when_it_closes() -> None:
    harness = Harness({b"Bearer sk-k1": key(budget_pico=10**15, tpm=10**6)})
    routed = await harness.chat(body(stream=True))
    assert harness.rows.rows == []  # recorded when it closes, not before
    chunks = [chunk async for chunk in routed.stream]
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["o", "k"]
    await routed.stream.aclose()
    await routed.stream.aclose()  # closed twice (client gone, then server): still one record
    [row] = harness.rows.rows
    assert row["stream"] is True and row["status"] == 200 and row["error_code"] is None
    assert row["cost_pico"] > 0 and row["completion_tokens"] == 500
    # settled once, to the real cost and tokens
    [(reserved, actual)] = harness.budgets.settled
    assert actual == row["cost_pico"] and reserved >= actual
    assert harness.budgets.spent_pico("key_id", "k1") == row["cost_pico"]
    assert [actual for _, actual in harness.windows.settled] == [1500]


async def test_a_failed_call_gives_its_reservations_back() -> None:
    harness = Harness({b"Bearer sk-k1": key(budget_pico=10**15, tpm=10**6)})
    harness.provider.script["flash"] = [
        UpstreamFailure(FailureKind.SERVER_ERROR, "down", status=500)
    ]
    with pytest.raises(GatewayError):
        await harness.chat(body())
    assert harness.provider.calls == ["flash"]
    # the worst case reserved before the call is given back, nothing is spent
    [(reserved, actual)] = harness.budgets.settled
    assert reserved > 0 and actual == 0
    assert harness.budgets.spent_pico("key_id", "k1") == 0
    [(tokens, used)] = harness.windows.settled
    assert tokens > 0 and used == 0
    [row] = harness.rows.rows
    assert row["status"] >= 500 and row["cost_pico"] is None


async def test_an_answered_call_settles_to_its_real_cost_and_tokens() -> None:
    harness = Harness({b"Bearer sk-k1": key(budget_pico=10**15, tpm=10**6)})
    routed = await harness.chat(body())
    [row] = harness.rows.rows
    assert row["cost_pico"] > 0 and routed.response["usage"]["cost"]  # costed
    [(reserved, actual)] = harness.budgets.settled
    assert actual == row["cost_pico"] and reserved >= actual
    assert [used for _, used in harness.windows.settled] == [1500]


async def test_the_job_header_and_request_id_reach_the_spend_row() -> None:
    harness = Harness()
    inbound = Inbound("req-42", b"Bearer sk-k1", job_id=b"scan-2026-12")
    routed = await harness.pipeline.chat(body(), inbound)
    assert routed.response is not None
    [row] = harness.rows.rows
    assert (row["request_id"], row["job_id"]) == ("req-42", "scan-2026-12")
    # a job named in the body's metadata wins over none in the header
    await harness.pipeline.chat(
        body(metadata={"job_id": "from-body"}), Inbound("req-43", b"Bearer sk-k1")
    )
    assert harness.rows.rows[-1]["job_id"] == "from-body"
