"""The shutdown journal: spend records a closing writer could not get into the database.

At shutdown, whatever the writer could not write within its bound (store down, disk full
on the database side) is written to a JSONL file of its own (one per process, never
shared), fsync'd, then renamed into place, so a journal file is always complete. At the
next start, after the migrations, every journal of this database in the folder is
replayed and removed. A replay writes with `dedupe` (a record is known by its request id
and time): one cut short by a crash, or a batch whose commit was cut off at shutdown,
never writes a record twice. Processes replaying at the same time lock each file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.spend_batch import BatchWriter, DeadLetter
from nemorouter.store.spend_jsonl import decode_row, dumps, encode_row, fsync_directory

log = logging.getLogger("nemorouter.store")
JOURNAL_PREFIX = "nemorouter-spend-journal-"
REPLAY_BATCH_ROWS = 500
Row = dict[str, Any]


def spill(directory: Path, database: str, rows: list[Row]) -> Path:
    """Write rows to a new journal file durably; raises OSError when that is impossible."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{JOURNAL_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
    final = directory / name
    partial = directory / f".{name}.partial"  # not matched by a replay until it is whole
    header = {
        "journal": 1,
        "database": database,
        "pid": os.getpid(),
        "time": datetime.now(UTC).isoformat(),
        "records": len(rows),
    }
    lines = [dumps(header), *(dumps({"row": encode_row(row)}) for row in rows)]
    data = ("\n".join(lines) + "\n").encode()
    handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        written = 0
        while written < len(data):
            written += os.write(handle, data[written:])
        os.fsync(handle)
    finally:
        os.close(handle)
    os.rename(partial, final)
    fsync_directory(directory)
    return final


def journals(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"{JOURNAL_PREFIX}*.jsonl"))


async def replay(
    engine: AsyncEngine, directory: Path, database: str, dead_letter: DeadLetter
) -> int:
    """Write every journal of this database into it and remove the file; the number of
    records written. Raises (StoreUnreachable) when the database goes away meanwhile:
    the journal stays for the next start."""
    written = 0
    for path in journals(directory):
        written += await _replay_one(engine, path, database, dead_letter)
    return written


async def _replay_one(engine: AsyncEngine, path: Path, database: str, dead: DeadLetter) -> int:
    try:
        handle = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # another process replayed it meanwhile
        return 0
    except OSError as exc:  # unreadable: the gateway still starts, the file stays
        log.error("spend journal %s cannot be read (%s): not replayed", path, exc)
        return 0
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("spend journal %s: another process is replaying it", path)
            return 0
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(handle).st_ino:
                return await _replay_locked(engine, path, handle, database, dead)
        return 0  # removed by the process that held the lock before us
    finally:
        os.close(handle)


async def _replay_locked(
    engine: AsyncEngine, path: Path, handle: int, database: str, dead: DeadLetter
) -> int:
    with os.fdopen(os.dup(handle), encoding="utf-8") as source:
        lines = source.read().splitlines()
    header = _header(lines[0]) if lines else {}
    if lines and header.get("database") != database:
        log.warning(
            "spend journal %s belongs to the store %s, not this one: left in place",
            path, header.get("database"),
        )  # fmt: skip
        return 0
    rows: list[Row] = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            rows.append(decode_row(json.loads(line)["row"]))
        except (ValueError, KeyError, TypeError) as exc:  # e.g. a line cut short by a crash
            await dead.file(
                {"request_id": None, "journal_line": line},
                f"unreadable line {number} of {path.name}: {type(exc).__name__}",
            )
    writer = BatchWriter(engine, dead, dedupe=True)
    for start in range(0, len(rows), REPLAY_BATCH_ROWS):
        await writer.write(rows[start : start + REPLAY_BATCH_ROWS])
    os.unlink(path)
    fsync_directory(path.parent)
    log.warning(
        "spend journal %s replayed: %d records written, %d were already in the store, "
        "%d refused (dead-letter file)",
        path, writer.written, writer.already_present, writer.refused,
    )  # fmt: skip
    return writer.written


def _header(line: str) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except ValueError:
        return {}
    return header if isinstance(header, dict) and "journal" in header else {}
