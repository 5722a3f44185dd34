"""Single flight: concurrent callers with the same key share one execution (in-process).

The first caller (the leader) runs `fn` in its own task; callers arriving while it runs
wait for its outcome. Decisions:
- The leader's exception goes to every waiter too. The shared work is the provider call;
  if it just failed (every deployment of the chain, after retries), N immediate retries
  would be a thundering herd on a failing provider. Put only caller-independent work in
  `fn` (not auth, limits or budgets, which run before it).
- A cancelled leader (its client went away) does not cancel the waiters: the first waiter
  to resume becomes the new leader and runs `fn` itself, the others wait for it.
- Waiters are cancelled individually without touching the shared execution.
- The result is shared by reference: return something immutable (bytes, a frozen struct),
  or copy it before changing it.
Across instances, share results through the cache instead (see RedisCache).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _LeaderGone(Exception):
    """The leader was cancelled before finishing: a waiter takes over."""


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[T]] = {}

    def in_flight(self, key: str) -> bool:
        return key in self._flights

    async def run(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        result, _ = await self.run_shared(key, fn)
        return result

    async def run_shared(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """(result, shared): shared is True when another caller's execution produced it
        (for the pipeline: a waiter's answer costs nothing and counts as a cache hit)."""
        while True:
            flight = self._flights.get(key)
            if flight is None:
                return await self._lead(key, fn), False
            try:
                return await asyncio.shield(flight), True
            except _LeaderGone:
                continue  # the first waiter back here finds no flight and leads

    async def _lead(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        flight: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            result = await fn()
        except Exception as exc:
            self._finish(key, flight, exc=exc)
            raise
        except BaseException:  # cancelled (or the process is stopping): hand over
            self._finish(key, flight, exc=_LeaderGone())
            raise
        self._finish(key, flight, result=result)
        return result

    def _finish(
        self,
        key: str,
        flight: asyncio.Future[T],
        result: T | None = None,
        exc: BaseException | None = None,
    ) -> None:
        # Leave the map before waking the waiters: one that resumes must find it empty.
        if self._flights.get(key) is flight:
            del self._flights[key]
        if exc is None:
            flight.set_result(result)  # type: ignore[arg-type]
        else:
            flight.set_exception(exc)
            flight.exception()  # retrieved: no "never retrieved" warning when nobody waited
