"""The batched spend writer: the request path hands a row over and moves on.

Rows wait in memory until `max_rows` have gathered or `interval_s` has passed since the
first of them, then go to the database in one multi-row INSERT. When the database is slow
or down, rows keep waiting (retried with backoff) and, past `capacity`, callers wait too:
backpressure, never a silently dropped record. `close` (graceful shutdown, SIGTERM) writes
everything still waiting. A hard crash (kill -9, power loss) loses what is still in memory:
about `interval_s` of traffic plus the batch being written (bench/crash measures it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.spend_insert import insert_for

log = logging.getLogger("nemorouter.store")
MAX_BACKOFF_S = 5.0
UNHEALTHY_AFTER_S = 5.0


class SpendWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_rows: int = 500,
        interval_s: float = 0.1,
        capacity: int = 50_000,
    ) -> None:
        self.engine = engine
        self._sql, self._convert = insert_for(engine.dialect.name)
        self.max_rows = max_rows
        self.interval_s = interval_s
        self.capacity = capacity
        self._pending: list[dict[str, Any]] = []
        self._added = 0  # rows handed over, ever
        self._written = 0  # rows committed, ever (rows are written in the order added)
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._flush_now = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.failures = 0  # failed write attempts (each retried)
        self._failing_since: float | None = None  # monotonic time of the first failure in a row

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def written(self) -> int:
        return self._written

    @property
    def healthy(self) -> bool:
        """False once writes have kept failing for UNHEALTHY_AFTER_S (readiness reports it)."""
        failing_since = self._failing_since
        return failing_since is None or time.monotonic() - failing_since < UNHEALTHY_AFTER_S

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="spend-writer")

    async def add(self, row: dict[str, Any]) -> None:
        if len(self._pending) >= self.capacity:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self._pending) < self.capacity)
        self.add_nowait(row)

    def add_nowait(self, row: dict[str, Any]) -> None:
        """Hand a row over without waiting for room (a cancelled request cannot wait)."""
        self._pending.append(row)
        self._added += 1
        if len(self._pending) == 1 or len(self._pending) >= self.max_rows:
            self._wake.set()

    async def flush(self) -> None:
        """Return once every row added before the call is committed."""
        target = self._added
        if self._written >= target:
            return
        self._flush_now = True
        self._wake.set()
        async with self._changed:
            await self._changed.wait_for(lambda: self._written >= target)

    async def close(self, timeout_s: float = 30.0) -> None:
        """Write everything still waiting, then stop."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            self._task.cancel()
            log.error(
                "spend writer: %d spend records could not be written before shutdown",
                len(self._pending),
            )
        self._task = None

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._pending) < self.max_rows and not (self._flush_now or self._closing):
                # Gather more rows for one batch, at most interval_s after the first.
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval_s)
            self._flush_now = False
            batch = self._pending[: self.max_rows]
            try:
                async with self.engine.begin() as connection:
                    await connection.exec_driver_sql(self._sql, self._convert(batch))
            except Exception as exc:
                self.failures += 1
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                log.error(
                    "spend writer: write of %d rows failed (%s); %d rows waiting, retrying in %.1fs",
                    len(batch), _first_line(exc), len(self._pending), backoff,
                )  # fmt: skip
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff = 0.1
            self._failing_since = None
            del self._pending[: len(batch)]
            self._written += len(batch)
            async with self._changed:
                self._changed.notify_all()


def _first_line(exc: Exception) -> str:
    # The engine hides bound parameters, so the message names the failure, not the data.
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
