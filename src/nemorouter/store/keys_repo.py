"""Keys and teams in the store, and the spend a budget has used in its period."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.schema import keys, spend, teams
from nemorouter.types.keys import KeyRecord, TeamRecord


def _json_list(value: list[str] | tuple[str, ...] | None) -> str | None:
    return None if value is None else json.dumps(list(value))


def _key(row: Any) -> KeyRecord:
    data = dict(row._mapping)
    for name in ("models", "default_tags"):
        data[name] = tuple(json.loads(data[name])) if data[name] is not None else None
    return KeyRecord(**data)


def _team(row: Any) -> TeamRecord:
    return TeamRecord(**dict(row._mapping))


def _key_values(record: KeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "key_hash": record.key_hash,
        "key_prefix": record.key_prefix,
        "team_id": record.team_id,
        "models": _json_list(record.models),
        "default_tags": _json_list(record.default_tags),
        "rpm": record.rpm,
        "tpm": record.tpm,
        "budget_pico": record.budget_pico,
        "budget_period": record.budget_period,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "created_at": record.created_at,
    }


class KeysRepo:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add_team(self, team: TeamRecord) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(teams.insert().values(**_team_values(team)))

    async def team(self, team_id: str) -> TeamRecord | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(teams).where(teams.c.id == team_id))).first()
        return None if row is None else _team(row)

    async def teams(self) -> list[TeamRecord]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(teams).order_by(teams.c.created_at))).all()
        return [_team(row) for row in rows]

    async def add_key(self, record: KeyRecord) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(keys.insert().values(**_key_values(record)))

    async def key(self, key_id: str) -> KeyRecord | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(keys).where(keys.c.id == key_id))).first()
        return None if row is None else _key(row)

    async def key_by_hash(self, key_hash: str) -> KeyRecord | None:
        async with self.engine.connect() as connection:
            query = select(keys).where(keys.c.key_hash == key_hash)
            row = (await connection.execute(query)).first()
        return None if row is None else _key(row)

    async def keys(self, team_id: str | None = None) -> list[KeyRecord]:
        query = select(keys).order_by(keys.c.created_at)
        if team_id is not None:
            query = query.where(keys.c.team_id == team_id)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_key(row) for row in rows]

    async def replace_key(self, record: KeyRecord) -> None:
        values = _key_values(record)
        del values["id"], values["key_hash"], values["created_at"]
        async with self.engine.begin() as connection:
            await connection.execute(keys.update().where(keys.c.id == record.id).values(**values))

    async def spent_pico(self, column: str, subject_id: str, since: datetime | None) -> int:
        """Spend recorded for a key or team (`column` key_id | team_id) since a time."""
        where = spend.c[column] == subject_id
        if since is not None:
            where = where & (spend.c.created_at >= since)
        query = select(func.coalesce(func.sum(spend.c.cost_pico), 0)).where(where)
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())


def _team_values(team: TeamRecord) -> dict[str, Any]:
    return {
        "id": team.id,
        "name": team.name,
        "budget_pico": team.budget_pico,
        "budget_period": team.budget_period,
        "rpm": team.rpm,
        "tpm": team.tpm,
        "created_at": team.created_at,
    }
