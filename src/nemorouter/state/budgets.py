"""What the pipeline asks of a budget store: memory (state/budget_memory.py) or shared
through Redis (state/budget_redis.py); the wiring picks one at start."""

from __future__ import annotations

from typing import Protocol

from nemorouter.state.budget_memory import Reservation
from nemorouter.types.budget import BudgetSubject


class BudgetStore(Protocol):
    async def reserve(self, subjects: list[BudgetSubject], worst_pico: int) -> Reservation | None:
        """Admit the call against every subject's budget (reserving `worst_pico`), or raise
        types.budget.BudgetRefused (a 402) or state.unavailable.Unavailable (a 503)."""
        ...

    async def settle(self, reservation: Reservation | None, actual_pico: int) -> None:
        """Replace the reserved worst case by the real cost (0 for a call that failed)."""
        ...
