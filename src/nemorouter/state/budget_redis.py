"""Budgets shared through Redis: N gateway instances reserve against one budget.

Per budget and period, Redis holds the spent amount (picodollars; initialised from the spend
log by whichever instance first needs it) and the open reservations (a hash of id → worst
case, with a sorted set of expiry times, so an instance that dies mid-call leaks nothing
past `reservation_ttl_s`). Reserve and settle are each one atomic script.

Redis unreachable: reserve fails closed (`Unavailable`, a 503: an uncounted call could spend
past the budget on every instance at once); settle logs and goes on (the answer is paid
for and delivered; its reservation lapses after `reservation_ttl_s`, and the running total
that missed its cost is dropped once Redis answers again, so it is re-read from the log).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime

from redis.asyncio import Redis

from nemorouter.state.budget_memory import Reservation
from nemorouter.state.lua_script import LuaScript
from nemorouter.state.unavailable import REDIS_DOWN, OutageLog, Unavailable
from nemorouter.types.budget import BudgetRefused, BudgetSubject, LoadSpent, period_start, utcnow

log = logging.getLogger("nemorouter.budget")
_outages = OutageLog(log)
BUDGETS = "Redis (budgets)"

SPENT_TTL_MS = 40 * 86_400_000  # past any period; re-read from the spend log if it lapses

# KEYS: per subject (spent, reservation expiries, reservation amounts)
# ARGV: now_ms, id, worst, expiry_ms, then one limit per subject
# -> {0} admitted; {1, i, spent, reserved} refused by subject i (for the 402's numbers;
# reserved as a digit string, never a float's exponent form); {2, i} subject i's spent is unknown
_RESERVE = LuaScript(
    """
local now, id, worst, expiry = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 3
for i = 1, n do
  local spent_key, exp_key, amt_key = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local spent = redis.call('GET', spent_key)
  if not spent then return {2, i} end
  local stale = redis.call('ZRANGEBYSCORE', exp_key, '-inf', now)
  if #stale > 0 then
    redis.call('HDEL', amt_key, unpack(stale))
    redis.call('ZREMRANGEBYSCORE', exp_key, '-inf', now)
  end
  local reserved = 0
  for _, amount in ipairs(redis.call('HVALS', amt_key)) do reserved = reserved + tonumber(amount) end
  if tonumber(spent) + reserved >= tonumber(ARGV[4 + i]) then
    return {1, i, spent, string.format('%.0f', reserved)}
  end
end
for i = 1, n do
  redis.call('ZADD', KEYS[3*i-1], expiry, id)
  redis.call('HSET', KEYS[3*i], id, worst)
  redis.call('PEXPIREAT', KEYS[3*i-1], expiry + 1000)
  redis.call('PEXPIREAT', KEYS[3*i], expiry + 1000)
end
return {0}
"""
)

# KEYS: per subject (spent, expiries, amounts); ARGV: id, actual, spent ttl ms
_SETTLE = LuaScript(
    """
for i = 1, #KEYS / 3 do
  redis.call('ZREM', KEYS[3*i-1], ARGV[1])
  redis.call('HDEL', KEYS[3*i], ARGV[1])
  if redis.call('EXISTS', KEYS[3*i-2]) == 1 then
    redis.call('INCRBY', KEYS[3*i-2], ARGV[2])
    redis.call('PEXPIRE', KEYS[3*i-2], ARGV[3])
  end
end
return 0
"""
)


class RedisReservation(Reservation):
    __slots__ = ("id", "keys")

    def __init__(self, keys: list[str], reservation_id: str, pico: int) -> None:
        super().__init__([], pico)
        self.keys = keys
        self.id = reservation_id


class RedisBudgets:
    def __init__(
        self,
        client: Redis,
        load_spent: LoadSpent,
        prefix: str = "nemo:budget:",
        reservation_ttl_s: float = 900.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._client = client
        self._load_spent = load_spent
        self._prefix = prefix
        self._ttl_ms = int(reservation_ttl_s * 1000)
        self._clock = clock
        # Running totals a failed settle could not update: dropped when Redis is back.
        self._missed: set[str] = set()

    def _keys(self, subject: BudgetSubject, since: datetime | None) -> list[str]:
        period = since.strftime("%Y%m%d") if since is not None else "life"
        base = f"{self._prefix}{subject.column}:{subject.id}:{period}"
        return [f"{base}:spent", f"{base}:exp", f"{base}:amt"]

    async def reserve(self, subjects: list[BudgetSubject], worst_pico: int) -> Reservation | None:
        if not subjects:
            return None
        now = self._clock()
        periods = [period_start(subject.period, now) for subject in subjects]
        keys = [
            key for s, since in zip(subjects, periods, strict=True) for key in self._keys(s, since)
        ]
        reservation_id = secrets.token_hex(8)
        now_ms = int(_epoch_ms(now))
        args = [now_ms, reservation_id, worst_pico, now_ms + self._ttl_ms]
        args += [subject.limit_pico for subject in subjects]
        if self._missed:
            await self._drop_missed()
        for _ in range(len(subjects) + 1):
            try:
                reply = await _RESERVE(self._client, keys, args)
            except REDIS_DOWN as exc:
                raise Unavailable(BUDGETS) from exc
            status = int(reply[0])
            if status == 0:
                return RedisReservation(keys, reservation_id, worst_pico)
            index = int(reply[1]) - 1
            if status == 1:
                raise BudgetRefused(subjects[index], int(reply[2]), int(reply[3]), worst_pico)
            # First use of this budget in this period: its spend comes from the log.
            subject = subjects[index]
            spent = await self._load_spent(subject.column, subject.id, periods[index])
            try:
                await self._client.set(keys[3 * index], spent, nx=True, px=SPENT_TTL_MS)
            except REDIS_DOWN as exc:
                raise Unavailable(BUDGETS) from exc
        raise RuntimeError("budget spend could not be initialised in Redis")

    async def settle(self, reservation: Reservation | None, actual_pico: int) -> None:
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        assert isinstance(reservation, RedisReservation)
        args = [reservation.id, actual_pico, SPENT_TTL_MS]
        try:
            await _SETTLE(self._client, reservation.keys, args)
        except REDIS_DOWN as exc:
            self._missed.update(reservation.keys[0::3])
            _outages.warn(BUDGETS, exc, "a settled call's cost was not added to its budget")

    async def _drop_missed(self) -> None:
        missed = list(self._missed)
        try:
            await self._client.delete(*missed)
        except REDIS_DOWN as exc:
            raise Unavailable(BUDGETS) from exc
        self._missed.difference_update(missed)


def _epoch_ms(naive_utc: datetime) -> float:
    return (naive_utc - datetime(1970, 1, 1)).total_seconds() * 1000
