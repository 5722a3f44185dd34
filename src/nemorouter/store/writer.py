"""The batched spend writer: the request path hands a row over and moves on.

Rows wait in memory until `max_rows` have gathered or `interval_s` has passed since the
first of them, then go to the database in one multi-row INSERT. When the database is slow
or down, rows keep waiting (retried with backoff) and, past `capacity`, callers wait too:
backpressure, never a silently dropped record. A row the database refuses (its data, not
the connection) is isolated and goes to the dead-letter file; the others are written
(spend_batch). `close` (graceful shutdown, SIGTERM) writes everything still waiting within
its bound and spills the rest to a journal replayed at the next start (spend_journal). A
hard crash (kill -9, power loss) loses what is still in memory: about `interval_s` of
traffic plus the batch being written (bench/crash measures it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.failures import describe
from nemorouter.store.spend_batch import BatchWriter, DeadLetter, StoreUnreachable
from nemorouter.store.spend_journal import spill

log = logging.getLogger("nemorouter.store")
MAX_BACKOFF_S = 5.0
UNHEALTHY_AFTER_S = 5.0
CLOSE_TIMEOUT_S = 10.0
_CANCEL_WAIT_S = 2.0  # for the write task to stop once cancelled


class SpendWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_rows: int = 500,
        interval_s: float = 0.1,
        capacity: int = 50_000,
        dead_letter_path: Path | None = None,
        journal_dir: Path | None = None,
        database: str = "",
    ) -> None:
        self.engine = engine
        self.dead_letter = DeadLetter(dead_letter_path or Path("nemorouter-spend-deadletter.jsonl"))
        self._batches = BatchWriter(engine, self.dead_letter)
        self.journal_dir = journal_dir or Path(".")
        self.database = database  # names the store in the journal (replayed only into it)
        self.max_rows = max_rows
        self.interval_s = interval_s
        self.capacity = capacity
        self._pending: list[dict[str, Any]] = []
        self._added = 0  # rows handed over, ever
        self._settled = 0  # rows written or dead-lettered, ever (in the order added)
        self._changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._flush_now = False
        self._closing = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self.failures = 0  # failed write attempts (each retried)
        self._failing_since: float | None = None  # monotonic time of the first failure in a row

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def written(self) -> int:
        return self._batches.written

    @property
    def refused(self) -> int:
        """Rows the database refused (each in the dead-letter file)."""
        return self._batches.refused

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
        if self._closed:  # nothing writes it any more: never lost without a word
            log.error("spend writer: record %r added after shutdown, not written",
                      str(row.get("request_id"))[:200])  # fmt: skip
            return
        self._pending.append(row)
        self._added += 1
        if len(self._pending) == 1 or len(self._pending) >= self.max_rows:
            self._wake.set()

    async def flush(self, timeout_s: float | None = None) -> None:
        """Return once every row added before the call is settled (written, or refused
        and dead-lettered). Raises TimeoutError after `timeout_s` (the store is down)."""
        target = self._added
        if self._settled >= target:
            return
        self._flush_now = True
        self._wake.set()
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: self._settled >= target)

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Write what waits within `timeout_s`, spill the rest to the journal, then stop."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._closing = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, _CANCEL_WAIT_S)
        except Exception:  # the write task failed: what waits is still spilled
            log.exception("spend writer: the write task failed")
        await self._spill(timeout_s)
        self._closed = True

    async def _spill(self, timeout_s: float) -> None:
        """Whatever is still waiting (or refused and not filed) goes to the journal."""
        rows = self._pending + self.dead_letter.unfiled
        if not rows:
            return
        try:
            path = await asyncio.to_thread(spill, self.journal_dir, self.database, rows)
        except Exception as exc:  # a full disk, a read-only folder
            log.error(
                "spend writer: %d spend records LOST at shutdown: not written within %.0fs "
                "and the journal folder %s cannot be written (%s)",
                len(rows), timeout_s, self.journal_dir, exc,
            )  # fmt: skip
            return
        log.error(
            "spend writer: %d spend records not written within %.0fs; saved to the journal %s "
            "(written to the store at the next start)",
            len(rows), timeout_s, path,
        )  # fmt: skip
        self._pending = []
        self.dead_letter.unfiled = []

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
                await self._batches.write(batch)
                settled = len(batch)
            except Exception as exc:  # StoreUnreachable; anything else is a bug, retried too
                unreachable = isinstance(exc, StoreUnreachable)
                settled = exc.done if isinstance(exc, StoreUnreachable) else 0
                self.failures += 1
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                log.error(
                    "spend writer: write of %d rows failed (%s); %d rows waiting, retrying in %.1fs",
                    len(batch) - settled, str(exc) if unreachable else describe(exc),
                    len(self._pending) - settled, backoff, exc_info=not unreachable,
                )  # fmt: skip
            else:
                backoff = 0.1
                self._failing_since = None
            if settled:
                del self._pending[:settled]
                self._settled += settled
                async with self._changed:
                    self._changed.notify_all()
            if settled < len(batch):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
