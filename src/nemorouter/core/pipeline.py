"""The request pipeline: auth → parse → required tags → route plan (allowed models) →
key rate limits → budget → cache → router → cost → settle → spend record.
The HTTP layer calls `chat`, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime
from decimal import Decimal
from typing import Any

from nemorouter.config import Config
from nemorouter.core.access import allowed_links, budget_subjects
from nemorouter.core.auth import Authenticator
from nemorouter.core.breaker import build_breakers
from nemorouter.core.budget import Budgets, worst_case_pico
from nemorouter.core.cache_entry import CachedCompletion, CompletionBuilder, decode_entry
from nemorouter.core.cache_stage import (
    MISS,
    SKIP,
    CachePlan,
    CacheStage,
    ReplayStream,
    hit_response,
)
from nemorouter.core.candidates import Link, plan
from nemorouter.core.cost import CostedStream, call_cost, usd
from nemorouter.core.deployments import Deployment, DeploymentPool
from nemorouter.core.errors import GatewayError, service_unavailable
from nemorouter.core.limits import KeyLimits
from nemorouter.core.metrics import Metrics
from nemorouter.core.money import to_pico
from nemorouter.core.record import CallRecord, job_id_of
from nemorouter.core.request import ChatRequest, parse_chat_request, reserve_tokens
from nemorouter.core.reservation_check import check_reservation, learn_prompt_ratio
from nemorouter.core.retry import RetryPolicy
from nemorouter.core.routed import Routed
from nemorouter.core.router import Router
from nemorouter.core.store_read import bounded_query, flushed
from nemorouter.core.tags import required_tags
from nemorouter.providers import build_adapter
from nemorouter.providers.base import ProviderAdapter
from nemorouter.state.budget_redis import RedisBudgets
from nemorouter.state.cache import build_cache
from nemorouter.state.factory import build_state
from nemorouter.state.key_events import KeyEvents
from nemorouter.state.redis_client import redis_client
from nemorouter.state.unavailable import Unavailable
from nemorouter.store.keys_repo import KeysRepo
from nemorouter.store.store import Store

log = logging.getLogger("nemorouter.pipeline")
KEY_EVENTS_CHANNEL = "nemo:keys:changed"
# A budget's first use in a period reads its spend from the log (after this instance's
# waiting rows are written): bounded, so a dead database answers 503, not a hung request.


class Inbound:
    """The request headers the pipeline reads (the HTTP layer collects them)."""

    __slots__ = ("authorization", "job_id", "request_id", "tags")

    def __init__(
        self,
        request_id: str,
        authorization: bytes | None,
        tags: bytes | None = None,
        job_id: bytes | None = None,
    ) -> None:
        self.request_id = request_id
        self.authorization = authorization
        self.tags = tags
        self.job_id = job_id


class Pipeline:
    """Everything a request passes through, built once from the config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(
            config.settings.database_url,
            journal_dir=config.settings.spend_journal_dir,
            dead_letter_path=config.settings.spend_dead_letter_path,
        )
        self.keys = KeysRepo(self.store.engine)
        self.auth = Authenticator(config.settings.master_key, self.keys)
        # With Redis, budgets and key revocations are shared by every instance.
        redis_url = config.settings.redis_url
        self.redis = redis_client(redis_url) if redis_url else None
        self.budgets: Budgets | RedisBudgets = (
            RedisBudgets(self.redis, self._spent_so_far)
            if self.redis is not None
            else Budgets(self._spent_so_far)
        )
        self.key_events = (
            KeyEvents(self.redis, KEY_EVENTS_CHANNEL, self.auth.forget)
            if self.redis is not None
            else None
        )
        used = {d.provider for d in config.deployments}
        self.adapters: dict[str, ProviderAdapter] = {
            name: build_adapter(name, provider, config.settings)
            for name, provider in config.providers.items()
            if name in used
        }
        self.pool = DeploymentPool(config, self.adapters)
        # Rate windows (memory, or Redis when configured) and the deployment quota gate.
        self.state = build_state(config.settings, config.deployments)
        # Circuit breakers: in-process, or shared through Redis when configured.
        self.breakers = build_breakers(config.settings, [d.id for d in config.deployments])
        self.router = Router(
            RetryPolicy.from_settings(config.settings),
            self.breakers,
            self.state.quotas,
            config.settings.queue_timeout_s,
            deadline_s=config.settings.deadline_s,
            call_timeout_s=config.settings.request_timeout_s,
        )
        self.limits = KeyLimits(
            self.state.windows, fail_open=config.settings.redis_down.rate_limits == "open"
        )
        self.cache = CacheStage(
            config.settings.cache,
            build_cache(redis_url, max_bytes=config.settings.cache.max_mb << 20),
        )
        self.default_tags = frozenset(config.settings.default_tags)
        self.metrics = Metrics()
        self.started = False

    async def start(self) -> None:
        await self.store.start()
        if self.key_events is not None:
            await self.key_events.start()
        for adapter in self.adapters.values():
            await adapter.start()
        await self.breakers.start()
        self.started = True

    async def close(self) -> None:
        """Stop: close provider connections, then write every spend record still waiting."""
        self.started = False
        for adapter in self.adapters.values():
            await _bounded(adapter.close(), "provider connections")
        if self.key_events is not None:
            await _bounded(self.key_events.aclose(), "key events")
        await _bounded(self.breakers.aclose(), "circuit breakers")
        await _bounded(self.state.aclose(), "rate windows")
        await _bounded(self.cache.aclose(), "response cache")
        await self.store.close()  # the spend flush has its own, longer bound
        if self.redis is not None:
            await _bounded(self.redis.aclose(), "Redis")

    async def key_changed(self, key_id: str) -> None:
        """A key was edited or revoked: no instance may serve its cached copy any more."""
        self.auth.forget(key_id)
        if self.key_events is not None:
            await self.key_events.publish(key_id)

    async def chat(self, raw: bytes, inbound: Inbound) -> Routed:
        """Answer one chat-completions body: a completion, or an open stream.

        Every authenticated request leaves one spend record, whether it succeeded, failed
        or was a stream (recorded when the stream closes)."""
        record = CallRecord(await self.auth.resolve(inbound.authorization), inbound.request_id)
        try:
            return await self._chat(raw, inbound, record)
        except GatewayError as error:
            record.status, record.error_code = error.status, error.code
            record.attempts, record.fallbacks = error.attempts, error.fallbacks
            await self._finish(record)
            raise
        except Unavailable as down:  # budgets, deployment quotas, breakers: README "Outages"
            error = service_unavailable(down.what)
            record.status, record.error_code = error.status, error.code
            await self._finish(record)
            raise error from down
        except asyncio.CancelledError:
            record.status, record.error_code = 499, "client_disconnected"
            self._finish_now(record)
            raise
        except Exception:
            record.status, record.error_code = 500, "internal_error"
            await self._finish(record)
            raise

    async def _chat(self, raw: bytes, inbound: Inbound, record: CallRecord) -> Routed:
        request = parse_chat_request(raw)
        del raw  # a large body is held once (parsed), not twice, while the provider works
        record.request = request
        record.job_id = job_id_of(request, inbound.job_id)
        caller = record.caller
        cache_plan = self.cache.plan(request, caller)  # also validates the cache controls
        defaults = caller.default_tags
        required = required_tags(
            request, inbound.tags, self.default_tags if defaults is None else defaults
        )
        links = plan(
            self.pool,
            request.model,
            required,
            request.prompt_tokens_estimate,
            inbound.request_id,
            request.options.fallbacks,
            request.options.disable_fallbacks,
        )
        links = allowed_links(caller, request.model, links, self.pool)
        record.limit = limit = await self.limits.admit(caller, reserve_tokens(request))
        subjects = budget_subjects(caller)
        if subjects:
            record.budget = await self.budgets.reserve(subjects, worst_case_pico(request, links))
        try:
            routed = await self._answer(request, inbound, record, links, cache_plan)
        except asyncio.CancelledError:
            # A cancelled task should not wait: give the reservations back in the background.
            _background(self._settle(record, None))
            raise
        except BaseException:
            await self._settle(record, None)  # nothing was billed for a call that failed
            raise
        if limit is not None:
            routed.headers = limit.headers()
        return routed

    async def _answer(
        self,
        request: ChatRequest,
        inbound: Inbound,
        record: CallRecord,
        links: list[Link],
        cache_plan: CachePlan | None,
    ) -> Routed:
        if cache_plan is not None:
            entry = await self.cache.lookup(cache_plan)
            if entry is not None:
                return await self._hit(request, record, entry)
        if request.stream:
            return await self._stream(request, inbound, record, links, cache_plan)
        if cache_plan is not None and cache_plan.shares_flights:
            # Identical requests in flight at once make one provider call.
            (routed, encoded), shared = await self.cache.flights.run_shared(
                cache_plan.key,
                lambda: self._complete(request, inbound, links, cache_plan, record.job_id),
            )
            if shared:
                entry = decode_entry(encoded) if encoded is not None else None
                if entry is not None:
                    return await self._hit(request, record, entry)
                # The shared answer was not cacheable (cut short, filtered): call for this one.
                routed, _ = await self._complete(request, inbound, links, None, record.job_id)
        else:
            routed, _ = await self._complete(request, inbound, links, cache_plan, record.job_id)
        routed.cache = MISS if cache_plan is not None else SKIP
        _routed_to(record, routed)
        assert routed.response is not None
        record.usage(routed.response.get("usage"))
        record.cost = routed.cost
        await self._settle(record, routed.cost, routed.deployment)
        await self._finish(record)
        return routed

    async def _complete(
        self,
        request: ChatRequest,
        inbound: Inbound,
        links: list[Link],
        cache_plan: CachePlan | None,
        job_id: str | None = None,
    ) -> tuple[Routed, bytes | None]:
        """One upstream completion, costed, and stored in the cache when allowed."""
        routed = await self.router.complete(request, links, inbound.request_id, job_id)
        assert routed.response is not None
        assert routed.deployment is not None
        usage = routed.response.get("usage")
        routed.cost = call_cost(routed.deployment.pricing, usage)
        if routed.cost is not None:
            usage["cost"] = usd(routed.cost)
        encoded = None
        if cache_plan is not None:
            encoded = await self.cache.store(
                cache_plan, routed.response, routed.cost, routed.model, routed.deployment_id
            )
        return routed, encoded

    async def _hit(
        self, request: ChatRequest, record: CallRecord, entry: CachedCompletion
    ) -> Routed:
        """A cached answer: costs 0, records what it saved."""
        routed = Routed.cached(entry.model, entry.deployment)
        routed.cost = Decimal(0)
        record.model, record.deployment = entry.model, entry.deployment
        record.cache_hit, record.saved, record.cost = True, entry.cost_usd, Decimal(0)
        response = hit_response(entry)
        if not request.stream:
            routed.response = response
            await self._settle(record, Decimal(0))
            await self._finish(record)
            return routed
        record.stream = True
        wants_usage = request.wants_usage

        async def closed(stream: ReplayStream) -> None:
            if not stream.ended:
                record.error_code = "client_disconnected"
            await self._settle(record, Decimal(0))
            await self._finish(record)

        routed.stream = ReplayStream(response, wants_usage, closed)
        return routed

    async def _stream(
        self,
        request: ChatRequest,
        inbound: Inbound,
        record: CallRecord,
        links: list[Link],
        cache_plan: CachePlan | None,
    ) -> Routed:
        record.stream = True
        wants_usage = request.wants_usage
        routed = await self.router.open_stream(request, links, inbound.request_id, record.job_id)
        routed.cache = MISS if cache_plan is not None else SKIP
        _routed_to(record, routed)
        assert routed.stream is not None
        assert routed.deployment is not None
        # A streamed answer is cached too, rebuilt from its chunks once it ends well.
        builder = CompletionBuilder() if cache_plan is not None and cache_plan.write else None

        async def closed(stream: CostedStream) -> None:
            record.usage(stream.usage)
            record.cost = stream.cost
            await self._settle(record, stream.cost, routed.deployment)
            if stream.failure is not None:
                record.error_code = "stream_interrupted"
            elif not stream.ended:
                record.error_code = "client_disconnected"
            elif builder is not None and cache_plan is not None:
                await self.cache.store(
                    cache_plan,
                    builder.completion(),
                    stream.cost,
                    routed.model,
                    routed.deployment_id,
                )
            await self._finish(record)

        routed.stream = CostedStream(
            routed.stream,
            routed.deployment.pricing,
            wants_usage,
            closed,
            builder.feed if builder is not None else None,
        )
        return routed

    async def _settle(
        self, record: CallRecord, cost: Decimal | None, deployment: Deployment | None = None
    ) -> None:
        """Replace the budget and rate-limit reservations by what the call really used; a
        deployment that answered learns how its prompt count compares with the estimate."""
        ratio = 0.0
        if deployment is not None and record.request is not None and record.prompt_tokens:
            ratio = learn_prompt_ratio(deployment, record.request, record.prompt_tokens)
        budget, record.budget = record.budget, None
        if budget is not None:
            actual = 0 if cost is None else to_pico(cost)
            if deployment is not None:
                check_reservation(self.metrics, deployment, budget.pico, actual, ratio)
            await self.budgets.settle(budget, actual)
        limit, record.limit = record.limit, None
        if limit is not None:
            await self.limits.settle(limit, record.prompt_tokens + record.completion_tokens)

    async def _spent_so_far(self, column: str, subject_id: str, since: datetime | None) -> int:
        """A budget's spend in its period, from the log (this instance's rows written first);
        bounded: a store that cannot answer is a 503 (budgets fail closed)."""
        await flushed(self.store.writer)
        return await bounded_query(self.keys.spent_pico(column, subject_id, since))

    async def _finish(self, record: CallRecord) -> None:
        row = record.row()
        self.metrics.observe(row)
        await self.store.writer.add(row)

    def _finish_now(self, record: CallRecord) -> None:
        """For a cancelled request: record without waiting (a cancelled task must not)."""
        row = record.row()
        self.metrics.observe(row)
        self.store.writer.add_nowait(row)


CLOSE_TIMEOUT_S = 5.0


async def _bounded(closing: Coroutine[Any, Any, None], what: str) -> None:
    """Shutdown must finish: a backend that does not close in time is left behind (its
    process is exiting), with a warning, rather than holding the exit up."""
    try:
        await asyncio.wait_for(closing, CLOSE_TIMEOUT_S)
    except TimeoutError:
        log.warning("shutdown: %s did not close within %.0fs; going on", what, CLOSE_TIMEOUT_S)
    except Exception as exc:
        log.warning("shutdown: closing %s failed (%s); going on", what, type(exc).__name__)


_background_tasks: set[asyncio.Task[None]] = set()


def _background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(work)
    _background_tasks.add(task)  # held until done: the loop keeps only weak references
    task.add_done_callback(_background_tasks.discard)


def _routed_to(record: CallRecord, routed: Routed) -> None:
    deployment = routed.deployment
    assert deployment is not None
    record.model = deployment.model
    record.deployment = deployment.id
    record.provider = deployment.config.provider
    record.attempts = routed.attempts
    record.fallbacks = routed.fallbacks
