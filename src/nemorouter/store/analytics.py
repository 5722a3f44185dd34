"""Spend analytics: the queries behind /admin/spend, /admin/jobs and the dashboard."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.analytics_work import job_work
from nemorouter.store.schema import spend
from nemorouter.store.spend_columns import (
    NOT_ANSWERED,
    filtered,
    model_answered,
    succeeded,
    timestamp,
    totals,
)
from nemorouter.types.money import per_request, pico_usd

GroupBy = Literal["job", "model", "key", "team", "day"]
GROUP_BY: tuple[GroupBy, ...] = ("job", "model", "key", "team", "day")
_GROUP_COLUMNS: dict[str, ColumnElement[Any]] = {
    "job": spend.c.job_id,
    "model": model_answered,
    "key": spend.c.key_id,
    "team": spend.c.team_id,
    "day": spend.c.day,
}


async def spend_report(
    engine: AsyncEngine,
    group_by: GroupBy,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    job_id: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """`{rows: [{group, requests, cache_hits, fallbacks, prompt_tokens, completion_tokens,
    cost_usd}], total_cost_usd}`: days in order, other groups by cost, highest first (by
    model: the model that answered; requests none answered last, as `(not answered)`)."""
    column = _GROUP_COLUMNS[group_by]
    query = filtered(
        select(column.label("group"), *totals()).group_by(column), start, end, job_id, model
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    total = sum(int(row["cost_pico"]) for row in rows)
    out = [
        {
            "group": _group_value(row["group"]),
            "requests": int(row["requests"]),
            "cache_hits": int(row["cache_hits"]),
            "fallbacks": int(row["fallbacks"]),
            "prompt_tokens": int(row["prompt_tokens"]),
            "completion_tokens": int(row["completion_tokens"]),
            "cost_usd": pico_usd(int(row["cost_pico"])),
            "_pico": int(row["cost_pico"]),
        }
        for row in rows
    ]
    if group_by == "day":
        out.sort(key=lambda row: row["group"] or "")
    else:
        out.sort(key=lambda row: (row["group"] == NOT_ANSWERED, -row["_pico"], row["group"] or ""))
    for row in out:
        del row["_pico"]
    return {"rows": out, "total_cost_usd": pico_usd(total)}


def _job_columns() -> list[ColumnElement[Any]]:
    return [
        spend.c.job_id,
        *totals(),
        func.coalesce(func.sum(case((succeeded, 1), else_=0)), 0).label("succeeded"),
        func.coalesce(func.sum(case((spend.c.deferred, 1), else_=0)), 0).label("deferred"),
        func.coalesce(func.sum(case((spend.c.deferred, spend.c.cost_pico), else_=0)), 0).label(
            "deferred_pico"
        ),
        func.min(spend.c.created_at).label("first_at"),
        func.max(spend.c.created_at).label("last_at"),
    ]


async def job_report(engine: AsyncEngine, job_id: str) -> dict[str, Any] | None:
    """One job's totals and its cost by model; None if no request carried that job id."""
    job_totals = select(*_job_columns()).where(spend.c.job_id == job_id).group_by(spend.c.job_id)
    by_model = (
        select(model_answered.label("model"), func.count(), func.sum(spend.c.cost_pico))
        .where(spend.c.job_id == job_id)
        .group_by(model_answered)
    )
    async with engine.connect() as connection:
        row = (await connection.execute(job_totals)).mappings().first()
        if row is None:
            return None
        models = (await connection.execute(by_model)).all()
        work = await job_work(connection, job_id)
    job = _job(row)
    job.update(work)
    job["models"] = {
        name: {"requests": int(count), "cost_usd": pico_usd(int(cost or 0))}
        for name, count, cost in sorted(models, key=lambda m: (m[0] == NOT_ANSWERED, -(m[2] or 0)))
    }
    return job


async def jobs_list(engine: AsyncEngine, limit: int = 100) -> list[dict[str, Any]]:
    """The most recently active jobs first (without the per-model breakdown)."""
    query = (
        select(*_job_columns())
        .where(spend.c.job_id.is_not(None))
        .group_by(spend.c.job_id)
        .order_by(func.max(spend.c.created_at).desc())
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [_job(row) for row in rows]


def _job(row: Any) -> dict[str, Any]:
    requests = int(row["requests"])
    cost = int(row["cost_pico"])
    succeeded = int(row["succeeded"])
    return {
        "job_id": row["job_id"],
        "requests": requests,
        "succeeded": succeeded,
        "failed": requests - succeeded,
        "cache_hits": int(row["cache_hits"]),
        "fallbacks": int(row["fallbacks"]),
        "prompt_tokens": int(row["prompt_tokens"]),
        "completion_tokens": int(row["completion_tokens"]),
        "cost_usd": pico_usd(cost),
        "cost_per_request_usd": per_request(cost, requests),
        # Lines of deferred jobs (provider batch APIs) beside the interactive calls; the two
        # costs add up to cost_usd exactly.
        "deferred_requests": int(row["deferred"]),
        "deferred_cost_usd": pico_usd(int(row["deferred_pico"])),
        "interactive_requests": requests - int(row["deferred"]),
        "interactive_cost_usd": pico_usd(cost - int(row["deferred_pico"])),
        "first_at": timestamp(row["first_at"]),
        "last_at": timestamp(row["last_at"]),
    }


def _group_value(value: Any) -> str | None:
    if isinstance(value, date):
        return value.isoformat()
    return value
