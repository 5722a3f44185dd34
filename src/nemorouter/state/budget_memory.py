"""Budgets kept in this process (no redis_url): reserve a call's worst case before it,
settle to its real cost after it (see core/budget.py for the rule and its bound).

Spent amounts per period are loaded from the spend log the first time a key or team is seen
(per process and period), then kept in memory and updated as calls settle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from nemorouter.types.budget import (
    BudgetRefused,
    BudgetSubject,
    LoadSpent,
    period_start,
    utcnow,
)


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


class MemoryBudgets:
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
                raise BudgetRefused(subject, ledger.spent, ledger.reserved, worst_pico)
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
