"""Admin API endpoints the dashboard draws from: spend over time, recent fallbacks and
errors, budgets used. Master key (bearer) or, for these reads, a dashboard session."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nemorouter.core.spend_queries import SpendQueries
from nemorouter.gateway.admin import parse_choice, parse_limit, parse_text, parse_when
from nemorouter.gateway.responses import JSONResponse
from nemorouter.gateway.ui_session import check_admin
from nemorouter.store.analytics_timeline import BUCKETS, EVENT_KINDS
from nemorouter.wiring import Services


def dashboard_admin_routes(pipeline: Services, queries: SpendQueries) -> list[Route]:
    async def authorized(request: Request) -> None:
        await check_admin(pipeline, request)  # master key, or a dashboard session (reads only)

    async def timeline(request: Request) -> Response:
        await authorized(request)
        query = request.query_params
        bucket = parse_choice(query.get("bucket", "hour"), BUCKETS, "bucket")
        report = await queries.timeline(
            bucket,  # type: ignore[arg-type]
            start=parse_when(query.get("start"), "start", end=False),
            end=parse_when(query.get("end"), "end", end=True),
            job_id=parse_text(query.get("job_id"), "job_id"),
            model=parse_text(query.get("model"), "model"),
        )
        return JSONResponse(report)

    async def events(request: Request) -> Response:
        await authorized(request)
        query = request.query_params
        kind = parse_choice(query.get("kind", "all"), EVENT_KINDS, "kind")
        found = await queries.events(
            kind,  # type: ignore[arg-type]
            limit=parse_limit(query.get("limit")),
            job_id=parse_text(query.get("job_id"), "job_id"),
        )
        return JSONResponse({"events": found})

    async def budgets(request: Request) -> Response:
        await authorized(request)
        return JSONResponse(await queries.budgets())

    return [
        Route("/admin/spend/timeline", timeline, methods=["GET"]),
        Route("/admin/events", events, methods=["GET"]),
        Route("/admin/budgets", budgets, methods=["GET"]),
    ]
