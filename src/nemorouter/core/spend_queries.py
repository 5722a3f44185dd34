"""Spend queries: what the admin API and the dashboard read from the spend log.

Every read first writes this instance's waiting records (read-your-writes: a call it
answered is in the numbers), then queries; both are bounded (core/store_read), so a store
that cannot answer is a 503, never a hung admin call. A key's spend in its budget period
is the same read a budget makes the first time it sees the key: one function, here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from nemorouter.core.store_read import FLUSH_WAIT_S, QUERY_WAIT_S, bounded_query, flushed
from nemorouter.store.analytics import GroupBy, job_report, jobs_list, spend_report
from nemorouter.store.analytics_budgets import budget_usage, spend_in_period
from nemorouter.store.analytics_timeline import Bucket, EventKind, recent_events, spend_timeline
from nemorouter.store.keys_repo import KeysRepo
from nemorouter.store.writer import SpendWriter
from nemorouter.types.budget import period_start
from nemorouter.types.clock import utcnow
from nemorouter.types.errors import GatewayError
from nemorouter.types.keys import KeyRecord

T = TypeVar("T")


async def spent_so_far(
    writer: SpendWriter,
    repo: KeysRepo,
    column: str,
    subject_id: str,
    since: datetime | None,
    *,
    flush_wait_s: float = FLUSH_WAIT_S,
    query_wait_s: float = QUERY_WAIT_S,
) -> int:
    """Picodollars a key or team (`column` key_id | team_id) spent since `since`, from the
    log with this instance's rows written first; a 503 when the store cannot answer (so
    budgets fail closed: no answer rather than an unchecked spend)."""
    await flushed(writer, flush_wait_s)
    return await bounded_query(repo.spent_pico(column, subject_id, since), query_wait_s)


class SpendQueries:
    def __init__(
        self,
        writer: SpendWriter,
        repo: KeysRepo,
        clock: Callable[[], datetime] = utcnow,
        *,
        flush_wait_s: float = FLUSH_WAIT_S,
        query_wait_s: float = QUERY_WAIT_S,
    ) -> None:
        self._writer = writer
        self._repo = repo
        self._engine = writer.engine  # the writer writes where the reads read
        self._clock = clock
        self._flush_wait_s = flush_wait_s
        self._query_wait_s = query_wait_s

    async def key_spend(self, record: KeyRecord) -> dict[str, Any]:
        """The key's spend in its budget period (all time without a period), as
        GET /admin/keys/{id} and /admin/budgets show it."""
        now = self._clock()
        since = period_start(record.budget_period, now)
        spent = await spent_so_far(
            self._writer,
            self._repo,
            "key_id",
            record.id,
            since,
            flush_wait_s=self._flush_wait_s,
            query_wait_s=self._query_wait_s,
        )
        return spend_in_period(record.budget_period, now, spent)

    async def spend(
        self,
        group_by: GroupBy,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        job_id: str | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        return await self._fresh(
            lambda: spend_report(
                self._engine, group_by, start=start, end=end, job_id=job_id, model=model
            )
        )

    async def jobs(self, limit: int) -> list[dict[str, Any]]:
        return await self._fresh(lambda: jobs_list(self._engine, limit))

    async def job(self, job_id: str) -> dict[str, Any]:
        report = await self._fresh(lambda: job_report(self._engine, job_id))
        if report is None:
            raise GatewayError(404, "job_not_found", f"No request carried the job id {job_id!r}.")
        return report

    async def timeline(
        self,
        bucket: Bucket,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        job_id: str | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        return await self._fresh(
            lambda: spend_timeline(
                self._engine, bucket, start=start, end=end, job_id=job_id, model=model
            )
        )

    async def events(
        self, kind: EventKind, *, limit: int, job_id: str | None = None
    ) -> list[dict[str, Any]]:
        return await self._fresh(
            lambda: recent_events(self._engine, kind, limit=limit, job_id=job_id)
        )

    async def budgets(self) -> dict[str, list[dict[str, Any]]]:
        return await self._fresh(lambda: budget_usage(self._engine, self._clock()))

    async def _fresh(self, query: Callable[[], Awaitable[T]]) -> T:
        """This instance's waiting records written, then the query, each bounded."""
        await flushed(self._writer, self._flush_wait_s)
        return await bounded_query(query(), self._query_wait_s)
