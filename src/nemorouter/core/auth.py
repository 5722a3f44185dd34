"""Who is calling: the master key, or a virtual key (with its team) from the store.

Keys are resolved through an in-memory cache, so the hot path makes no database round
trip: a key is read from the store once, then served from memory for `ttl_s` (or until it
is changed or revoked through this instance's admin API, which drops it at once).
Unknown secrets are remembered briefly too, so a client retrying a bad key cannot turn
each request into a database query.

The store unreachable (docs/gateway.md "Outages"): a key read before keeps being served from memory
past its TTL, for at most MAX_STALE_S after its last good read, the store being tried again
every STALE_RETRY_S meanwhile (revocations still arrive at once over Redis pub/sub, which
drops the entry: a dropped key is not served stale). A key never read, or read too long
ago, gets 503 `service_unavailable` with `retry-after`. A lookup waits LOOKUP_TIMEOUT_S at
most (a database that does not answer is unreachable too).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from datetime import UTC

from nemorouter.core.keys import SECRET_PREFIX, hash_secret
from nemorouter.state.unavailable import OutageLog
from nemorouter.store.failures import is_unreachable
from nemorouter.store.keys_repo import KeysRepo
from nemorouter.types.errors import GatewayError, invalid_api_key, service_unavailable
from nemorouter.types.keys import KeyRecord, TeamRecord

log = logging.getLogger("nemorouter.auth")
_outages = OutageLog(log)
MASTER_KEY_ID = "master"
KEY_TTL_S = 60.0
UNKNOWN_TTL_S = 5.0
MAX_UNKNOWN = 10_000
MAX_STALE_S = 600.0
STALE_RETRY_S = 2.0
LOOKUP_TIMEOUT_S = 3.0
KEY_STORE = "The key store (database)"


class Caller:
    """The authenticated identity a request is attributed to (spend, limits, budgets)."""

    __slots__ = ("expires", "key", "key_id", "team", "team_id")

    def __init__(self, key: KeyRecord | None = None, team: TeamRecord | None = None) -> None:
        self.key = key
        self.team = team
        self.key_id = key.id if key is not None else MASTER_KEY_ID
        self.team_id = key.team_id if key is not None else None
        expires = key.expires_at if key is not None else None
        # Stored times are naive UTC: say so, or .timestamp() reads them in the host's zone.
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        self.expires = expires.timestamp() if expires is not None else None

    @property
    def is_master(self) -> bool:
        return self.key is None

    @property
    def default_tags(self) -> frozenset[str] | None:
        """The key's default tags (replacing the settings' default), or None."""
        if self.key is None or self.key.default_tags is None:
            return None
        return frozenset(self.key.default_tags)


class _Entry:
    __slots__ = ("caller", "checked", "loaded")

    def __init__(self, caller: Caller | None, loaded: float) -> None:
        self.caller = caller
        self.loaded = loaded  # the last good read
        self.checked = loaded  # the last read tried (later than `loaded` during an outage)


class Authenticator:
    def __init__(
        self,
        master_key: str,
        repo: KeysRepo | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._master = master_key.encode()
        self._master_caller = Caller()
        self._repo = repo
        self._clock = clock
        self.ttl_s = KEY_TTL_S
        self.unknown_ttl_s = UNKNOWN_TTL_S
        self.max_stale_s = MAX_STALE_S
        self._cache: dict[str, _Entry] = {}
        self._unknown = 0
        self._loading: dict[str, asyncio.Future[Caller | None]] = {}

    def bearer(self, authorization: bytes | None) -> bytes:
        """The key from an `Authorization: Bearer <key>` header value."""
        if not authorization or authorization[:7].lower() != b"bearer ":
            raise invalid_api_key()
        return authorization[7:].strip()

    async def check_admin(self, authorization: bytes | None) -> None:
        """Admin endpoints: the master key; a valid virtual key is a 403 `not_admin` (it
        authenticates, it is just not allowed here), anything else a 401."""
        if hmac.compare_digest(self.bearer(authorization), self._master):
            return
        await self.resolve(authorization)  # 401 / revoked / expired, as on /v1
        raise GatewayError(
            403,
            "not_admin",
            "This key is not an admin key: /admin endpoints need the master key.",
        )

    async def resolve(self, authorization: bytes | None) -> Caller:
        """The caller behind a bearer key, or 401."""
        secret = self.bearer(authorization)
        if hmac.compare_digest(secret, self._master):
            return self._master_caller
        if self._repo is None or not secret.startswith(SECRET_PREFIX.encode()):
            raise invalid_api_key()
        digest = hash_secret(secret)
        entry = self._cache.get(digest)
        now = self._clock()
        if entry is None or now - entry.checked > (
            self.ttl_s if entry.caller else self.unknown_ttl_s
        ):
            entry = await self._refresh(digest, entry, now)
        caller = entry.caller
        if caller is None or not hmac.compare_digest(caller.key.key_hash, digest):  # type: ignore[union-attr]
            raise invalid_api_key()
        key = caller.key
        assert key is not None
        if key.revoked_at is not None:
            raise _refused(f"The API key {key.key_prefix}… was revoked.")
        if caller.expires is not None and time.time() >= caller.expires:
            raise _refused(f"The API key {key.key_prefix}… expired at {key.expires_at}Z.")
        return caller

    async def _refresh(self, digest: str, entry: _Entry | None, now: float) -> _Entry:
        """The entry read again from the store; the stale one while the store is
        unreachable (within max_stale_s), else 503."""
        try:
            caller = await self._load(digest)
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            if (
                entry is None
                or self._cache.get(digest) is not entry  # dropped meanwhile (revoked, edited)
                or now - entry.loaded > self.max_stale_s
            ):
                _outages.warn(KEY_STORE, exc, "keys not read recently are refused (503)")
                raise service_unavailable(KEY_STORE) from exc
            _outages.warn(KEY_STORE, exc, "keys read before are served from memory")
            # Served as is until the next try, STALE_RETRY_S from now.
            ttl = self.ttl_s if entry.caller else self.unknown_ttl_s
            entry.checked = now + STALE_RETRY_S - ttl
            return entry
        entry = _Entry(caller, now)
        if caller is None:
            self._unknown += 1
            if self._unknown > MAX_UNKNOWN:  # a flood of made-up keys: start over
                self._cache = {d: e for d, e in self._cache.items() if e.caller is not None}
                self._unknown = 0
        self._cache[digest] = entry
        return entry

    async def _load(self, digest: str) -> Caller | None:
        """One store lookup per secret at a time, however many requests carry it."""
        future = self._loading.get(digest)
        if future is not None:
            return await asyncio.shield(future)
        future = asyncio.get_running_loop().create_future()
        self._loading[digest] = future
        try:
            assert self._repo is not None
            async with asyncio.timeout(LOOKUP_TIMEOUT_S):  # a TimeoutError for every waiter
                key = await self._repo.key_by_hash(digest)
                team = await self._repo.team(key.team_id) if key and key.team_id else None
            caller = Caller(key, team) if key is not None else None
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here; each waiter gets it raised
            raise
        finally:
            del self._loading[digest]
        future.set_result(caller)
        return caller

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached keys (one, or all) so the next request reads the store."""
        if key_id is None:
            self._cache.clear()
            return
        self._cache = {
            d: e for d, e in self._cache.items() if e.caller is None or e.caller.key_id != key_id
        }


def _refused(message: str) -> GatewayError:
    return GatewayError(401, "invalid_api_key", message)
