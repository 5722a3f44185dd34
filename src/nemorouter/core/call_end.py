"""The end of every call: settle its reservations to what it really used, then record it.

The pipeline calls this once per request, whichever way it ended (answered, cached, a
stream closed, failed, cancelled), so a reservation is never left counted and every
authenticated request leaves exactly one spend record.
"""

from __future__ import annotations

from decimal import Decimal

from nemorouter.core.deployments import Deployment
from nemorouter.core.limits import KeyLimits
from nemorouter.core.metrics import Metrics
from nemorouter.core.record import CallRecord
from nemorouter.core.reservation_check import check_reservation, learn_prompt_ratio
from nemorouter.core.tracing import request_ended
from nemorouter.state.budgets import BudgetStore
from nemorouter.store.writer import SpendWriter
from nemorouter.types.money import to_pico


class CallEnd:
    def __init__(
        self, budgets: BudgetStore, limits: KeyLimits, metrics: Metrics, writer: SpendWriter
    ) -> None:
        self.budgets = budgets
        self.limits = limits
        self.metrics = metrics
        self.writer = writer

    async def settle(
        self, record: CallRecord, cost: Decimal | None, deployment: Deployment | None = None
    ) -> None:
        """Replace the budget and rate-limit reservations by what the call really used; a
        deployment that answered learns how its prompt count compares with the estimate."""
        ratio = 0.0
        if deployment is not None and record.request is not None and record.prompt_tokens:
            ratio = learn_prompt_ratio(deployment, record.request, record.prompt_tokens)
        budget, record.budget = record.budget, None
        if budget is not None:
            actual = 0 if cost is None else to_pico(cost)
            if deployment is not None:
                check_reservation(self.metrics, deployment, budget.pico, actual, ratio)
            await self.budgets.settle(budget, actual)
        limit, record.limit = record.limit, None
        if limit is not None:
            await self.limits.settle(limit, record.prompt_tokens + record.completion_tokens)

    async def finished(
        self, record: CallRecord, cost: Decimal | None, deployment: Deployment | None = None
    ) -> None:
        """The hook every call that ran to its end goes through (answered, served from the
        cache, a stream closed): settle, then record. As cheap as the two calls it replaces
        (the record step is inline: one coroutine fewer)."""
        await self.settle(record, cost, deployment)
        row = record.row()
        self.metrics.observe(row)
        if record.span is not None:
            request_ended(record.span, record, row)
        await self.writer.add(row)

    async def record(self, record: CallRecord) -> None:
        """A call refused or failed (its reservations already given back): record it."""
        row = record.row()
        self.metrics.observe(row)
        if record.span is not None:
            request_ended(record.span, record, row)
        await self.writer.add(row)

    def record_now(self, record: CallRecord) -> None:
        """For a cancelled request: record without waiting (a cancelled task must not)."""
        row = record.row()
        self.metrics.observe(row)
        if record.span is not None:
            request_ended(record.span, record, row)
        self.writer.add_nowait(row)
