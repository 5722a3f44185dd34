"""The new dashboard queries over known rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.analytics import job_report
from nemorouter.store.analytics_budgets import budget_usage
from nemorouter.store.analytics_timeline import recent_events, spend_timeline
from nemorouter.store.keys_repo import KeysRepo
from nemorouter.store.schema import spend
from nemorouter.types.keys import KeyRecord, TeamRecord
from tests.store.rows import spend_row

T0 = datetime(2026, 11, 20, 9, 0, 10)
ROWS = [
    spend_row(job_id="job-a", created_at=T0, cost_pico=1_000_000_000),
    spend_row(job_id="job-a", created_at=T0 + timedelta(seconds=30), cost_pico=2_500_000_001,
              fallbacks=1, attempts=3),
    spend_row(job_id="job-a", created_at=T0 + timedelta(minutes=1), cost_pico=0, cache_hit=True),
    spend_row(job_id="job-a", created_at=T0 + timedelta(hours=2), cost_pico=None, model=None,
              deployment=None, model_requested="gemini-2.5-pro", status=503,
              error_code="all_deployments_failed", attempts=2),
    spend_row(job_id="job-b", created_at=T0 + timedelta(days=1), cost_pico=7_000_000_000_000,
              model="gemini-2.5-pro"),
]  # fmt: skip


@pytest.fixture
async def filled(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as connection:
        await connection.execute(spend.insert(), ROWS)
    return engine


async def test_timeline_buckets(filled: AsyncEngine) -> None:
    minutes = await spend_timeline(filled, "minute", job_id="job-a")
    assert minutes["bucket"] == "minute"
    assert [(r["t"], r["requests"], r["cost_usd"], r["failed"]) for r in minutes["rows"]] == [
        ("2026-11-20T09:00:00Z", 2, "0.003500000001", 0),
        ("2026-11-20T09:01:00Z", 1, "0", 0),
        ("2026-11-20T11:00:00Z", 1, "0", 1),
    ]
    assert minutes["rows"][0]["fallbacks"] == 1
    assert minutes["rows"][1]["cache_hits"] == 1
    job = await job_report(filled, "job-a")
    assert job is not None
    assert minutes["total_cost_usd"] == job["cost_usd"]  # the chart adds up to the job

    hours = await spend_timeline(filled, "hour")
    assert [(r["t"], r["requests"]) for r in hours["rows"]] == [
        ("2026-11-20T09:00:00Z", 3),
        ("2026-11-20T11:00:00Z", 1),
        ("2026-11-21T09:00:00Z", 1),
    ]
    days = await spend_timeline(filled, "day", start=datetime(2026, 11, 21))
    assert days["rows"] == [
        {
            "t": "2026-11-21T00:00:00Z",
            "requests": 1,
            "failed": 0,
            "cache_hits": 0,
            "fallbacks": 0,
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "cost_usd": "7",
        }
    ]
    assert days["total_cost_usd"] == "7"
    assert (await spend_timeline(filled, "day", job_id="nope"))["rows"] == []


async def test_recent_events(filled: AsyncEngine) -> None:
    errors = await recent_events(filled, "error")
    assert [(e["job_id"], e["status"], e["error_code"], e["model"]) for e in errors] == [
        ("job-a", 503, "all_deployments_failed", "gemini-2.5-pro")
    ]
    assert errors[0]["cost_usd"] == "0"
    assert errors[0]["created_at"] == "2026-11-20T11:00:10.000Z"
    fallbacks = await recent_events(filled, "fallback")
    assert [(e["fallbacks"], e["attempts"], e["cost_usd"]) for e in fallbacks] == [
        (1, 3, "0.002500000001")
    ]
    everything = await recent_events(filled, "all", limit=10)
    assert [e["status"] for e in everything] == [503, 200]  # newest first
    assert await recent_events(filled, "all", limit=1, job_id="job-b") == []
    assert len(await recent_events(filled, "all", limit=1)) == 1


async def test_budget_usage_uses_each_period(engine: AsyncEngine) -> None:
    now = datetime(2026, 11, 20, 15, 0, 0)
    repo = KeysRepo(engine)
    await repo.add_team(
        TeamRecord(id="team_1", name="ops", budget_pico=10**13, budget_period="monthly",
                   rpm=100, created_at=now)
    )  # fmt: skip
    for key_id, period in (("key_d", "daily"), ("key_m", "monthly"), ("key_l", None)):
        await repo.add_key(
            KeyRecord(id=key_id, name=key_id, key_hash=key_id * 8, key_prefix="sk-nemo-abcd",
                      team_id="team_1", budget_pico=10**12, budget_period=period, tpm=5000,
                      created_at=now)
        )  # fmt: skip
    rows = []
    for key_id in ("key_d", "key_m", "key_l"):
        rows += [
            spend_row(key_id=key_id, team_id="team_1", created_at=now, cost_pico=10**9),
            spend_row(key_id=key_id, team_id="team_1", created_at=datetime(2026, 11, 2), cost_pico=10**10),
            spend_row(key_id=key_id, team_id="team_1", created_at=datetime(2026, 10, 2), cost_pico=10**11),
        ]  # fmt: skip
    async with engine.begin() as connection:
        await connection.execute(spend.insert(), rows)

    usage = await budget_usage(engine, now)
    spent = {k["id"]: (k["spend"]["usd"], k["spend"]["period_start"]) for k in usage["keys"]}
    assert spent == {
        "key_d": ("0.001", "2026-11-20T00:00:00Z"),
        "key_m": ("0.011", "2026-11-01T00:00:00Z"),
        "key_l": ("0.111", None),
    }
    (team,) = usage["teams"]
    assert (team["id"], team["rpm"], team["budget_usd"]) == ("team_1", 100, "10")
    assert team["spend"] == {"period_start": "2026-11-01T00:00:00Z", "usd": "0.033"}
    key = usage["keys"][0]
    assert (key["tpm"], key["budget_usd"], key["key_prefix"]) == (5000, "1", "sk-nemo-abcd")
    assert "key_hash" not in key


async def test_a_job_counts_the_pages_and_documents_its_requests_covered(
    engine: AsyncEngine,
) -> None:
    def row(metadata: str | None, **changes: object) -> dict[str, object]:
        return spend_row(job_id="pages", metadata=metadata, **changes)

    rows = [
        row('{"doc": "a.png", "page": 1}'),
        row('{"doc": "a.png", "page": 1}', status=503, cost_pico=None),  # retried: one page
        row('{"doc": "b.pdf", "page": 1}'),
        row('{"doc": "b.pdf", "page": 2}'),
        row('{"doc": "b.pdf", "page": 2, "reask": true}'),  # asked again: no new page
        row('{"doc": "c.pdf", "page": 1, "pages": [1, 2, 3]}'),  # a PDF chunk in one request
        row(None),  # another client of the same job: a request, no page
        row('{"note": "no doc"}'),
        row('{"doc": "d.png", "page": "1"}'),  # no page number: not a page of the runner's
        row('{"doc": "e.png", "page": 1, "pages": "1-3", "reask": "yes"}'),  # nor the runner's
        row('{"doc": ["f.png"], "page": 1}'),
        spend_row(job_id="other", metadata='{"doc": "z.png", "page": 9}'),
    ]
    async with engine.begin() as connection:
        await connection.execute(spend.insert(), rows)
    job = await job_report(engine, "pages")
    assert job is not None
    assert (job["requests"], job["documents"], job["pages"], job["reasked_pages"]) == (11, 4, 7, 1)
