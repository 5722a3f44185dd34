"""Spend over time and recent failures: the queries behind /admin/spend/timeline and
/admin/events (and so behind the dashboard's charts and event lists)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.schema import spend
from nemorouter.store.spend_columns import filtered, model_used, succeeded, timestamp, totals
from nemorouter.types.money import pico_usd

Bucket = Literal["minute", "hour", "day"]
BUCKETS: tuple[Bucket, ...] = ("minute", "hour", "day")
EventKind = Literal["fallback", "error", "all"]
EVENT_KINDS: tuple[EventKind, ...] = ("fallback", "error", "all")
MAX_BUCKETS = 10_000  # the most recent ones, so an open-ended minute query stays small
_SQLITE_FORMATS = {
    "minute": "%Y-%m-%dT%H:%M:00",
    "hour": "%Y-%m-%dT%H:00:00",
    "day": "%Y-%m-%dT00:00:00",
}


def _bucket_column(dialect: str, bucket: Bucket) -> ColumnElement[Any]:
    # Truncate in the database: a month of rows must not travel to Python to be counted.
    if dialect == "postgresql":
        return func.date_trunc(bucket, spend.c.created_at)
    return func.strftime(_SQLITE_FORMATS[bucket], spend.c.created_at)


async def spend_timeline(
    engine: AsyncEngine,
    bucket: Bucket,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    job_id: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """`{bucket, rows: [{t, requests, failed, cache_hits, fallbacks, prompt_tokens,
    completion_tokens, cost_usd}], total_cost_usd}`, oldest bucket first; empty buckets
    are left out."""
    column = _bucket_column(engine.dialect.name, bucket).label("t")
    failed = func.coalesce(func.sum(case((succeeded, 0), else_=1)), 0).label("failed")
    query = filtered(select(column, *totals(), failed).group_by(column), start, end, job_id, model)
    query = query.order_by(column.desc()).limit(MAX_BUCKETS)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    out = [
        {
            "t": _bucket_time(row["t"]),
            "requests": int(row["requests"]),
            "failed": int(row["failed"]),
            "cache_hits": int(row["cache_hits"]),
            "fallbacks": int(row["fallbacks"]),
            "prompt_tokens": int(row["prompt_tokens"]),
            "completion_tokens": int(row["completion_tokens"]),
            "cost_usd": pico_usd(int(row["cost_pico"])),
        }
        for row in reversed(rows)
    ]
    total = sum(int(row["cost_pico"]) for row in rows)
    return {"bucket": bucket, "rows": out, "total_cost_usd": pico_usd(total)}


def _bucket_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    return f"{value}Z"  # SQLite: already formatted by strftime


async def recent_events(
    engine: AsyncEngine,
    kind: EventKind,
    *,
    limit: int = 50,
    job_id: str | None = None,
) -> list[dict[str, Any]]:
    """The latest requests that fell back (`fallback`), failed (`error`) or either (`all`),
    newest first."""
    failed = not_(succeeded)
    fell_back = spend.c.fallbacks > 0
    where = {"fallback": fell_back, "error": failed, "all": or_(failed, fell_back)}[kind]
    query = (
        select(
            spend.c.request_id,
            spend.c.created_at,
            spend.c.key_id,
            spend.c.team_id,
            spend.c.job_id,
            spend.c.model_requested,
            model_used.label("model"),
            spend.c.deployment,
            spend.c.status,
            spend.c.error_code,
            spend.c.fallbacks,
            spend.c.attempts,
            spend.c.latency_ms,
            spend.c.cost_pico,
        )
        .where(where)
        .order_by(spend.c.created_at.desc(), spend.c.id.desc())
        .limit(limit)
    )
    if job_id is not None:
        query = query.where(spend.c.job_id == job_id)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [
        {
            "request_id": row["request_id"],
            "created_at": timestamp(row["created_at"]),
            "key_id": row["key_id"],
            "team_id": row["team_id"],
            "job_id": row["job_id"],
            "model_requested": row["model_requested"],
            "model": row["model"],
            "deployment": row["deployment"],
            "status": int(row["status"]),
            "error_code": row["error_code"],
            "fallbacks": int(row["fallbacks"]),
            "attempts": int(row["attempts"]),
            "latency_ms": round(float(row["latency_ms"]), 1),
            "cost_usd": pico_usd(row["cost_pico"]),
        }
        for row in rows
    ]
