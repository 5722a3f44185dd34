"""Write spend rows in order, isolating the rows the database refuses.

A batch the database refuses for its data (a value too long, a NUL, a number out of range,
a constraint) is split in halves until the refused row is alone: that row goes to the
dead-letter file (with everything in it, the error and the time) and the others are
written. A database that cannot be reached, times out or lacks the table is another
matter: no row is at fault, so nothing is dead-lettered and the caller retries later
(`StoreUnreachable.done` says how many leading rows were settled first).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from nemorouter.store.failures import describe, is_refusal
from nemorouter.store.schema import spend
from nemorouter.store.spend_insert import REQUEST_ID, SpendInsert, Values
from nemorouter.store.spend_jsonl import append_durably, encode_row

log = logging.getLogger("nemorouter.store")
Row = dict[str, Any]


class StoreUnreachable(Exception):
    """The database could not take the rows for a reason none of them is to blame for."""

    def __init__(self, done: int, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.done = done  # leading rows settled (written or dead-lettered) before it
        self.cause = cause


class DeadLetter:
    """The JSONL file of the rows the database refused: appended and fsync'd per row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.unfiled: list[Row] = []  # refused rows the file could not take (kept for the journal)

    async def file(self, row: Row, error: str) -> None:
        request_id = str(row.get("request_id"))[:200]
        document = {
            "time": datetime.now(UTC).isoformat(),
            "error": error,
            "row": encode_row(row),
        }
        try:
            await asyncio.to_thread(append_durably, self.path, [document])
        except Exception as exc:  # a full or read-only disk: the row must not be lost
            self.unfiled.append(row)
            log.error(
                "spend record %r refused by the store (%s); the dead-letter file %s cannot "
                "be written (%s): the record is kept for the shutdown journal",
                request_id, error, self.path, describe(exc),
            )  # fmt: skip
            return
        log.error(
            "spend record %r refused by the store (%s); written to the dead-letter file %s",
            request_id, error, self.path,
        )  # fmt: skip


class BatchWriter:
    """Settles rows in order: each is written, or refused and dead-lettered."""

    def __init__(self, engine: AsyncEngine, dead_letter: DeadLetter, *, dedupe: bool = False):
        self.engine = engine
        self.insert = SpendInsert(engine.dialect.name)
        self.dead_letter = dead_letter
        # Replay: a row already in the table (same request id and time) is not written again.
        self.dedupe = dedupe
        self.written = 0
        self.refused = 0
        self.already_present = 0

    async def write(self, rows: list[Row]) -> None:
        """Settle every row, in order, or raise StoreUnreachable (rows before `done` are)."""
        values = self.insert.values
        try:
            prepared: list[Values | str] = [values(row) for row in rows]
        except Exception:  # a missing column: found row by row
            prepared = [self._values_or_problem(row) for row in rows]
        await self._settle(rows, prepared, 0, len(rows), fitted=False)

    def _values_or_problem(self, row: Row) -> Values | str:
        try:
            return self.insert.values(row)
        except Exception as exc:
            return describe(exc)

    async def _settle(
        self, rows: list[Row], prepared: list[Any], low: int, high: int, *, fitted: bool
    ) -> None:
        """Rows low..high in order: each run of writable rows inserted, each problem refused."""
        index = low
        while index < high:
            if isinstance(prepared[index], str):
                await self._refuse(rows[index], prepared[index])
                index += 1
                continue
            end = index + 1
            while end < high and not isinstance(prepared[end], str):
                end += 1
            await self._insert_isolating(rows, prepared, index, end, fitted=fitted)
            index = end

    async def _insert_isolating(
        self, rows: list[Row], prepared: list[Any], low: int, high: int, *, fitted: bool
    ) -> None:
        try:
            await self._execute(rows[low:high], prepared[low:high])
            return
        except Exception as exc:
            if not is_refusal(exc):
                raise StoreUnreachable(low, exc) from exc
            refusal = describe(exc)
        if not fitted:  # first fit the rows to their columns, then try them again
            self._fit(rows, prepared, low, high)
            await self._settle(rows, prepared, low, high, fitted=True)
        elif high - low == 1:
            await self._refuse(rows[low], refusal)
        else:
            middle = (low + high) // 2
            await self._insert_isolating(rows, prepared, low, middle, fitted=True)
            await self._insert_isolating(rows, prepared, middle, high, fitted=True)

    def _fit(self, rows: list[Row], prepared: list[Any], low: int, high: int) -> None:
        count = 0
        for index in range(low, high):
            try:
                prepared[index], was_fitted = self.insert.fitted_values(rows[index])
            except Exception as exc:  # a number out of range, a value of the wrong type
                prepared[index] = describe(exc)
                continue
            count += was_fitted
        if count:
            log.warning(
                "spend writer: %d records fitted to their columns (text cut to length, "
                "NUL removed)", count,
            )  # fmt: skip

    async def _execute(self, rows: list[Row], values: list[Values]) -> None:
        present = 0
        async with self.engine.begin() as connection:
            if self.dedupe:
                fresh = await _not_yet_written(connection, rows, values)
                present = len(values) - len(fresh)
                values = fresh
            if values:
                await connection.exec_driver_sql(self.insert.sql, values)
        self.written += len(values)
        self.already_present += present

    async def _refuse(self, row: Row, error: str) -> None:
        self.refused += 1
        await self.dead_letter.file(row, error)


async def _not_yet_written(
    connection: AsyncConnection, rows: list[Row], values: list[Values]
) -> list[Values]:
    """The rows not in the table yet: a replay that was interrupted, or a batch whose
    commit was cut off at shutdown, must not write a record twice. A record is known by
    its request id and creation time (to the microsecond)."""
    request_ids = list({value[REQUEST_ID] for value in values})
    found = await connection.execute(
        select(spend.c.request_id, spend.c.created_at).where(spend.c.request_id.in_(request_ids))
    )
    present = {(request_id, created_at) for request_id, created_at in found}
    return [
        value
        for row, value in zip(rows, values, strict=True)
        if (value[REQUEST_ID], row["created_at"]) not in present
    ]
