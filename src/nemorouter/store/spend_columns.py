"""The spend-table expressions the analytics queries share (report, jobs, timeline)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal

from nemorouter.store.schema import spend

model_used = func.coalesce(spend.c.model, spend.c.model_requested)
# Spend by model counts the model that answered: a name a client asked for is free text
# (`gpt-9`, refused 404), and a refused or failed request used no model. Those requests are
# one line, so the rows still add up to the total (as /metrics labels them `-`).
NOT_ANSWERED = "(not answered)"
model_answered = func.coalesce(spend.c.model, literal(NOT_ANSWERED))
succeeded = and_(spend.c.status == 200, spend.c.error_code.is_(None))


def totals() -> list[ColumnElement[Any]]:
    return [
        func.count().label("requests"),
        func.coalesce(func.sum(case((spend.c.cache_hit, 1), else_=0)), 0).label("cache_hits"),
        func.coalesce(func.sum(spend.c.fallbacks), 0).label("fallbacks"),
        func.coalesce(func.sum(spend.c.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(spend.c.completion_tokens), 0).label("completion_tokens"),
        func.coalesce(func.sum(spend.c.cost_pico), 0).label("cost_pico"),
    ]


def filtered(
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
        query = query.where(model_used == model)
    return query


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"
