"""Admin API (master key only): spend analytics and jobs (DESIGN §2.3): decode the query,
call the spend queries (core/spend_queries), encode. Also the query-parameter decoders
the other admin routes share."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nemorouter.core.spend_queries import SpendQueries
from nemorouter.gateway.responses import JSONResponse
from nemorouter.gateway.ui_session import check_admin
from nemorouter.store.analytics import GROUP_BY
from nemorouter.types.errors import invalid_request
from nemorouter.wiring import Services

MAX_JOBS_LISTED = 1000


def admin_routes(pipeline: Services, queries: SpendQueries) -> list[Route]:
    async def authorized(request: Request) -> None:
        await check_admin(pipeline, request)  # master key, or a dashboard session (reads only)

    async def spend(request: Request) -> Response:
        await authorized(request)
        query = request.query_params
        group_by = parse_choice(query.get("group_by", "job"), GROUP_BY, "group_by")
        report = await queries.spend(
            group_by,  # type: ignore[arg-type]
            start=parse_when(query.get("start"), "start", end=False),
            end=parse_when(query.get("end"), "end", end=True),
            job_id=parse_text(query.get("job_id"), "job_id"),
            model=parse_text(query.get("model"), "model"),
        )
        return JSONResponse(report)

    async def jobs(request: Request) -> Response:
        await authorized(request)
        limit = parse_limit(request.query_params.get("limit"))
        return JSONResponse({"jobs": await queries.jobs(limit)})

    async def job(request: Request) -> Response:
        await authorized(request)
        job_id = parse_text(request.path_params["job_id"], "job_id") or ""
        return JSONResponse(await queries.job(job_id))

    return [
        Route("/admin/spend", spend, methods=["GET"]),
        Route("/admin/jobs", jobs, methods=["GET"]),
        Route("/admin/jobs/{job_id:path}", job, methods=["GET"]),
    ]


def parse_choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise invalid_request(
            f"'{name}' must be one of {', '.join(allowed)} (got {value!r}).", name
        )
    return value


def parse_when(value: str | None, name: str, *, end: bool) -> datetime | None:
    """An ISO date or date-time, as naive UTC. A bare date as `end` includes that day."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if end and day == date.max:
                return None  # the whole last day: no bound at all
            return datetime.combine(day + timedelta(days=1) if end else day, time())
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise invalid_request(
            f"'{name}' must be an ISO 8601 date or date-time in years 1-9999 (got {value!r}).",
            name,
        ) from None
    return moment


def parse_text(value: str | None, name: str, max_chars: int = 200) -> str | None:
    """An optional text parameter (a job id, a model), refused when it could not be in
    the store: longer than its column, or with NUL (PostgreSQL text cannot hold it)."""
    if not value:
        return None
    if len(value) > max_chars or "\x00" in value:
        raise invalid_request(
            f"'{name}' must be at most {max_chars} characters, without NUL.", name
        )
    return value


def parse_limit(value: str | None) -> int:
    if value is None:
        return 100
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_JOBS_LISTED:
        raise invalid_request(f"'limit' must be an integer from 1 to {MAX_JOBS_LISTED}.", "limit")
    return limit
