"""Circuit breakers shared by every gateway instance through Redis (see state/breaker_memory.py).

What is shared is the verdict, not the counting. Each instance counts its own calls
(consecutive failures, failure rate: a load-balanced instance sees a fair sample of a
deployment's traffic, and a dead deployment fails on every instance) and, when its count
trips, opens the breaker for all: `<prefix><id>` holds the server time (ms) the cooldown
ends. After it, one probe is granted to one instance only (`SET <prefix><id>:probe NX`,
inside a script that checks the cooldown, so two instances cannot both probe); its success
deletes the state, its failure starts a new cooldown.

The hot path makes no Redis call: `available` reads a local copy of every deployment's
state, refreshed by one script call every `refresh_s` (250 ms). A trip elsewhere reaches
this instance within that time; meanwhile its own count trips it anyway. Outcomes are
written in the background, and only when they change the state (a trip, a probe's result),
so a healthy deployment costs Redis nothing per request. Redis errors degrade to
per-process breakers (a probe per instance), never to a failed request: fail open, the
default (`settings.redis_down.breakers: open`). With `closed`, while the shared state cannot
be read every call is refused instead (`Unavailable`, a 503), for operators who would rather
stop than let each instance find a dead deployment on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from nemorouter.state.unavailable import Unavailable

log = logging.getLogger("nemorouter.breaker")

REFRESH_S = 0.25
# A state key outlives its cooldown by this much: only garbage collection of deployments
# that left the config (an expired key reads as closed).
STATE_TTL_S = 3600.0

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: state, probe. ARGV: cooldown_ms, ttl_ms, 'trip' | 'reopen'. Returns {now, until}.
# A trip leaves an open breaker's cooldown alone (several instances trip at once); a failed
# probe starts a new one and frees the probe.
_OPEN = (
    _NOW
    + """
local ends = tonumber(redis.call('GET', KEYS[1]))
if ARGV[3] == 'trip' and ends and now < ends then return {now, ends} end
ends = now + tonumber(ARGV[1])
redis.call('SET', KEYS[1], ends, 'PX', tonumber(ARGV[2]))
if ARGV[3] == 'reopen' then redis.call('DEL', KEYS[2]) end
return {now, ends}
"""
)

# KEYS: state, probe. ARGV: probe_ttl_ms, token. Returns {now, until (-1: closed), granted}.
_CLAIM = (
    _NOW
    + """
local ends = tonumber(redis.call('GET', KEYS[1]))
if not ends then return {now, -1, 1} end
if now < ends then return {now, ends, 0} end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', tonumber(ARGV[1])) then
  return {now, ends, 1}
end
return {now, ends, 0}
"""
)

# KEYS: probe. ARGV: token. Frees the probe if this instance still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: every state key. Returns {now, until or -1 per key}.
_STATE = (
    _NOW
    + """
