"""The deferred jobs' store: the poller's lease and exactly-once line outcomes (with their
spend rows), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.deferred_repo import DeferredRepo
from nemorouter.store.schema import spend

from .rows import spend_row


async def test_one_holder_at_a_time_until_the_lease_expires(engine: AsyncEngine) -> None:
    repo = DeferredRepo(engine)
    assert await repo.take_lease("poller", "a", ttl_s=0.5)
    assert await repo.take_lease("poller", "a", ttl_s=0.5)  # renewed by its holder
    assert not await repo.take_lease("poller", "b", ttl_s=0.5)
    await asyncio.sleep(0.6)  # the holder died: its lease runs out
    assert await repo.take_lease("poller", "b", ttl_s=5)
    assert not await repo.take_lease("poller", "a", ttl_s=5)
    await repo.drop_lease("poller", "b")
    assert await repo.take_lease("poller", "a", ttl_s=5)


async def test_a_line_is_recorded_and_charged_once(engine: AsyncEngine) -> None:
    repo = DeferredRepo(engine)
    batch = {
        "id": "batch_1", "key_id": "master", "job_id": "j", "input_file_id": "file_1",
        "status": "in_progress", "metadata": None, "fallback": False, "total": 2,
        "completed": 0, "failed": 0, "created_at": 1, "expires_at": 86401,
    }  # fmt: skip
    part = {"id": "p0", "batch_id": "batch_1", "deployment": "mini", "mode": "batch",
            "provider_id": "pb-1", "status": "in_progress", "polls": 0, "next_poll_at": 0.0}  # fmt: skip
    lines = [
        {"batch_id": "batch_1", "line": n, "custom_id": f"c{n}", "part_id": "p0",
         "status": "pending", "outcome": None}
        for n in range(2)
    ]  # fmt: skip
    await repo.add_batch(batch, [part], lines)
    outcome = (0, "done", '{"custom_id": "c0"}', 5_000, spend_row(job_id="j", deferred=True))
    assert await repo.record("batch_1", [outcome]) == [0]
    assert await repo.record("batch_1", [outcome]) == []  # read again after a restart
    assert await repo.counts("batch_1") == (1, 0)
    async with engine.connect() as connection:
        rows = (await connection.execute(select(func.count()).select_from(spend))).scalar()
    assert rows == 1
    [pending] = await repo.lines("batch_1", status="pending")
    assert pending["line"] == 1
