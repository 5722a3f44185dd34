"""The composition root: every service built once from the config, started and stopped here.

The memory/Redis choice is made here, once: with a `redis_url`, ONE Redis client (one
connection pool per worker) is shared by every shared-state backend (rate windows and the
deployment quota gate, budgets, the response cache, circuit breakers, key events); without
one, each concern keeps its state in the process. The pipeline receives its stages; the
gateway receives the pipeline and the services it serves (store, keys, …) from `Services`,
never by reaching through the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine, Iterable, Mapping
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from nemorouter.config import Config, Settings
from nemorouter.core.auth import Authenticator
from nemorouter.core.cache_stage import CacheStage
from nemorouter.core.deferred.admit import LineAdmission
from nemorouter.core.deferred.parts import PartRunner
from nemorouter.core.deferred.poller import DeferredPoller
from nemorouter.core.deferred.service import DeferredService, Reservations
from nemorouter.core.deployments import AUTO, DeploymentPool
from nemorouter.core.key_admin import KeyAdmin
from nemorouter.core.limits import KeyLimits
from nemorouter.core.metrics import Metrics
from nemorouter.core.pipeline import Pipeline
from nemorouter.core.retry import RetryPolicy
from nemorouter.core.router import Router
from nemorouter.core.spend_queries import SpendQueries, spent_so_far
from nemorouter.providers import build_adapter
from nemorouter.providers.base import ProviderAdapter
from nemorouter.providers.deferred_backends import build_deferred
from nemorouter.state.breaker_memory import Breakers, BreakerStore, FailureCounter
from nemorouter.state.budget_memory import MemoryBudgets
from nemorouter.state.budgets import BudgetStore
from nemorouter.state.cache import build_cache
from nemorouter.state.factory import build_state
from nemorouter.state.key_events import KeyEvents
from nemorouter.state.redis_client import redis_client
from nemorouter.store.deferred_repo import DeferredRepo
from nemorouter.store.keys_repo import KeysRepo
from nemorouter.store.store import Store
from nemorouter.telemetry.env import tracing_settings
from nemorouter.telemetry.otlp import OTLPExporter
from nemorouter.telemetry.spans import Tracer
from nemorouter.types.budget import LoadSpent
from nemorouter.types.deferred import DeferredBackend

log = logging.getLogger("nemorouter.wiring")
KEY_EVENTS_CHANNEL = "nemo:keys:changed"
CLOSE_TIMEOUT_S = 5.0


class Services:
    """Everything the gateway serves, built once from the config: the request pipeline and
    the services the admin routes call (key administration, spend queries)."""

    def __init__(self, config: Config, env: Mapping[str, str] | None = None) -> None:
        settings = config.settings
        self.config = config
        self.store = Store(
            settings.database_url,
            journal_dir=settings.spend_journal_dir,
            dead_letter_path=settings.spend_dead_letter_path,
        )
        self.keys = KeysRepo(self.store.engine)
        self.auth = Authenticator(settings.master_key, self.keys)
        # The one Redis client of this worker, or None: every backend below follows it.
        self.redis: Redis | None = redis_client(settings.redis_url) if settings.redis_url else None
        self.key_events = (
            KeyEvents(self.redis, KEY_EVENTS_CHANNEL, self.auth.forget)
            if self.redis is not None
            else None
        )
        used = {d.provider for d in config.deployments}
        self.adapters: dict[str, ProviderAdapter] = {
            name: build_adapter(name, provider, settings)
            for name, provider in config.providers.items()
            if name in used
        }
        self.pool = DeploymentPool(config, self.adapters)
        # Rate windows and the deployment quota gate (same backend, same client).
        self.state = build_state(self.redis, config.deployments)
        self.breakers = build_breakers(self.redis, settings, [d.id for d in config.deployments])
        self.budgets = build_budgets(self.redis, self.spent_so_far)
        self.metrics = Metrics()
        # Tracing: None when off (the default), and then no span is ever built.
        self.spans, tracer = build_tracing(settings, os.environ if env is None else env)
        self.metrics.tracing = self.spans
        self.key_admin = KeyAdmin(self.keys, [*self.pool.names, AUTO], self.key_changed)
        self.spend = SpendQueries(self.store.writer, self.keys)
        self.pipeline = Pipeline(
            auth=self.auth,
            pool=self.pool,
            router=Router(
                RetryPolicy.from_settings(settings),
                self.breakers,
                self.state.quotas,
                settings.queue_timeout_s,
                deadline_s=settings.deadline_s,
                call_timeout_s=settings.request_timeout_s,
            ),
            limits=KeyLimits(
                self.state.windows, fail_open=settings.redis_down.rate_limits == "open"
            ),
            budgets=self.budgets,
            cache=CacheStage(
                settings.cache, build_cache(self.redis, max_bytes=settings.cache.max_mb << 20)
            ),
            writer=self.store.writer,
            metrics=self.metrics,
            default_tags=frozenset(settings.default_tags),
            tracer=tracer,
        )
        self._build_deferred(config)
        self.started = False

    def _build_deferred(self, config: Config) -> None:
        """Deferred jobs: a batch backend per provider whose type has one (providers/
        deferred_backends.py), the endpoints' service and the background poller."""
        settings = config.settings
        used = {d.provider for d in config.deployments}
        self.deferred_backends: dict[str, DeferredBackend] = {}
        for name, provider in config.providers.items():
            backend = build_deferred(name, provider, settings) if name in used else None
            if backend is not None:
                self.deferred_backends[name] = backend
        repo = DeferredRepo(self.store.engine)
        reservations: Reservations = {}
        admission = LineAdmission(
            self.pool, self.budgets, self.deferred_backends, frozenset(settings.default_tags)
        )
        runner = PartRunner(
            settings.deferred,
            repo,
            self.pipeline,
            self.deferred_backends,
            reservations,
            self.store.writer,
        )
        self.deferred_poller = DeferredPoller(settings.deferred, repo, self.keys, runner)
        self.deferred = DeferredService(
            settings.deferred, repo, admission, reservations, self.deferred_poller.wake
        )

    async def start(self) -> None:
        await self.store.start()
        if self.key_events is not None:
            await self.key_events.start()
        for adapter in self.adapters.values():
            await adapter.start()
        await self.breakers.start()
        if self.spans is not None:
            await self.spans.start()
        self.deferred_poller.start()  # resumes the batches a previous process left polling
        self.started = True

    async def close(self) -> None:
        """Stop: close provider connections, then write every spend record still waiting.
        (A backend's aclose may close the shared client too: redis-py's aclose is idempotent.)"""
        self.started = False
        await bounded(self.deferred_poller.close(), "deferred poller")
        for backend in self.deferred_backends.values():
            await bounded(backend.close(), "provider batch APIs")
        for adapter in self.adapters.values():
            await bounded(adapter.close(), "provider connections")
        if self.key_events is not None:
            await bounded(self.key_events.aclose(), "key events")
        await bounded(self.breakers.aclose(), "circuit breakers")
        await bounded(self.state.aclose(), "rate windows")
        await bounded(self.pipeline.cache.aclose(), "response cache")
        if self.spans is not None:  # the spans of the last requests, within the bound
            await bounded(self.spans.close(), "trace export")
        await self.store.close()  # the spend flush has its own, longer bound
        if self.redis is not None:
            await bounded(self.redis.aclose(), "Redis")

    async def key_changed(self, key_id: str) -> None:
        """A key was edited or revoked: no instance may serve its cached copy any more."""
        self.auth.forget(key_id)
        if self.key_events is not None:
            await self.key_events.publish(key_id)

    async def spent_so_far(self, column: str, subject_id: str, since: datetime | None) -> int:
        """A budget's spend in its period, from the log (this instance's rows written first);
        bounded: a store that cannot answer is a 503 (budgets fail closed)."""
        return await spent_so_far(self.store.writer, self.keys, column, subject_id, since)


