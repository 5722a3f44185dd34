"""Budget words shared by the budget stores (state/), the pipeline (core/) and the spend
queries (store/): who has a budget, where its period starts, and a refusal with its numbers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from nemorouter.types.clock import period_start, utcnow

__all__ = ["BudgetRefused", "BudgetSubject", "LoadSpent", "period_start", "utcnow"]

# (spend-log column, subject id, period start) -> picodollars spent since then
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


class BudgetRefused(Exception):
    """A budget store refused a call: the numbers the 402 reports (core.budget builds it)."""

    def __init__(
        self, subject: BudgetSubject, spent_pico: int, reserved_pico: int, worst_pico: int
    ) -> None:
        super().__init__(subject.label)
        self.subject = subject
        self.spent_pico = spent_pico
        self.reserved_pico = reserved_pico
        self.worst_pico = worst_pico
