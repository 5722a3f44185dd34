"""Budgets that hold under concurrency: reserve a call's worst-case cost before it, settle
to the real cost after it.

A call is admitted while spent + reserved is under the limit, and then reserves its worst
case, so however many calls race for the last dollar, the overshoot is at most one call's
worst case (its real cost, which is at most its worst case, minus what was left). Once
spent reaches the limit, every call gets 402 `budget_exceeded` with no provider call.

A 402 says which of two things refused it, with the numbers (limit, spent, reserved in
flight, this call's worst case): a budget truly spent (no `retry-after`: asking again will
not help), or one whose rest is held by the reservations of calls in flight (`retry-after`:
they settle to their real, usually much smaller, cost within seconds).

Spent amounts per period are loaded from the spend log the first time a key or team is seen
(per process and period), then kept in memory and updated as calls settle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

from nemorouter.core.candidates import Link
from nemorouter.core.errors import GatewayError
from nemorouter.core.keys import utcnow
from nemorouter.core.money import MILLION_TOKENS, pico_usd, to_pico
from nemorouter.core.request import ChatRequest
from nemorouter.types.clock import period_start

# Output assumed for the worst case when neither the request nor the catalog bounds it.
DEFAULT_MAX_OUTPUT = 8192
# When reservations in flight hold the rest of a budget: how soon to ask again. Calls settle
# as they finish (seconds); a refusal costs no provider call, so polling each second is cheap.
BUDGET_RETRY_AFTER_S = 1

LoadSpent = Callable[[str, str, datetime | None], Awaitable[int]]


class BudgetSubject:
    """A key or a team with a budget: `column` is its spend-log column (key_id | team_id)."""

    __slots__ = ("column", "id", "label", "limit_pico", "period")

    def __init__(
        self, column: str, subject_id: str, label: str, limit_pico: int, period: str | None
    ) -> None:
        self.column = column
        self.id = subject_id
        self.label = label  # for the error message: "key 'ocr-batch'"
        self.limit_pico = limit_pico
        self.period = period


class _Ledger:
    __slots__ = ("reserved", "since", "spent")

    def __init__(self, since: datetime | None, spent: int) -> None:
        self.since = since
        self.spent = spent
        self.reserved = 0


class Reservation:
    __slots__ = ("ledgers", "pico", "settled")

    def __init__(self, ledgers: list[_Ledger], pico: int) -> None:
        self.ledgers = ledgers
        self.pico = pico
        self.settled = False


class Budgets:
    def __init__(self, load_spent: LoadSpent, clock: Callable[[], datetime] = utcnow) -> None:
        self._load_spent = load_spent
        self._clock = clock
        self._ledgers: dict[tuple[str, str], _Ledger] = {}
        self._loading: dict[tuple[str, str, datetime | None], asyncio.Future[_Ledger]] = {}

    async def _ledger(self, subject: BudgetSubject) -> _Ledger:
        since = period_start(subject.period, self._clock())
        key = (subject.column, subject.id)
        ledger = self._ledgers.get(key)
        if ledger is not None and ledger.since == since:
            return ledger
        loading_key = (subject.column, subject.id, since)
        future = self._loading.get(loading_key)
        if future is None:  # one load per subject and period, however many callers wait
            future = asyncio.get_running_loop().create_future()
            self._loading[loading_key] = future
            try:
                spent = await self._load_spent(subject.column, subject.id, since)
            except BaseException as exc:
                del self._loading[loading_key]
                future.set_exception(exc)
                future.exception()  # retrieved: a failed load is reported to the caller only
                raise
            ledger = _Ledger(since, spent)
            self._ledgers[key] = ledger
            del self._loading[loading_key]
            future.set_result(ledger)
            return ledger
        return await asyncio.shield(future)

    async def reserve(self, subjects: list[BudgetSubject], worst_pico: int) -> Reservation | None:
        """Admit the call against every subject's budget, or raise 402."""
        if not subjects:
            return None
        ledgers = [await self._ledger(subject) for subject in subjects]
        for subject, ledger in zip(subjects, ledgers, strict=True):
            if ledger.spent + ledger.reserved >= subject.limit_pico:
                raise budget_exceeded(subject, ledger.spent, ledger.reserved, worst_pico)
        for ledger in ledgers:
            ledger.reserved += worst_pico
        return Reservation(ledgers, worst_pico)

    async def settle(self, reservation: Reservation | None, actual_pico: int) -> None:
        """Replace the reserved worst case by the real cost (0 for a call that failed)."""
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        for ledger in reservation.ledgers:
            ledger.reserved -= reservation.pico
            ledger.spent += actual_pico

    def spent_pico(self, column: str, subject_id: str) -> int | None:
        ledger = self._ledgers.get((column, subject_id))
        return None if ledger is None else ledger.spent


def budget_exceeded(
    subject: BudgetSubject, spent_pico: int, reserved_pico: int, worst_pico: int
) -> GatewayError:
    """402 `budget_exceeded` with the numbers in the message and in `x-nemo-budget-*` headers
    (decimal USD); `retry-after` only when calls in flight, not spending, hold the budget."""
    period = f"{subject.period} " if subject.period else ""
    limit, spent = pico_usd(subject.limit_pico), pico_usd(spent_pico)
    reserved, worst = pico_usd(reserved_pico), pico_usd(worst_pico)
    headers = {
        "x-nemo-budget-limit": limit,
        "x-nemo-budget-spent": spent,
        "x-nemo-budget-reserved": reserved,
        "x-nemo-budget-worst-case": worst,
    }
    if spent_pico >= subject.limit_pico:
        message = (
            f"The {period}budget of {subject.label} is spent: ${spent} of ${limit} "
            f"(reserved by calls in flight: ${reserved}; this call's worst case: ${worst})."
        )
    else:
        headers["retry-after"] = str(BUDGET_RETRY_AFTER_S)
        message = (
            f"The {period}budget of {subject.label} is held by calls in flight: ${spent} spent "
            f"and ${reserved} reserved of ${limit}; this call's worst case is ${worst}. Retry "
            f"after {BUDGET_RETRY_AFTER_S} s, as they settle; a smaller max_tokens reserves less."
        )
    return GatewayError(402, "budget_exceeded", message, headers=headers)


def worst_case_pico(request: ChatRequest, links: list[Link]) -> int:
    """The most this call can cost on any deployment it may reach: the prompt as estimated
    for that deployment (its provider's image rule, times the ratio it has been seen to
    report above the estimate) at input prices, plus the output bound (max_tokens, else the
    model's max output)."""
    asked = request.max_output
    worst = Decimal(0)
    for link in links:
        for deployment in link.deployments:
            pricing = deployment.pricing
            if pricing is None:
                continue
            prompt = deployment.prompt_correction.apply(
                request.prompt_tokens_for(deployment.image_rule)
            )
            output = asked or deployment.max_output_tokens or DEFAULT_MAX_OUTPUT
            rates = pricing.rates(prompt)
            cost = (prompt * rates.input_per_mtok + output * rates.output_per_mtok) / MILLION_TOKENS
            worst = max(worst, cost)
    return to_pico(worst)
