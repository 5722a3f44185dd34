"""The shutdown journal: what a closing writer cannot write is spilled to a local file and
replayed at the next start, each record exactly once (issue 16, item 2)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.schema import spend
from nemorouter.store.spend_batch import BatchWriter, DeadLetter
from nemorouter.store.spend_journal import journals, replay, spill
from nemorouter.store.spend_jsonl import decode_row, dumps, encode_row
from nemorouter.store.writer import SpendWriter

from .rows import spend_row
from .test_writer import count_rows

DATABASE = "test-store"


def test_rows_survive_the_json_round_trip() -> None:
    row = spend_row(
        created_at=datetime(2026, 11, 20, 23, 59, 59, 999_999),
        cost_pico=10**25,
        latency_ms=0.1 + 0.2,
        metadata='{"a": "x\u0000y\\n"}',
        model="a\u0000b",
    )
    row["extra_decimal"] = Decimal("0.000000000001")
    line = dumps({"row": encode_row(row)})
    assert "\n" not in line
    back = decode_row(json.loads(line)["row"])
    assert back == row
    assert type(back["created_at"]) is datetime and type(back["day"]) is date
    assert back["created_at"].microsecond == 999_999
    assert type(back["extra_decimal"]) is Decimal


async def _ids_and_counts(engine: AsyncEngine) -> dict[str, int]:
    query = select(spend.c.request_id, func.count()).group_by(spend.c.request_id)
    async with engine.connect() as connection:
        return dict((await connection.execute(query)).all())  # type: ignore[arg-type]


async def test_close_spills_what_it_cannot_write_and_start_replays_it(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal_dir = tmp_path / "journal"
    writer = SpendWriter(
        engine, interval_s=0.01, journal_dir=journal_dir, database=DATABASE,
        dead_letter_path=tmp_path / "dead.jsonl",
    )  # fmt: skip
    writer.start()
    rows = [spend_row() for _ in range(300)]
    for row in rows[:100]:
        await writer.add(row)
    await writer.flush()
    async with engine.begin() as connection:  # the store goes away: every write fails
        await connection.execute(text("ALTER TABLE spend RENAME TO spend_away"))
    for row in rows[100:]:
        await writer.add(row)
    with pytest.raises(TimeoutError):
        await writer.flush(0.3)  # bounded: a flush that cannot finish says so
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="nemorouter.store"):
        await writer.close(timeout_s=1.0)
    assert time.monotonic() - started < 5, "close must keep to its bound"
    assert any("200 spend records" in r.getMessage() for r in caplog.records)
    [journal] = journals(journal_dir)
    assert journal.stat().st_mode & 0o777 == 0o600
    assert len(journal.read_text().splitlines()) == 201  # header and the rows

    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE spend_away RENAME TO spend"))
    dead = DeadLetter(tmp_path / "dead.jsonl")
    assert await replay(engine, journal_dir, DATABASE, dead) == 200
    assert journals(journal_dir) == []
    counts = await _ids_and_counts(engine)
    assert counts == {row["request_id"]: 1 for row in rows}
    async with engine.connect() as connection:
        stored = (await connection.execute(select(spend).where(
            spend.c.request_id == rows[150]["request_id"]))).mappings().one()  # fmt: skip
    assert {k: stored[k] for k in rows[150]} == rows[150]


async def test_an_interrupted_replay_writes_no_record_twice(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    rows = [spend_row(created_at=datetime(2026, 11, 20, 12, 0, 0, i)) for i in range(1200)]
    rows.append(spend_row(request_id=rows[5]["request_id"]))  # same id, another record
    spill(tmp_path, DATABASE, rows)
    # Part of it was written before the crash (an interrupted replay, or the batch whose
    # commit was cut off at shutdown).
    dead = DeadLetter(tmp_path / "dead.jsonl")
    await BatchWriter(engine, dead).write(rows[:500])
    await BatchWriter(engine, dead).write(rows[700:800])
    assert await replay(engine, tmp_path, DATABASE, dead) == 1201 - 600
    assert await count_rows(engine) == 1201
    counts = await _ids_and_counts(engine)
    assert counts[rows[5]["request_id"]] == 2
    assert sum(counts.values()) == 1201


async def test_a_journal_of_another_store_is_left_alone(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    spill(tmp_path, "sqlite:/elsewhere.db", [spend_row()])
    assert await replay(engine, tmp_path, DATABASE, DeadLetter(tmp_path / "dead")) == 0
    assert len(journals(tmp_path)) == 1
    assert await count_rows(engine) == 0


async def test_replay_dead_letters_what_the_store_refuses(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    rows = [spend_row(), spend_row(model_requested=None), spend_row()]
    path = spill(tmp_path, DATABASE, rows)
    with path.open("a") as journal:
        journal.write('{"row": {"request_id": "cut-sh')  # a line cut short by a crash
    dead_path = tmp_path / "dead.jsonl"
    assert await replay(engine, tmp_path, DATABASE, DeadLetter(dead_path)) == 2
    assert len(dead_path.read_text().splitlines()) == 2
    assert journals(tmp_path) == []


async def test_concurrent_replays_write_each_record_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    for _ in range(3):
        spill(tmp_path, DATABASE, [spend_row() for _ in range(400)])
    dead = DeadLetter(tmp_path / "dead.jsonl")
    await asyncio.gather(*(replay(engine, tmp_path, DATABASE, dead) for _ in range(3)))
    assert await count_rows(engine) == 1200
    assert journals(tmp_path) == []


async def test_a_journal_that_cannot_be_written_is_logged_with_the_count(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    writer = SpendWriter(engine, interval_s=0.01, journal_dir=not_a_folder, database=DATABASE)
    writer.start()
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE spend RENAME TO spend_away"))
    for _ in range(7):
        await writer.add(spend_row())
    with caplog.at_level(logging.ERROR, logger="nemorouter.store"):
        await writer.close(timeout_s=0.5)
    assert any("7 spend records LOST" in r.getMessage() for r in caplog.records)


def test_rows_of_journals_older_than_the_pages_column_replay_with_zero_pages() -> None:
    """A journal spilled before migration 0003 has no `pages`: it replays as 0 pages."""
    row = spend_row()
    del row["pages"]
    back = decode_row(json.loads(dumps({"row": encode_row(row)}))["row"])
    assert back["pages"] == 0
