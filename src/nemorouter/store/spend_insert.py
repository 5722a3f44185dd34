"""The spend log's bulk INSERT, as driver SQL with positional rows, and the row fitting.

SQLAlchemy's executemany spends ~28 µs of CPU per row on parameter processing; the driver
path costs ~16 µs on SQLite (most of it SQLite's own index work) and ~6 µs on PostgreSQL
(measured with 20,000 rows in batches of 500). Rows arrive as dicts keyed by column.

When the database refuses a batch, its rows are fitted to their columns where that loses
nothing that matters: text is cut to the column's length and NUL characters (PostgreSQL
refuses them) are removed. A number out of its column's range is never clamped (a wrong
cost is worse than a missing one): the row is refused with `RowDoesNotFit` and goes to
the dead letter. Rows the database takes as they are pay nothing for the fitting.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, SmallInteger, String

from nemorouter.store.schema import spend

COLUMNS = tuple(column.name for column in spend.columns if column.name != "id")
REQUEST_ID = COLUMNS.index("request_id")
_CREATED_AT = COLUMNS.index("created_at")
_DAY = COLUMNS.index("day")
_INT64 = (-(2**63), 2**63 - 1)
# PostgreSQL's integer widths; SQLite's INTEGER holds 64 bits whatever the declared type.
_POSTGRES_RANGES = {SmallInteger: (-(2**15), 2**15 - 1), Integer: (-(2**31), 2**31 - 1)}

Values = tuple[Any, ...]


class RowDoesNotFit(ValueError):
    """A value the column cannot hold and that must not be changed to fit (a number)."""


def _string_limits() -> list[tuple[int, int]]:
    limits = []
    for index, name in enumerate(COLUMNS):
        kind = spend.c[name].type
        if isinstance(kind, String):  # Text is a String without a length
            limits.append((index, kind.length or sys.maxsize))
    return limits


def _integer_ranges(dialect: str) -> list[tuple[int, int, int]]:
    ranges = []
    for index, name in enumerate(COLUMNS):
        kind = spend.c[name].type
        if not isinstance(kind, Integer):
            continue
        low, high = _INT64
        if dialect != "sqlite" and not isinstance(kind, BigInteger):
            low, high = _POSTGRES_RANGES[
                SmallInteger if isinstance(kind, SmallInteger) else Integer
            ]
        ranges.append((index, low, high))
    return ranges


class SpendInsert:
    """The INSERT statement in the driver's parameter style, and the row converter."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        names = ", ".join(COLUMNS)
        if self.sqlite:
            placeholders = ", ".join("?" * len(COLUMNS))
        else:
            placeholders = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))
        self.sql = f"INSERT INTO spend ({names}) VALUES ({placeholders})"
        self._strings = _string_limits()
        self._integers = _integer_ranges(dialect)

    def values(self, row: dict[str, Any]) -> Values:
        """The row as the driver's positional values (KeyError: a column is missing)."""
        values = [row[c] for c in COLUMNS]
        if self.sqlite:  # the text formats SQLAlchemy's SQLite DateTime/Date types read back
            created, day = values[_CREATED_AT], values[_DAY]
            if isinstance(created, datetime):
                values[_CREATED_AT] = created.isoformat(" ", "microseconds")
            if isinstance(day, date):
                values[_DAY] = day.isoformat()
        return tuple(values)

    def fitted_values(self, row: dict[str, Any]) -> tuple[Values, bool]:
        """The values fitted to their columns, and whether text had to be. Raises
        RowDoesNotFit: a number out of its column's range (never clamped)."""
        values = list(self.values(row))
        fitted = False
        for index, length in self._strings:
            value = values[index]
            if value.__class__ is str and (len(value) > length or "\x00" in value):
                values[index] = value.replace("\x00", "")[:length]
                fitted = True
        for index, low, high in self._integers:
            value = values[index]
            if value is not None and not low <= value <= high:
                name = COLUMNS[index]
                raise RowDoesNotFit(f"{name}={value} does not fit the column ({low} to {high})")
        return tuple(values), fitted
