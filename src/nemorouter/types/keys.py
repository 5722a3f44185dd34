"""Virtual key and team records, as stored and as the admin API shows them (no secrets:
only the hash and a short prefix)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from nemorouter.types.clock import utcnow
from nemorouter.types.money import pico_usd

__all__ = ["KeyRecord", "TeamRecord", "utcnow"]


class TeamRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    budget_pico: int | None = None
    budget_period: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "budget_usd": None if self.budget_pico is None else pico_usd(self.budget_pico),
            "budget_period": self.budget_period,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "created_at": _iso(self.created_at),
        }


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    key_hash: str
    key_prefix: str
    team_id: str | None = None
    models: tuple[str, ...] | None = None
    default_tags: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_pico: int | None = None
    budget_period: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """What the admin API shows: everything but the hash."""
        return {
            "id": self.id,
            "name": self.name,
            "key_prefix": self.key_prefix,
            "team_id": self.team_id,
            "models": list(self.models) if self.models is not None else None,
            "default_tags": list(self.default_tags) if self.default_tags is not None else None,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "budget_usd": None if self.budget_pico is None else pico_usd(self.budget_pico),
            "budget_period": self.budget_period,
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "created_at": _iso(self.created_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"
