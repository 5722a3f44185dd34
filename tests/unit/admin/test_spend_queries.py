"""Spend queries as a service: a key's spend in its budget period (the same read a budget
makes), read-your-writes, and the bounds: a flush or a query that cannot finish is a 503."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.core.spend_queries import SpendQueries, spent_so_far
from nemorouter.state.budget_memory import MemoryBudgets as Budgets
from nemorouter.store.keys_repo import KeysRepo
from nemorouter.store.schema import spend
from nemorouter.store.writer import SpendWriter
from nemorouter.types.budget import BudgetSubject
from nemorouter.types.errors import GatewayError
from nemorouter.types.keys import KeyRecord
from tests.store.rows import spend_row

NOW = datetime(2026, 11, 20, 12, 0, 0)
YESTERDAY = NOW - timedelta(days=1)
PICO = 10**12


def key(period: str | None) -> KeyRecord:
    return KeyRecord(id="k1", name="k", key_hash="h" * 64, key_prefix="sk-nemo-abcd",
                     budget_pico=10 * PICO, budget_period=period, created_at=YESTERDAY)  # fmt: skip


@pytest.fixture
async def writer(engine: AsyncEngine) -> AsyncIterator[SpendWriter]:
    async with engine.begin() as connection:
        await connection.execute(
            spend.insert(),
            [
                spend_row(key_id="k1", created_at=YESTERDAY, cost_pico=3 * PICO, job_id="j"),
                spend_row(key_id="k1", created_at=NOW, cost_pico=1 * PICO, job_id="j"),
                spend_row(key_id="k2", created_at=NOW, cost_pico=5 * PICO),
            ],
        )
    writer = SpendWriter(engine, interval_s=0.01)
    writer.start()
    yield writer
    await writer.close(1.0)


def queries(writer: SpendWriter, repo: KeysRepo, **bounds: float) -> SpendQueries:
    return SpendQueries(writer, repo, clock=lambda: NOW, **bounds)


async def test_key_spend_counts_its_own_period(writer: SpendWriter, repo: KeysRepo) -> None:
    service = queries(writer, repo)
    assert await service.key_spend(key("daily")) == {
        "period_start": "2026-11-20T00:00:00Z",
        "usd": "1",
    }
    assert await service.key_spend(key(None)) == {"period_start": None, "usd": "4"}
    # Monthly: both rows are in November.
    assert (await service.key_spend(key("monthly")))["usd"] == "4"


async def test_key_spend_is_the_budgets_spent_so_far(writer: SpendWriter, repo: KeysRepo) -> None:
    """GET /admin/keys/{id} and a budget's first look at the key read the same number."""

    async def load(column: str, subject_id: str, since: datetime | None) -> int:
        return await spent_so_far(writer, repo, column, subject_id, since)

    budgets = Budgets(load, clock=lambda: NOW)
    await budgets.reserve([BudgetSubject("key_id", "k1", "key 'k'", 10 * PICO, "daily")], 1)
    shown = await queries(writer, repo).key_spend(key("daily"))
    assert budgets.spent_pico("key_id", "k1") == PICO
    assert shown["usd"] == "1"


async def test_reads_include_this_instances_waiting_records(
    writer: SpendWriter, repo: KeysRepo
) -> None:
    writer.add_nowait(spend_row(key_id="k1", created_at=NOW, cost_pico=2 * PICO, job_id="j"))
    service = queries(writer, repo)
    assert (await service.key_spend(key("daily")))["usd"] == "3"
    assert (await service.job("j"))["requests"] == 3


async def test_an_unknown_job_is_a_404(writer: SpendWriter, repo: KeysRepo) -> None:
    with pytest.raises(GatewayError) as info:
        await queries(writer, repo).job("nope")
    assert (info.value.status, info.value.code) == (404, "job_not_found")


READS: dict[str, Callable[[SpendQueries], Awaitable[Any]]] = {
    "key_spend": lambda s: s.key_spend(key("daily")),
    "spend": lambda s: s.spend("model"),
    "jobs": lambda s: s.jobs(10),
    "job": lambda s: s.job("j"),
    "timeline": lambda s: s.timeline("hour"),
    "events": lambda s: s.events("all", limit=10),
    "budgets": lambda s: s.budgets(),
}


def assert_unavailable(error: GatewayError) -> None:
    assert (error.status, error.code) == (503, "service_unavailable")
    assert error.headers.get("retry-after") == "5"


@pytest.mark.parametrize("read", READS)
async def test_a_flush_that_cannot_finish_is_a_503(
    engine: AsyncEngine, repo: KeysRepo, read: str
) -> None:
    stalled = SpendWriter(engine)  # never started: nothing writes what waits
    stalled.add_nowait(spend_row(key_id="k1"))
    with pytest.raises(GatewayError) as info:
        await READS[read](queries(stalled, repo, flush_wait_s=0.05))
    assert_unavailable(info.value)
    assert stalled.pending == 1


@pytest.mark.parametrize("read", READS)
async def test_a_query_that_does_not_answer_in_time_is_a_503(
    writer: SpendWriter, repo: KeysRepo, read: str
) -> None:
    await READS[read](queries(writer, repo))  # answers with time to do so
    with pytest.raises(GatewayError) as info:
        await READS[read](queries(writer, repo, query_wait_s=0))
    assert_unavailable(info.value)


@pytest.mark.parametrize("period", ["daily", "monthly", None])
async def test_a_keys_spend_reads_the_same_in_budgets(
    writer: SpendWriter, repo: KeysRepo, period: str | None
) -> None:
    """GET /admin/keys/{id} and /admin/budgets show a key's spend the same way."""
    await repo.add_key(key(period))
    service = queries(writer, repo)
    (listed,) = (await service.budgets())["keys"]
    assert listed["spend"] == await service.key_spend(key(period))
