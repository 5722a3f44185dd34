"""Spend analytics: the queries behind /admin/spend, /admin/jobs and the dashboard."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.core.money import per_request, pico_usd
from nemorouter.store.schema import spend

GroupBy = Literal["job", "model", "key", "team", "day"]
GROUP_BY: tuple[GroupBy, ...] = ("job", "model", "key", "team", "day")
_model_used = func.coalesce(spend.c.model, spend.c.model_requested)
_GROUP_COLUMNS: dict[str, ColumnElement[Any]] = {
    "job": spend.c.job_id,
    "model": _model_used,
    "key": spend.c.key_id,
    "team": spend.c.team_id,
    "day": spend.c.day,
}
_succeeded = and_(spend.c.status == 200, spend.c.error_code.is_(None))


def _totals() -> list[ColumnElement[Any]]:
    return [
        func.count().label("requests"),
        func.coalesce(func.sum(case((spend.c.cache_hit, 1), else_=0)), 0).label("cache_hits"),
        func.coalesce(func.sum(spend.c.fallbacks), 0).label("fallbacks"),
        func.coalesce(func.sum(spend.c.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(spend.c.completion_tokens), 0).label("completion_tokens"),
        func.coalesce(func.sum(spend.c.cost_pico), 0).label("cost_pico"),
    ]


def _filtered(
    query: Select[Any],
    start: datetime | None,
    end: datetime | None,
    job_id: str | None,
    model: str | None,
) -> Select[Any]:
    if start is not None:
        query = query.where(spend.c.created_at >= start)
    if end is not None:
        query = query.where(spend.c.created_at < end)
    if job_id is not None:
        query = query.where(spend.c.job_id == job_id)
    if model is not None:
        query = query.where(_model_used == model)
    return query


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
    cost_usd}], total_cost_usd}`: days in order, other groups by cost, highest first."""
    column = _GROUP_COLUMNS[group_by]
    query = _filtered(
        select(column.label("group"), *_totals()).group_by(column), start, end, job_id, model
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
        out.sort(key=lambda row: (-row["_pico"], row["group"] or ""))
    for row in out:
        del row["_pico"]
    return {"rows": out, "total_cost_usd": pico_usd(total)}


def _job_columns() -> list[ColumnElement[Any]]:
    return [
        spend.c.job_id,
        *_totals(),
        func.coalesce(func.sum(case((_succeeded, 1), else_=0)), 0).label("succeeded"),
        func.min(spend.c.created_at).label("first_at"),
        func.max(spend.c.created_at).label("last_at"),
    ]


async def job_report(engine: AsyncEngine, job_id: str) -> dict[str, Any] | None:
    """One job's totals and its cost by model; None if no request carried that job id."""
    totals = select(*_job_columns()).where(spend.c.job_id == job_id).group_by(spend.c.job_id)
    by_model = (
        select(_model_used.label("model"), func.count(), func.sum(spend.c.cost_pico))
        .where(spend.c.job_id == job_id)
        .group_by(_model_used)
    )
    async with engine.connect() as connection:
        row = (await connection.execute(totals)).mappings().first()
        if row is None:
            return None
        models = (await connection.execute(by_model)).all()
    job = _job(row)
    job["models"] = {
        name: {"requests": int(count), "cost_usd": pico_usd(int(cost or 0))}
        for name, count, cost in sorted(models, key=lambda m: -(m[2] or 0))
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
        "first_at": _timestamp(row["first_at"]),
        "last_at": _timestamp(row["last_at"]),
    }


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"


def _group_value(value: Any) -> str | None:
    if isinstance(value, date):
        return value.isoformat()
    return value
