"""Budget reservations: admission, settlement, periods, one load per subject."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime

import pytest

from nemorouter.core.budget import budget_exceeded
from nemorouter.state.budget_memory import MemoryBudgets
from nemorouter.types.budget import BudgetRefused, BudgetSubject, period_start
from nemorouter.types.errors import GatewayError


async def refusal(reserving: Awaitable[object]) -> GatewayError:
    """The 402 the pipeline answers for the store's refusal."""
    with pytest.raises(BudgetRefused) as refused:
        await reserving
    return budget_exceeded(refused.value)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_period_starts() -> None:
    now = datetime(2026, 11, 25, 17, 30, 5)
    assert period_start("daily", now) == datetime(2026, 11, 25)
    assert period_start("monthly", now) == datetime(2026, 11, 1)
    assert period_start(None, now) is None


async def test_admits_until_spent_plus_reserved_reaches_the_limit() -> None:
    loads: list[tuple[str, str, datetime | None]] = []

    async def load(column: str, subject_id: str, since: datetime | None) -> int:
        loads.append((column, subject_id, since))
        await asyncio.sleep(0.01)
        return 300

    clock = Clock(datetime(2026, 11, 25, 12))
    budgets = MemoryBudgets(load, clock)
    key = BudgetSubject("key_id", "k1", "key 'k1'", 1000, "daily")
    # Concurrent first requests load the spend once.
    first, second = await asyncio.gather(budgets.reserve([key], 400), budgets.reserve([key], 400))
    assert loads == [("key_id", "k1", datetime(2026, 11, 25))]
    refused = await refusal(budgets.reserve([key], 1))  # 300 + 800 reserved >= 1000
    assert refused.status == 402 and refused.code == "budget_exceeded"
    assert "daily budget of key 'k1'" in refused.message
    await budgets.settle(first, 50)
    await budgets.settle(first, 50)  # settling twice counts once
    assert budgets.spent_pico("key_id", "k1") == 350
    third = await budgets.reserve([key], 400)  # 350 + 400 + 400 >= 1000 only after it
    await budgets.settle(second, 0)
    await budgets.settle(third, 700)
    assert budgets.spent_pico("key_id", "k1") == 1050  # over by less than one worst case
    await refusal(budgets.reserve([key], 1))

    clock.now = datetime(2026, 11, 26, 0, 0, 1)  # a new day: spend re-read for the period
    assert await budgets.reserve([key], 10) is not None
    assert loads[-1] == ("key_id", "k1", datetime(2026, 11, 26))


async def test_a_call_must_fit_every_budget_and_reserves_nothing_when_refused() -> None:
    async def load(column: str, subject_id: str, since: datetime | None) -> int:
        return {"k": 0, "t": 990}[subject_id]

    budgets = MemoryBudgets(load)
    key = BudgetSubject("key_id", "k", "key 'k'", 10_000, None)
    team = BudgetSubject("team_id", "t", "team 't'", 1000, None)
    assert await budgets.reserve([key, team], 10) is not None  # team: 990 + 10 reserved
    refused = await refusal(budgets.reserve([key, team], 5))
    assert "team 't'" in refused.message
    assert await budgets.reserve([key], 9000) is not None  # the key alone had room
    assert await budgets.reserve([], 10**12) is None  # no budget, no reservation


async def test_refusal_tells_spent_from_held_by_calls_in_flight() -> None:
    async def load(column: str, subject_id: str, since: datetime | None) -> int:
        return 600_000_000  # $0.0006 spent before

    budgets = MemoryBudgets(load)
    key = BudgetSubject("key_id", "k", "key 'k'", 1_000_000_000, "daily")  # $0.001
    first = await budgets.reserve([key], 500_000_000)  # in flight: 0.0006 + 0.0005 >= 0.001
    held = await refusal(budgets.reserve([key], 250_000_000))
    error = held
    assert error.status == 402 and error.code == "budget_exceeded"
    assert error.headers["retry-after"] == "1"  # the reservation settles soon: ask again
    assert error.headers["x-nemo-budget-limit"] == "0.001"
    assert error.headers["x-nemo-budget-spent"] == "0.0006"
    assert error.headers["x-nemo-budget-reserved"] == "0.0005"
    assert error.headers["x-nemo-budget-worst-case"] == "0.00025"
    assert "held by calls in flight" in error.message
    for number in ("$0.0006 spent", "$0.0005 reserved", "of $0.001", "worst case is $0.00025"):
        assert number in error.message
    assert error.body()["error"]["type"] == "insufficient_quota"  # still OpenAI-shaped

    await budgets.settle(first, 450_000_000)  # spent 0.00105: truly spent now
    spent = await refusal(budgets.reserve([key], 250_000_000))
    error = spent
    assert "retry-after" not in error.headers  # asking again will not help
    assert error.headers["x-nemo-budget-spent"] == "0.00105"
    assert error.headers["x-nemo-budget-reserved"] == "0"
    assert "daily budget of key 'k' is spent: $0.00105 of $0.001" in error.message
