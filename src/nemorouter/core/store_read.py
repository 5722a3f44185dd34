"""Reads of the spend log that a request or an admin call waits for, bounded.

Such a read first waits for this instance's waiting records (read-your-writes: what it
answered is in the numbers), then queries. Neither may hang: a writer that cannot write
(store down), a query that does not answer in time or a store that cannot be reached
becomes a 503 service_unavailable with retry-after. A budget's spend-so-far is one such
read, so budgets fail closed: no answer rather than an unchecked spend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from nemorouter.store.failures import is_unreachable
from nemorouter.store.writer import SpendWriter
from nemorouter.types.errors import service_unavailable

FLUSH_WAIT_S = 2.0
QUERY_WAIT_S = 10.0
RETRY_AFTER_S = 5
WHAT = "The spend store"
T = TypeVar("T")


async def flushed(writer: SpendWriter, wait_s: float = FLUSH_WAIT_S) -> None:
    """This instance's waiting records written, or a 503 after `wait_s` (at once when the
    writer has been failing for a while: waiting would only delay the same answer)."""
    if writer.pending and not writer.healthy:
        raise service_unavailable(WHAT, RETRY_AFTER_S)
    try:
        await writer.flush(wait_s)
    except TimeoutError:
        raise service_unavailable(WHAT, RETRY_AFTER_S) from None


async def bounded_query(query: Awaitable[T], wait_s: float = QUERY_WAIT_S) -> T:
    """The query's answer, or a 503 when the store does not answer (in `wait_s`)."""
    try:
        async with asyncio.timeout(wait_s):
            return await query
    except Exception as exc:
        if is_unreachable(exc):  # a timeout is one too
            raise service_unavailable(WHAT, RETRY_AFTER_S) from None
        raise
