"""A finished line: its output or error file line, its cost at the batch price and its
spend row (`deferred: true`), and the settling of its budget reservation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nemorouter.core.access import budget_subjects
from nemorouter.core.auth import Caller
from nemorouter.core.cost import call_cost
from nemorouter.core.deferred.admit import parse_line
from nemorouter.core.deferred.objects import output_line
from nemorouter.core.deployments import Deployment
from nemorouter.core.record import CallRecord, job_id_of
from nemorouter.state.budgets import BudgetStore
from nemorouter.state.unavailable import Unavailable
from nemorouter.types.budget import BudgetRefused
from nemorouter.types.deferred import LineOutcome
from nemorouter.types.errors import GatewayError
from nemorouter.types.money import to_pico, usd

# (line, status, outcome JSON, cost in picodollars, spend row): what DeferredRepo.record takes.
Recorded = tuple[int, str, str, int | None, dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What each line of one batch shares."""

    batch_id: str
    caller: Caller
    job_id: str | None
    bodies: list[tuple[str, dict[str, Any]]]  # (custom_id, body) by line number

    def request_id(self, line: int) -> str:
        return f"{self.batch_id}-{line}"


def answered(
    context: BatchContext, line: int, deployment: Deployment, outcome: LineOutcome
) -> Recorded:
    """A provider batch's answer for `line`, costed at the deployment's batch price."""
    custom_id, body = context.bodies[line]
    request_id = context.request_id(line)
    record = CallRecord(context.caller, request_id)
    record.deferred = True
    record.attempts = 1
    record.model, record.deployment = deployment.model, deployment.id
    record.provider = deployment.config.provider
    try:
        record.request = request = parse_line(body)
        record.job_id = job_id_of(request, context.job_id.encode() if context.job_id else None)
    except GatewayError:  # admitted before: cannot happen unless the file changed
        record.job_id = context.job_id
    usage = outcome.usage
    record.usage(usage)
    record.cost = cost = call_cost(deployment.batch_pricing, usage)
    pico = None if cost is None else to_pico(cost)
    if outcome.response is not None:
        response = outcome.response
        if cost is not None and isinstance(response.get("usage"), dict):
            response["usage"]["cost"] = usd(cost)
        return line, "done", output_line(custom_id, 200, request_id, response), pico, record.row()
    error = outcome.error or {"code": "provider_error", "message": "the line failed"}
    record.status, record.error_code = 502, str(error.get("code"))[:64]
    return line, "error", output_line(custom_id, 0, request_id, None, error), pico, record.row()


def unanswered(context: BatchContext, line: int, code: str, message: str) -> Recorded:
    """A line that got no answer (the batch expired, was cancelled or failed)."""
    custom_id, _ = context.bodies[line]
    error = {"code": code, "message": message}
    outcome = output_line(custom_id, 0, context.request_id(line), None, error)
    return line, "error", outcome, None, None


async def settle(
    budgets: BudgetStore,
    reservations: dict[tuple[str, int], Any],
    context: BatchContext,
    done: list[Recorded],
) -> None:
    """Each line's reservation replaced by its real cost. After a restart the reservations
    of the previous process are gone: the cost is then counted through a reservation of
    nothing, so the budget still sees it (a budget already spent refuses even that: it
    needs no more counting)."""
    subjects = budget_subjects(context.caller)
    for line, _, _, pico, _ in done:
        reservation = reservations.pop((context.batch_id, line), None)
        if reservation is None and pico and subjects:
            try:
                reservation = await budgets.reserve(subjects, 0)
            except (BudgetRefused, Unavailable):
                continue
        if reservation is not None:
            await budgets.settle(reservation, pico or 0)
