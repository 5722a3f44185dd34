"""What a database error means for the caller: the row's fault, or the store's.

A refusal (the data: a value too long, a NUL, a number out of range, a constraint) will
fail again however often it is retried; an unreachable store (connection refused or cut,
a timeout, a server starting or shutting down) may answer later.
"""

from __future__ import annotations

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from nemorouter.store.spend_insert import RowDoesNotFit

# SQLSTATE classes: 22 data exception, 23 integrity constraint violation.
_REFUSED_STATES = ("22", "23")
# SQLSTATE classes: 08 connection exception, 53 insufficient resources (disk full, too many
# connections), 57 operator intervention (shutting down, cannot connect now), 58 system error.
_UNREACHABLE_STATES = ("08", "53", "57", "58")
# The driver could not bind the value at all (sqlite3: an int beyond 64 bits).
_BIND_ERRORS = (RowDoesNotFit, OverflowError, ValueError, TypeError)


def _sqlstate(exc: DBAPIError) -> str:
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state if isinstance(state, str) else ""


def is_refusal(exc: BaseException) -> bool:
    """Whether the database refused the rows' data (as opposed to not answering)."""
    if isinstance(exc, (DataError, IntegrityError, *_BIND_ERRORS)):
        return True
    if isinstance(exc, DBAPIError) and not exc.connection_invalidated:
        return _sqlstate(exc)[:2] in _REFUSED_STATES
    return False


_DOWN = (OSError, PoolTimeout, DisconnectionError, OperationalError, InterfaceError)
# A driver error that names the statement or the data, not the connection (a bug: a 500).
_STATEMENT = (ProgrammingError, IntegrityError, DataError, NotSupportedError)


def is_unreachable(exc: BaseException) -> bool:
    """Whether the database could not be reached or did not answer in time: connection
    refused, lost or timed out (OSError covers TimeoutError), a pool exhausted past its
    timeout, a server starting up or shutting down (asyncpg reports some of these as plain
    DBAPI errors without a connection SQLSTATE)."""
    if isinstance(exc, _DOWN):
        return True
    if isinstance(exc, DBAPIError):
        state = _sqlstate(exc)[:2]
        if exc.connection_invalidated or state in _UNREACHABLE_STATES:
            return True
        return not isinstance(exc, _STATEMENT) and state not in _REFUSED_STATES
    return False


def describe(exc: BaseException) -> str:
    # The engine hides bound parameters, so the message names the failure, not the data.
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
