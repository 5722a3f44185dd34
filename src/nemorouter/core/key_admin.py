"""Key administration: create, change, revoke and list virtual keys; create and list teams.

The admin API's routes decode a body into `KeyCreate` / `KeyUpdate` / `TeamCreate` and call
this service; every rule about keys lives here: the secret (shown once, stored as a hash
with its shown prefix), which fields a PATCH changes and how null clears them, what a
budget needs, and that a changed or revoked key is forgotten by every instance at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec

from nemorouter.core.keys import (
    KeyCreate,
    KeyUpdate,
    TeamCreate,
    budget_pico,
    hash_secret,
    naive_utc,
    new_id,
    new_secret,
    shown_prefix,
)
from nemorouter.store.keys_repo import KeysRepo
from nemorouter.types.clock import utcnow
from nemorouter.types.errors import GatewayError, invalid_request
from nemorouter.types.keys import KeyRecord, TeamRecord

# Called with a key's id after it changed: drop every cached copy (this instance and,
# through the shared channel, the others), so the change holds from the next request on.
KeyChanged = Callable[[str], Awaitable[None]]


class CreatedKey(msgspec.Struct, frozen=True):
    """A new key and its secret: the only moment the secret exists outside its owner."""

    record: KeyRecord
    secret: str


class KeyAdmin:
    def __init__(
        self,
        repo: KeysRepo,
        model_names: Iterable[str],
        key_changed: KeyChanged,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._repo = repo
        self._known_models = frozenset(model_names)  # models, groups and `auto`
        self._key_changed = key_changed
        self._clock = clock

    async def key(self, key_id: str) -> KeyRecord:
        """The key with this id, or a 404."""
        if not key_id:
            raise GatewayError(404, "key_not_found", "No key with an empty id.")
        record = await self._repo.key(key_id)
        if record is None:
            raise GatewayError(404, "key_not_found", f"No key with id {key_id!r}.")
        return record

    async def keys(self, team_id: str | None = None) -> list[KeyRecord]:
        return await self._repo.keys(team_id)

    async def create_key(self, body: KeyCreate) -> CreatedKey:
        await self._check_key_fields(body.team_id, body.models)
        check_budget(body.budget_usd is not None, body.budget_period)
        expires_at = naive_utc(body.expires_at)
        if expires_at is not None and expires_at <= self._clock():
            raise invalid_request("'expires_at' must be in the future.", "expires_at")
        secret = new_secret()
        record = KeyRecord(
            id=new_id("key"),
            name=body.name,
            key_hash=hash_secret(secret),  # the store never sees the secret itself
            key_prefix=shown_prefix(secret),
            team_id=body.team_id,
            models=_tuple(body.models),
            default_tags=_tuple(body.default_tags),
            rpm=body.rpm,
            tpm=body.tpm,
            budget_pico=budget_pico(body.budget_usd),
            budget_period=body.budget_period,
            expires_at=expires_at,
            created_at=self._clock(),
        )
        await self._repo.add_key(record)
        return CreatedKey(record, secret)

    async def update_key(self, record: KeyRecord, patch: KeyUpdate) -> KeyRecord:
        """Only the fields present in the PATCH change; null clears a field that may be
        empty (team, models, default tags, limits, budget, expiry)."""
        changes: dict[str, Any] = {
            name: getattr(patch, name)
            for name in patch.__struct_fields__
            if getattr(patch, name) is not msgspec.UNSET
        }
        if "team_id" in changes or "models" in changes:
            await self._check_key_fields(changes.get("team_id"), changes.get("models"))
        for name in ("models", "default_tags"):
            if name in changes:
                changes[name] = _tuple(changes[name])
        if "budget_usd" in changes:
            changes["budget_pico"] = budget_pico(changes.pop("budget_usd"))
        if "expires_at" in changes:
            changes["expires_at"] = naive_utc(changes["expires_at"])
        updated = msgspec.structs.replace(record, **changes)
        check_budget(updated.budget_pico is not None, updated.budget_period)
        await self._repo.replace_key(updated)
        await self._key_changed(updated.id)
        return updated

    async def revoke_key(self, key_id: str) -> KeyRecord:
        """Revoked once (a second DELETE keeps the first time); refused from the next
        request on, on every instance."""
        record = await self.key(key_id)
        if record.revoked_at is None:
            record = msgspec.structs.replace(record, revoked_at=self._clock())
            await self._repo.replace_key(record)
        await self._key_changed(record.id)
        return record

    async def create_team(self, body: TeamCreate) -> TeamRecord:
        check_budget(body.budget_usd is not None, body.budget_period)
        team = TeamRecord(
            id=new_id("team"),
            name=body.name,
            budget_pico=budget_pico(body.budget_usd),
            budget_period=body.budget_period,
            rpm=body.rpm,
            tpm=body.tpm,
            created_at=self._clock(),
        )
        await self._repo.add_team(team)
        return team

    async def teams(self) -> list[TeamRecord]:
        return await self._repo.teams()

    async def _check_key_fields(self, team_id: str | None, models: list[str] | None) -> None:
        """A key may only name a team that exists and models the gateway serves."""
        if team_id is not None and await self._repo.team(team_id) is None:
            raise invalid_request(f"No team with id {team_id!r}.", "team_id")
        unknown = sorted(set(models or ()) - self._known_models)
        if unknown:
            known = ", ".join(sorted(self._known_models))
            raise invalid_request(
                f"Unknown model or group {unknown[0]!r} (known: {known}).", "models"
            )


def check_budget(has_budget: bool, period: str | None) -> None:
    """A period without an amount would be a budget that limits nothing."""
    if period is not None and not has_budget:
        raise invalid_request("'budget_period' needs 'budget_usd'.", "budget_period")


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)
