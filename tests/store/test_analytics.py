"""Spend analytics over known rows, on both databases: the numbers /admin/* answer with."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.analytics import job_report, jobs_list, spend_report
from nemorouter.store.schema import spend

from .rows import spend_row

DAY1 = datetime(2026, 11, 20, 9, 0, 0)
DAY2 = datetime(2026, 11, 21, 23, 59, 59)
DAY2_NOON = datetime(2026, 11, 21, 12, 0, 0)

ROWS = [
    # job-a: three calls on flash, one failure, one cache hit, one fallback
    spend_row(job_id="job-a", created_at=DAY1, cost_pico=1_000_000_000, key_id="k1", team_id="t1"),
    spend_row(job_id="job-a", created_at=DAY1, cost_pico=2_500_000_001, key_id="k1", team_id="t1",
              fallbacks=1, attempts=2),
    spend_row(job_id="job-a", created_at=DAY2, cost_pico=0, cache_hit=True, key_id="k2", team_id="t1"),
    spend_row(job_id="job-a", created_at=DAY2, cost_pico=None, model=None, deployment=None,
              model_requested="gemini-2.5-pro", status=503, error_code="all_deployments_failed",
              prompt_tokens=0, completion_tokens=0, key_id="k2", team_id="t1"),
    # job-b: one call on pro
    spend_row(job_id="job-b", created_at=DAY2_NOON, model="gemini-2.5-pro", cost_pico=7_000_000_000_000,
              prompt_tokens=5000, completion_tokens=700, key_id="k3", team_id=None),
    # no job
    spend_row(created_at=DAY1, cost_pico=123, key_id="k3"),
]  # fmt: skip


@pytest.fixture
async def filled(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as connection:
        await connection.execute(spend.insert(), ROWS)
    return engine


async def test_job_report(filled: AsyncEngine) -> None:
    job = await job_report(filled, "job-a")
    assert job is not None
    assert job == {
        "job_id": "job-a",
        "requests": 4,
        "succeeded": 3,
        "failed": 1,
        "cache_hits": 1,
        "fallbacks": 1,
        "prompt_tokens": 3000,
        "completion_tokens": 300,
        "cost_usd": "0.003500000001",
        "cost_per_request_usd": "0.000875",  # 0.003500000001 / 4, to the picodollar (half-even)
        "deferred_requests": 0,
        "deferred_cost_usd": "0",
        "interactive_requests": 4,
        "interactive_cost_usd": "0.003500000001",
        "documents": 0,  # no request of these rows named a document or page
        "pages": 0,
        "reasked_pages": 0,
        "first_at": "2026-11-20T09:00:00.000Z",
        "last_at": "2026-11-21T23:59:59.000Z",
        "models": {
            "gemini-2.5-flash": {"requests": 3, "cost_usd": "0.003500000001"},
            "(not answered)": {"requests": 1, "cost_usd": "0"},  # 503: no model answered
        },
    }
    assert await job_report(filled, "no-such-job") is None


async def test_jobs_list_most_recent_first(filled: AsyncEngine) -> None:
    jobs = await jobs_list(filled)
    assert [job["job_id"] for job in jobs] == ["job-a", "job-b"]
    assert jobs[1]["cost_usd"] == "7"
    assert jobs[1]["cost_per_request_usd"] == "7"
    assert len(await jobs_list(filled, limit=1)) == 1


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("job", [("job-b", 1, "7"), ("job-a", 4, "0.003500000001"), (None, 1, "0.000000000123")]),
        (
            "model",
            [
                ("gemini-2.5-pro", 1, "7"),
                ("gemini-2.5-flash", 4, "0.003500000124"),
                ("(not answered)", 1, "0"),
            ],
        ),
        ("key", [("k3", 2, "7.000000000123"), ("k1", 2, "0.003500000001"), ("k2", 2, "0")]),
        ("team", [(None, 2, "7.000000000123"), ("t1", 4, "0.003500000001")]),
        ("day", [("2026-11-20", 3, "0.003500000124"), ("2026-11-21", 3, "7")]),
    ],
)
async def test_spend_grouped(
    filled: AsyncEngine, group_by: str, expected: list[tuple[str | None, int, str]]
) -> None:
    report = await spend_report(filled, group_by)  # type: ignore[arg-type]
    assert [(r["group"], r["requests"], r["cost_usd"]) for r in report["rows"]] == expected
    assert report["total_cost_usd"] == "7.003500000124"


async def test_spend_filters(filled: AsyncEngine) -> None:
    by_job = await spend_report(filled, "model", job_id="job-a")
    assert by_job["total_cost_usd"] == "0.003500000001"
    flash = await spend_report(filled, "job", model="gemini-2.5-flash")
    assert [r["group"] for r in flash["rows"]] == ["job-a", None]
    day2 = await spend_report(
        filled, "job", start=datetime(2026, 11, 21), end=datetime(2026, 11, 22)
    )
    assert [(r["group"], r["requests"]) for r in day2["rows"]] == [("job-b", 1), ("job-a", 2)]
    row = day2["rows"][1]
    assert row == {
        "group": "job-a",
        "requests": 2,
        "cache_hits": 1,
        "fallbacks": 0,
        "prompt_tokens": 1000,
        "completion_tokens": 100,
        "cost_usd": "0",
    }
    empty = await spend_report(filled, "job", start=datetime(2030, 1, 1))
    assert empty == {"rows": [], "total_cost_usd": "0"}
