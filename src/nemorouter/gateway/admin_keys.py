"""Admin API for virtual keys and teams (master key only, DESIGN §2.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nemorouter.core.errors import GatewayError, invalid_request
from nemorouter.core.keys import (
    KeyCreate,
    KeyRecord,
    KeyUpdate,
    TeamCreate,
    TeamRecord,
    budget_pico,
    decode_input,
    hash_secret,
    naive_utc,
    new_id,
    new_secret,
    utcnow,
)
from nemorouter.core.money import pico_usd
from nemorouter.core.store_read import bounded_query, flushed
from nemorouter.gateway.admin import parse_text
from nemorouter.gateway.bodies import ADMIN_BODY_BYTES, bounded_body
from nemorouter.gateway.responses import JSONResponse
from nemorouter.gateway.ui_session import check_admin
from nemorouter.types.budget import period_start
from nemorouter.wiring import Services


def key_routes(pipeline: Services) -> list[Route]:
    repo = pipeline.keys

    def authorized(request: Request) -> None:
        check_admin(pipeline, request)  # master key, or a dashboard session (reads only)

    async def key_or_404(key_id: str) -> KeyRecord:
        if parse_text(key_id, "key_id", 40) is None:
            raise GatewayError(404, "key_not_found", "No key with an empty id.")
        record = await repo.key(key_id)
        if record is None:
            raise GatewayError(404, "key_not_found", f"No key with id {key_id!r}.")
        return record

    async def check_key_fields(team_id: str | None, models: list[str] | None) -> None:
        if team_id is not None and await repo.team(team_id) is None:
            raise invalid_request(f"No team with id {team_id!r}.", "team_id")
        known = {*pipeline.pool.names, "auto"}
        unknown = sorted(set(models or ()) - known)
        if unknown:
            raise invalid_request(
                f"Unknown model or group {unknown[0]!r} (known: {', '.join(sorted(known))}).",
                "models",
            )

    async def create_key(request: Request) -> Response:
        authorized(request)
        body = decode_input(await _body(request), KeyCreate)
        await check_key_fields(body.team_id, body.models)
        _check_budget(body.budget_usd is not None, body.budget_period)
        expires_at = naive_utc(body.expires_at)
        if expires_at is not None and expires_at <= utcnow():
            raise invalid_request("'expires_at' must be in the future.", "expires_at")
        secret = new_secret()
        record = KeyRecord(
            id=new_id("key"),
            name=body.name,
            key_hash=hash_secret(secret),
            key_prefix=secret[: len("sk-nemo-") + 4],
            team_id=body.team_id,
            models=tuple(body.models) if body.models is not None else None,
            default_tags=tuple(body.default_tags) if body.default_tags is not None else None,
            rpm=body.rpm,
            tpm=body.tpm,
            budget_pico=budget_pico(body.budget_usd),
            budget_period=body.budget_period,
            expires_at=expires_at,
            created_at=utcnow(),
        )
        await repo.add_key(record)
        # The only time the secret is returned: it is stored as a hash.
        return JSONResponse({**record.public(), "key": secret}, status_code=201)

    async def list_keys(request: Request) -> Response:
        authorized(request)
        team_id = parse_text(request.query_params.get("team_id"), "team_id", 40)
        return JSONResponse({"keys": [k.public() for k in await repo.keys(team_id)]})

    async def get_key(request: Request) -> Response:
        authorized(request)
        record = await bounded_query(key_or_404(request.path_params["key_id"]))
        return JSONResponse({**record.public(), "spend": await _spend(pipeline, record)})

    async def update_key(request: Request) -> Response:
        authorized(request)
        record = await key_or_404(request.path_params["key_id"])
        patch = decode_input(await _body(request), KeyUpdate)
        changes = {
            f: getattr(patch, f)
            for f in patch.__struct_fields__
            if getattr(patch, f) is not msgspec.UNSET
        }
        if "team_id" in changes or "models" in changes:
            await check_key_fields(changes.get("team_id"), changes.get("models"))
        for name in ("models", "default_tags"):
            if changes.get(name) is not None:
                changes[name] = tuple(changes[name])
        if "budget_usd" in changes:
            changes["budget_pico"] = budget_pico(changes.pop("budget_usd"))
        if "expires_at" in changes:
            changes["expires_at"] = naive_utc(changes["expires_at"])
        updated = msgspec.structs.replace(record, **changes)
        _check_budget(updated.budget_pico is not None, updated.budget_period)
        await repo.replace_key(updated)
        await pipeline.key_changed(updated.id)
        return JSONResponse(updated.public())

    async def revoke_key(request: Request) -> Response:
        authorized(request)
        record = await key_or_404(request.path_params["key_id"])
        if record.revoked_at is None:
            record = msgspec.structs.replace(record, revoked_at=utcnow())
            await repo.replace_key(record)
        await pipeline.key_changed(record.id)  # refused from the next request on, everywhere
        return JSONResponse(record.public())

    async def create_team(request: Request) -> Response:
        authorized(request)
        body = decode_input(await _body(request), TeamCreate)
        _check_budget(body.budget_usd is not None, body.budget_period)
        team = TeamRecord(
            id=new_id("team"),
            name=body.name,
            budget_pico=budget_pico(body.budget_usd),
            budget_period=body.budget_period,
            rpm=body.rpm,
            tpm=body.tpm,
            created_at=utcnow(),
        )
        await repo.add_team(team)
        return JSONResponse(team.public(), status_code=201)

    async def list_teams(request: Request) -> Response:
        authorized(request)
        return JSONResponse({"teams": [t.public() for t in await repo.teams()]})

    return [
        Route("/admin/keys", create_key, methods=["POST"]),
        Route("/admin/keys", list_keys, methods=["GET"]),
        Route("/admin/keys/{key_id}", get_key, methods=["GET"]),
        Route("/admin/keys/{key_id}", update_key, methods=["PATCH"]),
        Route("/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
        Route("/admin/teams", create_team, methods=["POST"]),
        Route("/admin/teams", list_teams, methods=["GET"]),
    ]


async def _body(request: Request) -> bytes:
    return await bounded_body(request, ADMIN_BODY_BYTES, "admin request bodies")


def _check_budget(has_budget: bool, period: str | None) -> None:
    if period is not None and not has_budget:
        raise invalid_request("'budget_period' needs 'budget_usd'.", "budget_period")


async def _spend(pipeline: Services, record: KeyRecord) -> dict[str, Any]:
    """The key's spend in its budget period (all time without a period)."""
    await flushed(pipeline.store.writer)  # bounded: a store that cannot answer is a 503
    since: datetime | None = period_start(record.budget_period, utcnow())
    spent = await bounded_query(pipeline.keys.spent_pico("key_id", record.id, since))
    return {
        "period_start": None if since is None else since.isoformat() + "Z",
        "usd": pico_usd(spent),
    }
