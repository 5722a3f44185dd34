"""The batched spend writer: batches, flush, shutdown, backpressure, no row lost."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.schema import spend
from nemorouter.store.writer import SpendWriter

from .rows import spend_row


async def count_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(spend))).scalar())


async def test_rows_are_written_in_batches(engine: AsyncEngine) -> None:
    writer = SpendWriter(engine, max_rows=50, interval_s=5.0)
    writer.start()
    for _ in range(120):
        await writer.add(spend_row())
    # Two full batches go at once, without waiting for the interval.
    for _ in range(100):
        if writer.written >= 100:
            break
        await asyncio.sleep(0.02)
    assert writer.written == 100
    assert writer.pending == 20
    await writer.flush()  # the partial batch, on demand
    assert await count_rows(engine) == 120
    await writer.close()


async def test_the_interval_writes_a_partial_batch(engine: AsyncEngine) -> None:
    writer = SpendWriter(engine, max_rows=500, interval_s=0.05)
    writer.start()
    await writer.add(spend_row())
    for _ in range(100):
        if writer.written == 1:
            break
        await asyncio.sleep(0.01)
    assert await count_rows(engine) == 1
    await writer.close()


async def test_close_writes_everything_waiting(engine: AsyncEngine) -> None:
    writer = SpendWriter(engine, max_rows=1000, interval_s=60.0)
    writer.start()
    for _ in range(300):
        await writer.add(spend_row())
    await writer.close()
    assert await count_rows(engine) == 300


async def test_a_failing_database_applies_backpressure_and_loses_nothing(
    engine: AsyncEngine,
) -> None:
    writer = SpendWriter(engine, max_rows=10, interval_s=0.01, capacity=25)
    writer.start()
    async with engine.begin() as connection:  # the table goes away: every write fails
        await connection.execute(text("ALTER TABLE spend RENAME TO spend_away"))
    for _ in range(25):
        await writer.add(spend_row())
    blocked = asyncio.create_task(writer.add(spend_row()))
    await asyncio.sleep(0.3)
    assert not blocked.done(), "a full writer must make callers wait, not drop rows"
    assert writer.failures >= 1
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE spend_away RENAME TO spend"))
    await asyncio.wait_for(blocked, 10)
    await writer.close()
    assert await count_rows(engine) == 26


@pytest.mark.parametrize("callers", [20])
async def test_flush_waits_for_rows_added_before_it(engine: AsyncEngine, callers: int) -> None:
    writer = SpendWriter(engine, max_rows=7, interval_s=1.0)
    writer.start()

    async def one_caller() -> None:
        for _ in range(10):
            await writer.add(spend_row())
            await asyncio.sleep(0)

    await asyncio.gather(*(one_caller() for _ in range(callers)))
    await writer.flush()
    assert await count_rows(engine) == callers * 10
    await writer.close()
