"""Failed dashboard sign-ins slow down, per client address.

Without it, the sign-in form answers about 1,800 guesses of the master key a second. A few
mistakes are free; after FREE_FAILURES each further failure doubles the wait before the
next attempt from that address is even looked at (429 with retry-after), up to MAX_WAIT_S.
A success clears the address. The table is bounded (oldest entries go first) and forgets
an address QUIET_S after its last failure. It is per process: with several workers or
instances an address gets this allowance from each (still seconds per guess, not 1,800).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from nemorouter.types.errors import GatewayError

FREE_FAILURES = 5
FIRST_WAIT_S = 1.0
MAX_WAIT_S = 300.0
QUIET_S = 900.0
MAX_ADDRESSES = 10_000


class _Failures:
    __slots__ = ("count", "last", "until")

    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0
        self.until = 0.0  # no attempt is looked at before this time


class LoginThrottle:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_addresses: int = MAX_ADDRESSES
    ) -> None:
        self._clock = clock
        self._max = max_addresses
        self._table: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def check(self, address: str) -> None:
        """Raise 429 (with retry-after) while `address` must wait."""
        entry = self._table.get(address)
        if entry is None:
            return
        now = self._clock()
        if now - entry.last > QUIET_S:
            del self._table[address]
            return
        if now < entry.until:
            wait = math.ceil(entry.until - now)
            raise GatewayError(
                429,
                "too_many_sign_in_attempts",
                f"Too many failed sign-ins from this address; try again in {wait} s.",
                headers={"retry-after": str(wait)},
            )

    def failed(self, address: str) -> None:
        now = self._clock()
        entry = self._table.pop(address, None) or _Failures()
        self._table[address] = entry  # most recent last
        entry.count += 1
        entry.last = now
        beyond = entry.count - FREE_FAILURES
        if beyond > 0:
            entry.until = now + min(FIRST_WAIT_S * 2 ** min(beyond - 1, 32), MAX_WAIT_S)
        while len(self._table) > self._max:
            self._table.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._table.pop(address, None)
