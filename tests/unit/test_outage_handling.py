"""What each concern does when its shared store is unreachable (docs/gateway.md "Outages"), without a
server: Redis is a port nothing listens on, the database a repo that raises."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from nemorouter.config import ConfigError, parse_config
from nemorouter.core import auth as auth_module
from nemorouter.core.auth import Authenticator
from nemorouter.core.keys import hash_secret, new_secret
from nemorouter.core.limits import KeyLimits
from nemorouter.state.breaker_memory import FailureCounter
from nemorouter.state.breaker_redis import RedisBreakers
from nemorouter.state.budget_redis import RedisBudgets
from nemorouter.state.quota import QuotaGate
from nemorouter.state.redis_client import redis_client
from nemorouter.state.redis_windows import RedisWindows
from nemorouter.state.types import Reservation
from nemorouter.state.unavailable import Unavailable
from nemorouter.types.budget import BudgetSubject
from nemorouter.types.errors import GatewayError
from nemorouter.types.keys import KeyRecord
from tests.private_services import free_port

# --- Redis: a port nothing listens on ---------------------------------------------------------


@pytest.fixture
def dead_redis() -> Any:
    return redis_client(f"redis://127.0.0.1:{free_port()}/0")


def _caller(rpm: int | None = 10) -> auth_module.Caller:
    record = KeyRecord(
        id="k1", name="k", key_hash="h", key_prefix="sk-nemo-x", rpm=rpm, created_at=_NOW
    )
    return auth_module.Caller(record)


_NOW = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)


async def test_rate_limits_fail_closed_by_default(dead_redis: Any) -> None:
    limits = KeyLimits(RedisWindows(dead_redis))
    with pytest.raises(GatewayError) as refused:
        await limits.admit(_caller(), 10)
    assert refused.value.status == 503
    assert refused.value.code == "service_unavailable"
    assert int(refused.value.headers["retry-after"]) > 0
    assert "key rate limits" in refused.value.message


async def test_rate_limits_fail_open_by_setting(dead_redis: Any) -> None:
    limits = KeyLimits(RedisWindows(dead_redis), fail_open=True)
    assert await limits.admit(_caller(), 10) is None  # admitted, uncounted


async def test_a_failed_rate_limit_settle_is_not_the_requests_failure(dead_redis: Any) -> None:
    from nemorouter.state.types import Decision

    reservation = Reservation("r1", ("key:k1",), 0.0, 1, 10)
    await KeyLimits(RedisWindows(dead_redis)).settle(Decision(True, 0.0, reservation), 5)


async def test_deployment_quota_gate_fails_closed(dead_redis: Any) -> None:
    gate = QuotaGate(RedisWindows(dead_redis), {"pro": (100, None)})
    with pytest.raises(Unavailable, match="deployment quotas"):
        await gate.try_acquire("pro", 10)
    with pytest.raises(Unavailable, match="deployment quotas"):
        await gate.acquire("pro", 10, 1.0)
    assert gate.queued("pro") == 0  # the waiter left its queue


async def test_budgets_fail_closed_and_settle_goes_on(dead_redis: Any) -> None:
    loads: list[str] = []

    async def load_spent(column: str, subject_id: str, since: datetime | None) -> int:
        loads.append(subject_id)
        return 0

    budgets = RedisBudgets(dead_redis, load_spent)
    subject = BudgetSubject("key_id", "k1", "key 'k'", 10**12, "daily")
    with pytest.raises(Unavailable, match="budgets"):
        await budgets.reserve([subject], 1000)
    from nemorouter.state.budget_redis import RedisReservation

    reservation = RedisReservation(["s:spent", "s:exp", "s:amt"], "id", 1000)
    await budgets.settle(reservation, 500)  # logged, not raised: the answer is paid for
    assert budgets._missed == {"s:spent"}


async def test_breakers_fail_open_by_default_and_closed_by_setting(dead_redis: Any) -> None:
    def breakers(fail_closed: bool) -> RedisBreakers:
        return RedisBreakers(dead_redis, FailureCounter(5), 30.0, ["a"], fail_closed=fail_closed)

    for fail_closed in (False, True):
        assert await breakers(fail_closed).attempt("a")  # Redis not known to be down yet
    open_store, closed_store = breakers(False), breakers(True)
    for store in (open_store, closed_store):
        await store.start()
    await asyncio.sleep(0.3)  # one refresh has failed
    assert open_store.down and closed_store.down
    assert await open_store.attempt("a")
    with pytest.raises(Unavailable, match="circuit breakers"):
        await closed_store.attempt("a")
    for store in (open_store, closed_store):
        await store.aclose()


async def test_a_key_change_is_not_refused_for_want_of_redis(dead_redis: Any) -> None:
    from nemorouter.state.key_events import KeyEvents

    await KeyEvents(dead_redis, "nemo:keys", lambda _: None).publish("k1")  # logged, not raised


def test_redis_down_settings_are_validated() -> None:
    raw = {
        "settings": {
            "master_key": "sk-nemo-0123456789abcdef",
            "redis_down": {"rate_limits": "sometimes"},
        },
        "providers": {"s": {"type": "openai-compatible", "base_url": "http://127.0.0.1:1"}},
        "deployments": [{"id": "a", "model": "gemini-2.5-flash", "provider": "s"}],
    }
    with pytest.raises(ConfigError, match=r"settings\.redis_down\.rate_limits: must be 'closed'"):
        parse_config(raw, env={})
    raw["settings"]["redis_down"] = {"rate_limits": "open", "breakers": "closed"}
    down = parse_config(raw, env={}).settings.redis_down
    assert (down.rate_limits, down.breakers) == ("open", "closed")
    raw["settings"].pop("redis_down")
    down = parse_config(raw, env={}).settings.redis_down
    assert (down.rate_limits, down.breakers) == ("closed", "open")


# --- the key store: a repo that fails on demand ------------------------------------------------


class _Repo:
    def __init__(self, record: KeyRecord) -> None:
        self.record = record
        self.failure: BaseException | None = None
        self.hang = False
        self.reads = 0

    async def key_by_hash(self, digest: str) -> KeyRecord | None:
        self.reads += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.failure is not None:
            raise self.failure
        return self.record if digest == self.record.key_hash else None

    async def team(self, team_id: str) -> None:
        return None


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _keyed() -> tuple[bytes, _Repo, _Clock, Authenticator]:
    secret = new_secret()
    record = KeyRecord(
        id="k1",
        name="k",
        key_hash=hash_secret(secret.encode()),
        key_prefix=secret[:12],
        created_at=_NOW,
    )
    repo, clock = _Repo(record), _Clock()
    auth = Authenticator("master-key-123", repo, clock)  # type: ignore[arg-type]
    return b"Bearer " + secret.encode(), repo, clock, auth


DOWN = OperationalError("SELECT", {}, ConnectionRefusedError(111, "refused"))


async def test_a_cached_key_is_served_past_its_ttl_while_the_store_is_down() -> None:
    bearer, repo, clock, auth = _keyed()
    assert (await auth.resolve(bearer)).key_id == "k1"
    repo.failure = DOWN
    clock.now += auth.ttl_s + 1
    assert (await auth.resolve(bearer)).key_id == "k1"  # stale, store tried once
    reads = repo.reads
    clock.now += 1.0  # within STALE_RETRY_S: served without trying the store again
    assert (await auth.resolve(bearer)).key_id == "k1"
    assert repo.reads == reads
    clock.now += auth_module.STALE_RETRY_S
    assert (await auth.resolve(bearer)).key_id == "k1"
    assert repo.reads == reads + 1
    # Past the maximum staleness: 503, not a key nobody could revoke for hours.
    clock.now += auth.max_stale_s
    with pytest.raises(GatewayError) as refused:
        await auth.resolve(bearer)
    assert refused.value.status == 503 and refused.value.headers["retry-after"]
    # The store is back: read again, served fresh.
    repo.failure = None
    assert (await auth.resolve(bearer)).key_id == "k1"


async def test_an_uncached_or_dropped_key_gets_503_while_the_store_is_down() -> None:
    bearer, repo, _, auth = _keyed()
    repo.failure = ConnectionRefusedError(111, "refused")
    with pytest.raises(GatewayError) as refused:
        await auth.resolve(bearer)
    assert refused.value.status == 503 and refused.value.code == "service_unavailable"
    repo.failure = None
    await auth.resolve(bearer)
    auth.forget("k1")  # a revocation over pub/sub: never served stale afterwards
    repo.failure = DOWN
    with pytest.raises(GatewayError) as dropped:
        await auth.resolve(bearer)
    assert dropped.value.status == 503


async def test_a_hung_store_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_module, "LOOKUP_TIMEOUT_S", 0.05)
    bearer, repo, _, auth = _keyed()
    repo.hang = True
    lookups = [auth.resolve(bearer) for _ in range(3)]  # one read shared by all three
    results = await asyncio.wait_for(asyncio.gather(*lookups, return_exceptions=True), 2)
    assert all(isinstance(r, GatewayError) and r.status == 503 for r in results), results
    assert repo.reads == 1


async def test_a_broken_statement_is_not_an_outage() -> None:
    bearer, repo, _, auth = _keyed()
    repo.failure = ProgrammingError("SELECT", {}, Exception('relation "keys" does not exist'))
    with pytest.raises(ProgrammingError):  # a bug: a 500 with its traceback, not a 503
        await auth.resolve(bearer)


# --- readiness ---------------------------------------------------------------------------------


class _Probe:
    """Stands in for the pipeline: what readiness reads of it."""

    def __init__(self, store_ok: bool, redis: Any, writer_ok: bool) -> None:
        self.started = True
        self.redis = redis
        self.config = type("C", (), {"deployments": (1, 2)})()
        writer = type("W", (), {"healthy": writer_ok})()

        async def ready() -> bool:
            return store_ok

        self.store = type("S", (), {"ready": staticmethod(ready), "writer": writer})()
        self.store.description = "postgresql://db"


class _HungRedis:
    async def ping(self) -> bool:
        await asyncio.sleep(3600)
        return True


class _Redis:
    async def ping(self) -> bool:
        return True


async def test_readiness_names_what_is_down_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from nemorouter.gateway import readiness as module

    monkeypatch.setattr(module, "CHECK_TIMEOUT_S", 0.1)
    status, body = await module.readiness(_Probe(True, _Redis(), True))  # type: ignore[arg-type]
    assert (status, body["status"]) == (200, "ready")
    status, body = await module.readiness(_Probe(True, None, True))  # type: ignore[arg-type]
    assert status == 200  # no Redis configured: nothing to check
    started = asyncio.get_running_loop().time()
    status, body = await module.readiness(_Probe(False, _HungRedis(), False))  # type: ignore[arg-type]
    assert asyncio.get_running_loop().time() - started < 1.0
    assert status == 503 and body["status"] == "unavailable"
    assert body["down"] == ["store", "redis", "spend_writer"]
    assert body["checks"] == {
        "store": "unreachable",
        "redis": "unreachable",
        "spend_writer": "failing",
    }
    status, body = await module.readiness(_Probe(True, _Redis(), False))  # type: ignore[arg-type]
    assert (status, body["down"]) == (503, ["spend_writer"])
