"""A row the database refuses never stops the spend writer: it is isolated, dead-lettered
with everything in it, and every other row is written (issue 16, item 1)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.schema import spend
from nemorouter.store.spend_jsonl import decode_row
from nemorouter.store.writer import SpendWriter

from .rows import spend_row
from .test_writer import count_rows


def dead_letters(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def request_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(spend.c.request_id))).scalars())


async def test_a_refused_row_is_dead_lettered_and_the_rest_written(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead_path = tmp_path / "dead.jsonl"
    writer = SpendWriter(engine, max_rows=500, interval_s=0.01, dead_letter_path=dead_path)
    writer.start()
    rows = [spend_row() for _ in range(40)]
    # The database refuses it (NOT NULL): found by splitting the batch.
    rows[7] = spend_row(model_requested=None, request_id="req-not-null")
    # A cost beyond 64 bits (10^13 prompt tokens at a real price): never clamped.
    rows[23] = spend_row(cost_pico=10**25, prompt_tokens=10**13, request_id="req-overflow")
    with caplog.at_level(logging.ERROR, logger="nemorouter.store"):
        for row in rows:
            await writer.add(row)
        await asyncio.wait_for(writer.flush(), 10)
    assert await count_rows(engine) == 38
    assert writer.refused == 2 and writer.healthy
    letters = dead_letters(dead_path)
    assert [letter["row"]["request_id"] for letter in letters] == ["req-not-null", "req-overflow"]
    overflow = decode_row(letters[1]["row"])
    assert overflow == rows[23], "the dead letter holds the whole row, values as they were"
    assert "does not fit" in letters[1]["error"] and "model_requested" in letters[0]["error"]
    assert all(letter["time"] for letter in letters)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("req-not-null" in line and "dead-letter" in line for line in logged)
    assert any("req-overflow" in line for line in logged)
    # The writer goes on writing.
    for _ in range(5):
        await writer.add(spend_row())
    await asyncio.wait_for(writer.flush(), 10)
    assert await count_rows(engine) == 43
    await writer.close()


async def test_text_is_fitted_to_its_column(engine: AsyncEngine, tmp_path: Path) -> None:
    """PostgreSQL refuses a 101-char request id and a NUL in text: such a row is fitted
    (cut to length, NUL removed) and written, not refused. SQLite takes them as they are."""
    writer = SpendWriter(engine, interval_s=0.01, dead_letter_path=tmp_path / "dead.jsonl")
    writer.start()
    long_id = "r" * 128
    await writer.add(spend_row(request_id=long_id, model="gemini\u0000-flash"))
    await writer.add(spend_row(request_id="after", metadata='{"a": "x\u0000y"}'))
    await asyncio.wait_for(writer.flush(), 10)
    async with engine.connect() as connection:
        found = (await connection.execute(select(spend.c.request_id, spend.c.model))).all()
    if engine.dialect.name == "sqlite":
        expected = [(long_id, "gemini\u0000-flash"), ("after", "gemini-2.5-flash")]
    else:
        expected = [("r" * 100, "gemini-flash"), ("after", "gemini-2.5-flash")]
    assert sorted(found) == sorted(expected)
    assert writer.refused == 0
    await writer.close()


async def test_many_refused_rows_in_one_batch(engine: AsyncEngine, tmp_path: Path) -> None:
    writer = SpendWriter(engine, max_rows=200, interval_s=0.01, dead_letter_path=tmp_path / "d")
    writer.start()
    bad = {3, 4, 50, 120, 199}
    for index in range(200):
        await writer.add(spend_row(model_requested=None) if index in bad else spend_row())
    await asyncio.wait_for(writer.flush(), 20)
    assert await count_rows(engine) == 195
    assert len(dead_letters(tmp_path / "d")) == 5
    await writer.close()


async def test_a_row_missing_a_column_is_dead_lettered(engine: AsyncEngine, tmp_path: Path) -> None:
    writer = SpendWriter(engine, interval_s=0.01, dead_letter_path=tmp_path / "dead.jsonl")
    writer.start()
    broken = spend_row(request_id="no-latency")
    del broken["latency_ms"]
    for row in (spend_row(), broken, spend_row()):
        await writer.add(row)
    await asyncio.wait_for(writer.flush(), 10)
    assert await count_rows(engine) == 2
    [letter] = dead_letters(tmp_path / "dead.jsonl")
    assert letter["row"]["request_id"] == "no-latency" and "KeyError" in letter["error"]
    await writer.close()