def build_tracing(
    settings: Settings, env: Mapping[str, str]
) -> tuple[OTLPExporter | None, Tracer | None]:
    """The span exporter and tracer, or (None, None) when tracing is off."""
    found = tracing_settings(settings.tracing, env)
    if found is None:
        return None, None
    tracing, url = found
    exporter = OTLPExporter(
        url,
        tracing.service_name,
        dict(tracing.headers),
        interval_s=tracing.export_interval_s,
        max_queue=tracing.max_queue,
        batch_size=tracing.batch_size,
        timeout_s=tracing.export_timeout_s,
    )
    return exporter, Tracer(exporter, tracing.sample_ratio)


def build_budgets(redis: Redis | None, load_spent: LoadSpent) -> BudgetStore:
    """With Redis, budgets are shared by every instance; else kept in the process."""
    if redis is None:
        return MemoryBudgets(load_spent)
    from nemorouter.state.budget_redis import RedisBudgets  # imported only when configured

    return RedisBudgets(redis, load_spent)


def build_breakers(
    redis: Redis | None, settings: Settings, deployment_ids: Iterable[str]
) -> BreakerStore:
    """Circuit breakers: in-process, or their open/half-open state shared through Redis."""
    breaker = settings.breaker
    counter = FailureCounter(
        breaker.consecutive_failures, breaker.failure_rate, breaker.window_s, breaker.min_calls
    )
    if redis is None:
        memory = Breakers(breaker.consecutive_failures, breaker.cooldown_s)
        memory.counter = counter
        return memory
    from nemorouter.state.breaker_redis import RedisBreakers  # imported only when configured

    return RedisBreakers(
        redis,
        counter,
        breaker.cooldown_s,
        deployment_ids,
        probe_ttl_s=settings.deadline_s,
        fail_closed=settings.redis_down.breakers == "closed",
    )


async def bounded(closing: Coroutine[Any, Any, None], what: str) -> None:
    """Shutdown must finish: a backend that does not close in time is left behind (its
    process is exiting), with a warning, rather than holding the exit up."""
    try:
        await asyncio.wait_for(closing, CLOSE_TIMEOUT_S)
    except TimeoutError:
        log.warning("shutdown: %s did not close within %.0fs; going on", what, CLOSE_TIMEOUT_S)
    except Exception as exc:
        log.warning("shutdown: closing %s failed (%s); going on", what, type(exc).__name__)
