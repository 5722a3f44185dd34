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

The stores that keep the numbers (memory, Redis) live in state/ and raise
types.budget.BudgetRefused; `budget_exceeded` turns that into the 402.
"""

from __future__ import annotations

from decimal import Decimal

from nemorouter.core.candidates import Link
from nemorouter.types.budget import BudgetRefused
from nemorouter.types.errors import GatewayError
from nemorouter.types.money import MILLION_TOKENS, pico_usd, to_pico
from nemorouter.types.request import ChatRequest

# Output assumed for the worst case when neither the request nor the catalog bounds it.
DEFAULT_MAX_OUTPUT = 8192
# When reservations in flight hold the rest of a budget: how soon to ask again. Calls settle
# as they finish (seconds); a refusal costs no provider call, so polling each second is cheap.
BUDGET_RETRY_AFTER_S = 1


def budget_exceeded(refused: BudgetRefused) -> GatewayError:
    """402 `budget_exceeded` with the numbers in the message and in `x-nemo-budget-*` headers
    (decimal USD); `retry-after` only when calls in flight, not spending, hold the budget."""
    subject, spent_pico = refused.subject, refused.spent_pico
    reserved_pico, worst_pico = refused.reserved_pico, refused.worst_pico
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
            default = deployment.target.default_max_tokens(request.stream)
            output = asked or default or DEFAULT_MAX_OUTPUT
            rates = pricing.rates(prompt)
            cost = (prompt * rates.input_per_mtok + output * rates.output_per_mtok) / MILLION_TOKENS
            worst = max(worst, cost)
    return to_pico(worst)
