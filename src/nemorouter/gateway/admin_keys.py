"""Admin API for virtual keys and teams (master key only, DESIGN §2.3): decode, call the
key administration service (core/key_admin), encode."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nemorouter.core.key_admin import KeyAdmin
from nemorouter.core.keys import KeyCreate, KeyUpdate, TeamCreate, decode_input
from nemorouter.core.spend_queries import SpendQueries
from nemorouter.core.store_read import bounded_query
from nemorouter.gateway.admin import parse_text
from nemorouter.gateway.bodies import ADMIN_BODY_BYTES, bounded_body
from nemorouter.gateway.responses import JSONResponse
from nemorouter.gateway.ui_session import check_admin
from nemorouter.types.keys import KeyRecord
from nemorouter.wiring import Services


def key_routes(pipeline: Services, admin: KeyAdmin, spend: SpendQueries) -> list[Route]:
    async def authorized(request: Request) -> None:
        await check_admin(pipeline, request)  # master key, or a dashboard session (reads only)

    async def key_of(request: Request) -> KeyRecord:
        return await admin.key(_key_id(request))

    async def create_key(request: Request) -> Response:
        await authorized(request)
        created = await admin.create_key(decode_input(await _body(request), KeyCreate))
        # The only time the secret is returned: it is stored as a hash.
        return JSONResponse({**created.record.public(), "key": created.secret}, status_code=201)

    async def list_keys(request: Request) -> Response:
        await authorized(request)
        team_id = parse_text(request.query_params.get("team_id"), "team_id", 40)
        return JSONResponse({"keys": [k.public() for k in await admin.keys(team_id)]})

    async def get_key(request: Request) -> Response:
        await authorized(request)
        record = await bounded_query(key_of(request))
        return JSONResponse({**record.public(), "spend": await spend.key_spend(record)})

    async def update_key(request: Request) -> Response:
        await authorized(request)
        record = await key_of(request)  # an unknown key is a 404 whatever the body says
        patch = decode_input(await _body(request), KeyUpdate)
        return JSONResponse((await admin.update_key(record, patch)).public())

    async def revoke_key(request: Request) -> Response:
        await authorized(request)
        return JSONResponse((await admin.revoke_key(_key_id(request))).public())

    async def create_team(request: Request) -> Response:
        await authorized(request)
        team = await admin.create_team(decode_input(await _body(request), TeamCreate))
        return JSONResponse(team.public(), status_code=201)

    async def list_teams(request: Request) -> Response:
        await authorized(request)
        return JSONResponse({"teams": [t.public() for t in await admin.teams()]})

    return [
        Route("/admin/keys", create_key, methods=["POST"]),
        Route("/admin/keys", list_keys, methods=["GET"]),
        Route("/admin/keys/{key_id}", get_key, methods=["GET"]),
        Route("/admin/keys/{key_id}", update_key, methods=["PATCH"]),
        Route("/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
        Route("/admin/teams", create_team, methods=["POST"]),
        Route("/admin/teams", list_teams, methods=["GET"]),
    ]


def _key_id(request: Request) -> str:
    """The path's key id ("" when empty: the service answers 404 for it)."""
    return parse_text(request.path_params["key_id"], "key_id", 40) or ""


async def _body(request: Request) -> bytes:
    return await bounded_body(request, ADMIN_BODY_BYTES, "admin request bodies")