local out = {now}
local values = redis.call('MGET', unpack(KEYS))
for i = 1, #KEYS do out[i + 1] = tonumber(values[i]) or -1 end
return out
"""
)


class Counter(Protocol):
    """state.breaker_memory.FailureCounter."""

    def ok(self, deployment_id: str, started: float | None = None) -> None: ...

    def failed(self, deployment_id: str, started: float | None = None) -> str | None: ...

    def reset(self, deployment_id: str) -> None: ...


class RedisBreakers:
    """A BreakerStore (state/breaker_memory.py) whose open/half-open state lives in Redis."""

    def __init__(
        self,
        client: Redis,
        counter: Counter,
        cooldown_s: float,
        deployment_ids: Iterable[str] = (),
        *,
        prefix: str = "nemo:cb:",
        probe_ttl_s: float = 150.0,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        fail_closed: bool = False,
    ) -> None:
        self.cooldown_s = cooldown_s
        self.counter = counter
        self.ids = list(deployment_ids)
        self.refresh_s = refresh_s
        self._client = client
        self._prefix = prefix
        self._probe_ttl_ms = int(probe_ttl_s * 1000)
        self._ttl_ms = int((cooldown_s + STATE_TTL_S) * 1000)
        self._token = uuid.uuid4().hex  # names this instance's probes
        self.clock = self._clock = clock
        self._until: dict[str, float] = {}  # open deployments: end of cooldown, local clock
        self._probes: set[str] = set()  # half-open deployments whose probe this instance holds
        self._pending: set[str] = set()  # written now: a refresh must not undo it
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresher: asyncio.Task[None] | None = None
        self._open = client.register_script(_OPEN)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._state = client.register_script(_STATE)
        self._warned = False
        self.fail_closed = fail_closed
        self.down = False  # the last Redis call failed (cleared by the next good refresh)

    def _keys(self, deployment_id: str) -> list[str]:
        key = self._prefix + deployment_id
        return [key, key + ":probe"]

    # --- the router's side --------------------------------------------------------------

    def available(self, deployment_id: str) -> bool:
        until = self._until.get(deployment_id)
        return until is None or (deployment_id not in self._probes and self._clock() >= until)

    async def attempt(self, deployment_id: str) -> bool:
        if self.down and self.fail_closed:
            raise Unavailable("Redis (circuit breakers)")
        until = self._until.get(deployment_id)
        if until is None:
            return True
        now = self._clock()
        if now < until or deployment_id in self._probes:
            return False
        try:
            server_now, server_until, granted = await self._claim(
                self._keys(deployment_id), [self._probe_ttl_ms, self._token]
            )
        except RedisError as exc:
            self._redis_down(exc)
            self._probes.add(deployment_id)  # degrade: this instance probes on its own
            return True
        if server_until < 0:  # closed meanwhile (another instance's probe succeeded)
            self._until.pop(deployment_id, None)
            return True
        if granted:
            self._probes.add(deployment_id)
            return True
        # someone else probes: look again no sooner than the next refresh
        self._until[deployment_id] = max(
            now + (server_until - server_now) / 1000, now + self.refresh_s
        )
        return False

    def success(self, deployment_id: str, started: float | None = None) -> None:
        if deployment_id in self._probes:
            self._probes.discard(deployment_id)
            self._until.pop(deployment_id, None)
            self.counter.reset(deployment_id)
            log.info("circuit of deployment %s closed again", deployment_id)
            self._write(deployment_id, self._client.delete(*self._keys(deployment_id)))
        elif deployment_id not in self._until:
            self.counter.ok(deployment_id, started)

    def failure(self, deployment_id: str, started: float | None = None) -> None:
        if deployment_id in self._probes:
            self._probes.discard(deployment_id)
            self._until[deployment_id] = self._clock() + self.cooldown_s
            log.warning(
                "circuit of deployment %s open again for %gs: the probe failed",
                deployment_id, self.cooldown_s,
            )  # fmt: skip
            self._write(deployment_id, self._publish(deployment_id, "reopen"))
            return
        if deployment_id in self._until:
            return  # a call from before the breaker opened
        reason = self.counter.failed(deployment_id, started)
        if reason is not None:
            self._until[deployment_id] = self._clock() + self.cooldown_s
            log.warning(
                "circuit of deployment %s open for %gs after %s",
                deployment_id, self.cooldown_s, reason,
            )  # fmt: skip
            self._write(deployment_id, self._publish(deployment_id, "trip"))

    def release(self, deployment_id: str) -> None:
        if deployment_id in self._probes:
            self._probes.discard(deployment_id)
            self._write(
                deployment_id,
                self._release(self._keys(deployment_id)[1:], [self._token]),
            )

    def is_open(self, deployment_id: str) -> bool:
        return deployment_id in self._until

    # --- Redis ----------------------------------------------------------------------------

    async def _publish(self, deployment_id: str, mode: str) -> None:
        await self._open(
            self._keys(deployment_id), [int(self.cooldown_s * 1000), self._ttl_ms, mode]
        )

    def _write(self, deployment_id: str, work: Coroutine[Any, Any, Any]) -> None:
        """Run a state write in the background (the caller's answer does not wait for it)."""
        self._pending.add(deployment_id)
        task = asyncio.ensure_future(work)
        self._tasks.add(task)

        def done(task: asyncio.Task[Any]) -> None:
            self._tasks.discard(task)
            self._pending.discard(deployment_id)
            if not task.cancelled() and task.exception() is not None:
                self._redis_down(task.exception())

        task.add_done_callback(done)

    async def refresh(self) -> None:
        """Take every deployment's state from Redis into the local copy."""
        if not self.ids:
            return
        reply = await self._state([self._prefix + i for i in self.ids], [])
        server_now, values = reply[0], reply[1:]
        if self.down:
            self.down = self._warned = False
            log.warning("shared circuit breaker state available again")
        now = self._clock()
        for deployment_id, until in zip(self.ids, values, strict=True):
            if deployment_id in self._pending or deployment_id in self._probes:
                continue
            if until < 0:
                if self._until.pop(deployment_id, None) is not None:
                    self.counter.reset(deployment_id)  # closed elsewhere: count afresh
            else:
                self._until[deployment_id] = now + (until - server_now) / 1000

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                self._redis_down(exc)
            await asyncio.sleep(self.refresh_s)

    def _redis_down(self, exc: BaseException | None) -> None:
        self.down = True
        if not self._warned:  # once: an outage would otherwise log per request
            self._warned = True
            log.warning("shared circuit breaker state unavailable, per process now: %s", exc)

    async def flush(self) -> None:
        """Wait for the background writes (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def start(self) -> None:
        if self._refresher is None:
            self._refresher = asyncio.ensure_future(self._refresh_loop())

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
            self._refresher = None
        await self.flush()
        await self._client.aclose()
