"""Which database errors mean "the store cannot be reached now" (a 503, retry later), as
opposed to "this statement is wrong" (a bug: a 500 and its traceback)."""

from __future__ import annotations

from sqlalchemy import exc as sa

_DOWN = (OSError, TimeoutError, sa.TimeoutError, sa.DisconnectionError)
# A driver error that names the statement or the data, not the connection.
_STATEMENT = (sa.ProgrammingError, sa.IntegrityError, sa.DataError, sa.NotSupportedError)


def unreachable(exc: BaseException) -> bool:
    """Connection refused, lost or timed out, a pool exhausted past its timeout, a server
    starting up or shutting down (asyncpg reports these as plain DBAPI errors)."""
    if isinstance(exc, _DOWN):
        return True
    return isinstance(exc, sa.DBAPIError) and not isinstance(exc, _STATEMENT)
