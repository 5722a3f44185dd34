"""The request pipeline: auth → parse → required tags → route plan (allowed models) →
key rate limits → budget → cache → router → cost → settle → spend record.
The HTTP layer calls `chat`, nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from decimal import Decimal
from functools import partial
from typing import Any

from nemorouter.core import tracing
from nemorouter.core.access import allowed_links, budget_subjects
from nemorouter.core.answer_stream import AnswerStream
from nemorouter.core.auth import Authenticator, Caller
from nemorouter.core.budget import budget_exceeded, worst_case_pico
from nemorouter.core.cache_entry import (
    CachedCompletion,
    CompletionBuilder,
    chunks_from_completion,
    decode_entry,
)
from nemorouter.core.cache_stage import MISS, SKIP, CachePlan, CacheStage, hit_response
from nemorouter.core.call_end import CallEnd
from nemorouter.core.candidates import Link, plan
from nemorouter.core.cost import call_cost
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.documents import read_documents
from nemorouter.core.limits import KeyLimits
from nemorouter.core.metrics import Metrics
from nemorouter.core.record import CallRecord, job_id_of
from nemorouter.core.request import reserve_tokens
from nemorouter.core.routed import Routed
from nemorouter.core.router import Router
from nemorouter.core.tags import required_tags
from nemorouter.state.budgets import BudgetStore
from nemorouter.state.unavailable import Unavailable
from nemorouter.store.writer import SpendWriter
from nemorouter.telemetry.spans import Span, Tracer
from nemorouter.types.budget import BudgetRefused
from nemorouter.types.errors import GatewayError, service_unavailable
from nemorouter.types.money import usd
from nemorouter.types.request import ChatRequest, parse_chat_request


class Inbound:
    """The request headers the pipeline reads (the HTTP layer collects them)."""

    __slots__ = ("authorization", "job_id", "request_id", "tags", "traceparent")

    def __init__(
        self,
        request_id: str,
        authorization: bytes | None,
        tags: bytes | None = None,
        job_id: bytes | None = None,
        traceparent: bytes | None = None,
    ) -> None:
        self.request_id = request_id
        self.authorization = authorization
        self.tags = tags
        self.job_id = job_id
        self.traceparent = traceparent  # W3C Trace Context: the caller's trace, if any


class Pipeline:
    """Runs a request through its stages (built by nemorouter.wiring, handed in here)."""

    def __init__(
        self,
        *,
        auth: Authenticator,
        pool: DeploymentPool,
        router: Router,
        limits: KeyLimits,
        budgets: BudgetStore,
        cache: CacheStage,
        writer: SpendWriter,
        metrics: Metrics,
        default_tags: frozenset[str] = frozenset(),
        tracer: Tracer | None = None,
    ) -> None:
        self.auth = auth
        self.pool = pool
        self.router = router
        self.limits = limits
        self.budgets = budgets
        self.cache = cache
        self.default_tags = default_tags
        self.tracer = tracer  # None: tracing off, no span is ever built
        self.end = CallEnd(budgets, limits, metrics, writer)

    async def chat(self, raw: bytes, inbound: Inbound) -> Routed:
        """Answer one chat-completions body: a completion, or an open stream.

        Every authenticated request leaves one spend record, whether it succeeded, failed
        or was a stream (recorded when the stream closes)."""
        if self.tracer is None:
            record = CallRecord(await self.auth.resolve(inbound.authorization), inbound.request_id)
        else:
            record = await self._traced_record(inbound, self.tracer)
        return await self._run(raw, inbound, record)

    async def chat_as(self, caller: Caller, raw: bytes, inbound: Inbound) -> Routed:
        """`chat` for a caller already resolved (a deferred job's line run interactively:
        the job's key is known, its secret is not kept)."""
        return await self._run(raw, inbound, CallRecord(caller, inbound.request_id))

    async def _run(self, raw: bytes, inbound: Inbound, record: CallRecord) -> Routed:
        try:
            return await self._chat(raw, inbound, record)
        except GatewayError as error:
            record.status, record.error_code = error.status, error.code
            record.attempts, record.fallbacks = error.attempts, error.fallbacks
            await self.end.record(record)
            raise
        except Unavailable as down:  # budgets, quotas, breakers: docs/gateway.md "Outages"
            error = service_unavailable(down.what)
            record.status, record.error_code = error.status, error.code
            await self.end.record(record)
            raise error from down
        except asyncio.CancelledError:
            record.status, record.error_code = 499, "client_disconnected"
            self.end.record_now(record)
            raise
        except Exception:
            record.status, record.error_code = 500, "internal_error"
            await self.end.record(record)
            raise

    async def _traced_record(self, inbound: Inbound, tracer: Tracer) -> CallRecord:
        """The call's record with its span, started before the key is checked."""
        span = tracer.request_span("chat", inbound.traceparent)
        if span is not None:
            tracing.request_started(span, inbound.request_id)
        try:
            caller = await self.auth.resolve(inbound.authorization)
        except GatewayError as error:
            if span is not None:
                tracing.request_refused(span, error.status, error.code)
            raise
        except Unavailable:
            if span is not None:
                tracing.request_refused(span, 503, "service_unavailable")
            raise
        record = CallRecord(caller, inbound.request_id)
        record.span = span
        return record

    async def _chat(self, raw: bytes, inbound: Inbound, record: CallRecord) -> Routed:
        request = parse_chat_request(raw)
        del raw  # a large body is held once (parsed), not twice, while the provider works
        record.request = request
        record.job_id = job_id_of(request, inbound.job_id)
        caller = record.caller
        # The key is taken from the client's body: its file bytes and page selectors.
        cache_plan = self.cache.plan(request, caller)  # also validates the cache controls
        if request.file_parts:  # read (and a selector applied) before routing
            await read_documents(request)
        defaults = caller.default_tags
        required = required_tags(
            request, inbound.tags, self.default_tags if defaults is None else defaults
        )
        if record.span is not None:
            tracing.request_parsed(record.span, record, required, cache_plan is not None)
        links = plan(
            self.pool,
            request.model,
            required,
            request.prompt_tokens_estimate,
            inbound.request_id,
            request.options.fallbacks,
            request.options.disable_fallbacks,
            request.pdf_pages,
            request.stored_files,
        )
        links = allowed_links(caller, request.model, links, self.pool)
        record.limit = limit = await self.limits.admit(caller, reserve_tokens(request))
        subjects = budget_subjects(caller)
        if subjects:
            try:
                record.budget = await self.budgets.reserve(
                    subjects, worst_case_pico(request, links)
                )
            except BudgetRefused as refused:
                raise budget_exceeded(refused) from None
        try:
            routed = await self._answer(request, inbound, record, links, cache_plan)
        except asyncio.CancelledError:
            # A cancelled task should not wait: give the reservations back in the background.
            _background(self.end.settle(record, None))
            raise
        except BaseException:
            await self.end.settle(record, None)  # nothing was billed for a call that failed
            raise
        if limit is not None:
            routed.headers = limit.headers()
        if request.documents and request.has_pdf:  # PDF pages sent upstream (DESIGN §2.1)
            routed.headers = {**(routed.headers or {}), "x-nemo-pages": str(request.pdf_pages)}
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
                lambda: self._complete(
                    request, inbound, links, cache_plan, record.job_id, record.span
                ),
            )
            if shared:
                entry = decode_entry(encoded) if encoded is not None else None
                if entry is not None:
                    return await self._hit(request, record, entry)
                # The shared answer was not cacheable (cut short, filtered): call for this one.
                routed, _ = await self._complete(
                    request, inbound, links, None, record.job_id, record.span
                )
        else:
            routed, _ = await self._complete(
                request, inbound, links, cache_plan, record.job_id, record.span
            )
        routed.cache = MISS if cache_plan is not None else SKIP
        _routed_to(record, routed)
        assert routed.response is not None
        record.usage(routed.response.get("usage"))
        record.cost = routed.cost
        if record.span is not None:
            tracing.response_read(record.span, routed.response)
        await self.end.finished(record, routed.cost, routed.deployment)
        return routed

    async def _complete(
        self,
        request: ChatRequest,
        inbound: Inbound,
        links: list[Link],
        cache_plan: CachePlan | None,
        job_id: str | None = None,
        span: Span | None = None,
    ) -> tuple[Routed, bytes | None]:
        """One upstream completion, costed, and stored in the cache when allowed."""
        routed = await self.router.complete(request, links, inbound.request_id, job_id, span)
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
            await self.end.finished(record, Decimal(0))
            return routed
        record.stream = True
        stream = AnswerStream.replay(chunks_from_completion(response, request.wants_usage))
        stream.on_close = partial(self._stream_closed, record, None, None)
        routed.stream = stream
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
        routed = await self.router.open_stream(
            request, links, inbound.request_id, record.job_id, record.span
        )
        routed.cache = MISS if cache_plan is not None else SKIP
        _routed_to(record, routed)
        assert routed.stream is not None
        assert routed.deployment is not None
        # A streamed answer is cached too, rebuilt from its chunks once it ends well.
        builder = CompletionBuilder() if cache_plan is not None and cache_plan.write else None
        stream = routed.stream
        stream.cost_with(
            routed.deployment.pricing,
            request.wants_usage,
            builder.feed if builder is not None else None,
        )
        stream.on_close = partial(
            self._stream_closed, record, routed, None if builder is None else (cache_plan, builder)
        )
        return routed

    async def _stream_closed(
        self,
        record: CallRecord,
        routed: Routed | None,
        caching: tuple[CachePlan, CompletionBuilder] | None,
        stream: AnswerStream,
    ) -> None:
        """The end of every stream (upstream or replayed from the cache), however it ended:
        store a well-ended answer in the cache, then settle and record the call."""
        if routed is None:  # a cache hit: costs nothing
            cost: Decimal | None = Decimal(0)
        else:
            record.usage(stream.usage)
            record.cost = cost = stream.cost
        try:
            if stream.failure is not None:
                record.error_code = "stream_interrupted"
            elif not stream.ended:
                record.error_code = "client_disconnected"
            elif caching is not None and routed is not None:
                plan, builder = caching
                await self.cache.store(
                    plan, builder.completion(), cost, routed.model, routed.deployment_id
                )
        finally:  # settled and recorded whatever the cache did
            await self.end.finished(record, cost, None if routed is None else routed.deployment)


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
    if record.span is not None:
        tracing.request_routed(record.span, deployment)
