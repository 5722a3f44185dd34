"""Admin API (master key only): spend analytics and jobs (DESIGN §2.3)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nemorouter.core.errors import GatewayError, invalid_request
from nemorouter.core.store_read import bounded_query, flushed
from nemorouter.gateway.responses import JSONResponse
from nemorouter.gateway.ui_session import check_admin
from nemorouter.store.analytics import GROUP_BY, job_report, jobs_list, spend_report
from nemorouter.wiring import Services

MAX_JOBS_LISTED = 1000


def admin_routes(pipeline: Services) -> list[Route]:
    async def authorized(request: Request) -> None:
        await admin_read(pipeline, request)

    async def spend(request: Request) -> Response:
        await authorized(request)
        query = request.query_params
        group_by = query.get("group_by", "job")
        if group_by not in GROUP_BY:
            raise invalid_request(
                f"'group_by' must be one of {', '.join(GROUP_BY)} (got {group_by!r}).", "group_by"
            )
        report = await bounded_query(
            spend_report(
                pipeline.store.engine,
                group_by,  # type: ignore[arg-type]
                start=parse_when(query.get("start"), "start", end=False),
                end=parse_when(query.get("end"), "end", end=True),
                job_id=parse_text(query.get("job_id"), "job_id"),
                model=parse_text(query.get("model"), "model"),
            )
        )
        return JSONResponse(report)

    async def jobs(request: Request) -> Response:
        await authorized(request)
        limit = parse_limit(request.query_params.get("limit"))
        return JSONResponse({"jobs": await bounded_query(jobs_list(pipeline.store.engine, limit))})

    async def job(request: Request) -> Response:
        await authorized(request)
        job_id = parse_text(request.path_params["job_id"], "job_id") or ""
        report = await bounded_query(job_report(pipeline.store.engine, job_id))
        if report is None:
            raise GatewayError(404, "job_not_found", f"No request carried the job id {job_id!r}.")
        return JSONResponse(report)

    return [
        Route("/admin/spend", spend, methods=["GET"]),
        Route("/admin/jobs", jobs, methods=["GET"]),
        Route("/admin/jobs/{job_id:path}", job, methods=["GET"]),
    ]


async def admin_read(pipeline: Services, request: Request) -> None:
    """Every admin read: the master key or a dashboard session, then this instance's
    waiting spend records written (read-your-writes: what it answered is in the numbers).
    Its query then goes through `bounded_query`: neither step may hang (503 instead)."""
    check_admin(pipeline, request)
    await flushed(pipeline.store.writer)  # bounded: a writer that cannot write is a 503


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
