"""Spend rows as JSON lines, for the shutdown journal and the dead-letter file.

JSON has no datetime, date or Decimal: those values become one-key objects
({"$datetime": "2026-11-20T12:00:00.000001"}, {"$date": …}, {"$decimal": "0.1"}) that
`decode_row` turns back into the same values, so a replayed row is the row that was spilled.
Integers of any size and floats survive JSON as they are.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):  # before date: a datetime is a date
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return {"$repr": repr(value)}  # not a spend value: kept readable, not restorable


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        tag, text = next(iter(value.items()))
        if tag == "$datetime":
            return datetime.fromisoformat(text)
        if tag == "$date":
            return date.fromisoformat(text)
        if tag == "$decimal":
            return Decimal(text)
    return value


def encode_row(row: dict[str, Any]) -> dict[str, Any]:
    return {name: _encode_value(value) for name, value in row.items()}


# Columns added after journals may have been written, with the value an older row stands for.
ADDED_COLUMNS = {"pages": 0, "deferred": False}  # 0003_spend_pages, 0004_deferred


def decode_row(encoded: dict[str, Any]) -> dict[str, Any]:
    return {**ADDED_COLUMNS, **{name: _decode_value(value) for name, value in encoded.items()}}


def dumps(document: dict[str, Any]) -> str:
    # ensure_ascii: NUL and other control characters are escaped, one record per line.
    return json.dumps(document, ensure_ascii=True, separators=(",", ":"), allow_nan=True)


def append_durably(path: Path, documents: Iterable[dict[str, Any]]) -> None:
    """Append JSON lines and fsync them before returning (raises OSError when it cannot).
    Several processes may append to one file: the lock keeps their lines whole."""
    data = "".join(dumps(document) + "\n" for document in documents).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        written = 0
        while written < len(data):
            written += os.write(handle, data[written:])
        os.fsync(handle)
    finally:
        os.close(handle)  # closing releases the lock
    if created:
        fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a new file's directory entry durable (the file's own fsync does not)."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
