"""Admin API endpoints the dashboard draws from: spend over time, recent fallbacks and
errors, budgets used. Master key (bearer) or, for these reads, a dashboard session."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nemorouter.core.errors import invalid_request
from nemorouter.core.keys import utcnow
from nemorouter.core.store_read import bounded_query
from nemorouter.gateway.admin import admin_read, parse_limit, parse_text, parse_when
from nemorouter.gateway.responses import JSONResponse
from nemorouter.store.analytics_budgets import budget_usage
from nemorouter.store.analytics_timeline import BUCKETS, EVENT_KINDS, recent_events, spend_timeline
from nemorouter.wiring import Services


def dashboard_admin_routes(pipeline: Services) -> list[Route]:
    async def authorized(request: Request) -> None:
        await admin_read(pipeline, request)

    async def timeline(request: Request) -> Response:
        await authorized(request)
        query = request.query_params
        bucket = _choice(query.get("bucket", "hour"), BUCKETS, "bucket")
        report = await bounded_query(
            spend_timeline(
                pipeline.store.engine,
                bucket,  # type: ignore[arg-type]
                start=parse_when(query.get("start"), "start", end=False),
                end=parse_when(query.get("end"), "end", end=True),
                job_id=parse_text(query.get("job_id"), "job_id"),
                model=parse_text(query.get("model"), "model"),
            )
        )
        return JSONResponse(report)

    async def events(request: Request) -> Response:
        await authorized(request)
        query = request.query_params
        kind = _choice(query.get("kind", "all"), EVENT_KINDS, "kind")
        found = await bounded_query(
            recent_events(
                pipeline.store.engine,
                kind,  # type: ignore[arg-type]
                limit=parse_limit(query.get("limit")),
                job_id=parse_text(query.get("job_id"), "job_id"),
            )
        )
        return JSONResponse({"events": found})

    async def budgets(request: Request) -> Response:
        await authorized(request)
        return JSONResponse(await bounded_query(budget_usage(pipeline.store.engine, utcnow())))

    return [
        Route("/admin/spend/timeline", timeline, methods=["GET"]),
        Route("/admin/events", events, methods=["GET"]),
        Route("/admin/budgets", budgets, methods=["GET"]),
    ]


def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise invalid_request(
            f"'{name}' must be one of {', '.join(allowed)} (got {value!r}).", name
        )
    return value
