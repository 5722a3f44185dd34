"""Budget used against limit for every key and team: the query behind /admin/budgets.

Each key (team) is shown as GET /admin/keys/{id} shows it, with its spend in its own
budget period, but in one grouped query per period kind instead of one query per key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.keys_repo import KeysRepo
from nemorouter.store.schema import spend
from nemorouter.types.clock import period_start
from nemorouter.types.money import pico_usd


async def budget_usage(engine: AsyncEngine, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """`{keys: [{...key, spend: {period_start, usd}}], teams: [{...team, spend}]}`."""
    repo = KeysRepo(engine)
    key_records = await repo.keys()
    team_records = await repo.teams()
    key_periods = {k.id: k.budget_period for k in key_records}
    team_periods = {t.id: t.budget_period for t in team_records}
    key_spent = await _spent(engine, spend.c.key_id, key_periods, now)
    team_spent = await _spent(engine, spend.c.team_id, team_periods, now)
    return {
        "keys": [
            {**k.public(), "spend": spend_in_period(k.budget_period, now, key_spent.get(k.id, 0))}
            for k in key_records
        ],
        "teams": [
            {**t.public(), "spend": spend_in_period(t.budget_period, now, team_spent.get(t.id, 0))}
            for t in team_records
        ],
    }


async def _spent(
    engine: AsyncEngine,
    column: ColumnElement[Any],
    periods: dict[str, str | None],
    now: datetime,
) -> dict[str, int]:
    """Picodollars per subject since the start of its own period."""
    out: dict[str, int] = {}
    async with engine.connect() as connection:
        for period in set(periods.values()):
            query = select(column, func.coalesce(func.sum(spend.c.cost_pico), 0)).group_by(column)
            since = period_start(period, now)
            if since is not None:
                query = query.where(spend.c.created_at >= since)
            for subject, pico in (await connection.execute(query)).all():
                if subject is not None and periods.get(subject, "-") == period:
                    out[subject] = int(pico)
    return out


def spend_in_period(period: str | None, now: datetime, pico: int) -> dict[str, Any]:
    """How a key's or team's spend is shown: since the start of its budget period."""
    since = period_start(period, now)
    return {
        "period_start": None if since is None else since.isoformat() + "Z",
        "usd": pico_usd(pico),
    }
