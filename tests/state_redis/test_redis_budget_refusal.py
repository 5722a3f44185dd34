"""The Redis budget's 402 carries the same numbers as the in-memory one, and `retry-after`
only when reservations of calls in flight (not spending) hold the budget."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime

import pytest
from redis.asyncio import Redis

from nemorouter.core.budget import budget_exceeded
from nemorouter.state.budget_redis import RedisBudgets
from nemorouter.types.budget import BudgetRefused, BudgetSubject
from nemorouter.types.errors import GatewayError


async def refusal(reserving: Awaitable[object]) -> GatewayError:
    """The 402 the pipeline answers for the store's refusal."""
    with pytest.raises(BudgetRefused) as refused:
        await reserving
    return budget_exceeded(refused.value)


async def test_refusal_tells_spent_from_held_by_calls_in_flight(
    redis_client: Redis, prefix: str
) -> None:
    async def load(column: str, subject_id: str, since: datetime | None) -> int:
        return 600_000_000  # $0.0006 spent before

    budgets = RedisBudgets(redis_client, load, prefix=prefix)
    other = RedisBudgets(redis_client, load, prefix=prefix)  # another gateway instance
    key = BudgetSubject("key_id", "k", "key 'k'", 1_000_000_000, None)  # $0.001, lifetime
    first = await budgets.reserve([key], 500_000_000)
    held = await refusal(other.reserve([key], 250_000_000))  # 0.0006 + 0.0005 reserved >= 0.001
    error = held
    assert error.status == 402 and error.code == "budget_exceeded"
    assert error.headers["retry-after"] == "1"
    assert error.headers["x-nemo-budget-limit"] == "0.001"
    assert error.headers["x-nemo-budget-spent"] == "0.0006"
    assert error.headers["x-nemo-budget-reserved"] == "0.0005"
    assert error.headers["x-nemo-budget-worst-case"] == "0.00025"
    assert "budget of key 'k' is held by calls in flight" in error.message

    await budgets.settle(first, 450_000_000)
    spent = await refusal(other.reserve([key], 250_000_000))
    error = spent
    assert "retry-after" not in error.headers
    assert error.headers["x-nemo-budget-spent"] == "0.00105"
    assert error.headers["x-nemo-budget-reserved"] == "0"
    assert "budget of key 'k' is spent: $0.00105 of $0.001" in error.message


async def test_reserved_sum_is_exact_beyond_a_float_exponent(
    redis_client: Redis, prefix: str
) -> None:
    async def load(column: str, subject_id: str, since: datetime | None) -> int:
        return 0

    budgets = RedisBudgets(redis_client, load, prefix=prefix)
    key = BudgetSubject("key_id", "big", "key 'big'", 10**15, None)  # $1000
    await budgets.reserve([key], 10**15)  # $1000 in flight: 1e15 as a Lua number
    held = await refusal(budgets.reserve([key], 1))
    assert held.headers["x-nemo-budget-reserved"] == "1000"
