"""Send a request to a deployment: select, retry per failure class, walk the chain.

Each link (a model) is tried with its retries before the next (core/retry.py): a retry
goes to another deployment of the link when there is one, else to the same one after the
provider's hint or a backoff. A client error (4xx) ends the request; a prompt too long
for the model's context window moves on to the next link with a larger window. An open
circuit (state/breaker_memory.py) is skipped with no call. Every attempt, wait and quota queue of
a request ends at its deadline (a 504 listing the attempts so far). Each move from one
link to the next is one structured log line (request id, job id, from, to, reason).

Deployment quotas (rpm/tpm, the provider's own ceiling): a deployment is taken only with a
reservation from the quota gate. The router prefers a deployment of the link with room
now; when none has any, it waits in the FIFO queue of the one that frees up first, at most
`queue_timeout_s`, and a timeout fails the link (the chain moves on). The reservation
counts the request's token estimate and is settled with the real usage after the call
(a stream: when it is closed), or released when nothing reached the provider.

Each attempt translates the request for its deployment's adapter before it reserves quota
or takes a breaker probe: a request the provider cannot take is the client's 400, with
nothing reserved. Remote images are fetched once per request, before the first link whose
provider needs them inline, and every later attempt and link reuses them. PDFs are
rendered into page images once per (dpi, size cap), before the first link with a deployment
that reads them so (`pdf: pages`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nemorouter.core.answer_stream import peek
from nemorouter.core.candidates import Link
from nemorouter.core.deployments import Deployment
from nemorouter.core.request import reserve_tokens
from nemorouter.core.retry import RetryPolicy
from nemorouter.core.route_failures import (
    DOWN,
    all_failed,
    circuit_open,
    client_error,
    log_fallback,
)
from nemorouter.core.route_quota import reserve_in_link, settle_usage, unreserve
from nemorouter.core.route_run import DeadlineReached, Run, fetch_media, render_pdfs, translate
from nemorouter.core.route_trace import traced_attempt
from nemorouter.core.routed import Routed
from nemorouter.providers.base import UpstreamRequest
from nemorouter.state.breaker_memory import BreakerStore
from nemorouter.state.quota import QuotaGate
from nemorouter.state.types import Reservation
from nemorouter.telemetry.spans import Span
from nemorouter.types.errors import GatewayError
from nemorouter.types.request import ChatRequest
from nemorouter.types.upstream import ChunkStream, FailureKind, UpstreamFailure

log = logging.getLogger("nemorouter.router")
Call = Callable[[Deployment, UpstreamRequest], Awaitable[Any]]


class Router:
    def __init__(
        self,
        retries: int | RetryPolicy,
        breakers: BreakerStore,
        quotas: QuotaGate | None = None,
        queue_timeout_s: float = 30.0,
        *,
        deadline_s: float = math.inf,
        call_timeout_s: float = math.inf,
    ) -> None:
        self.policy = retries if isinstance(retries, RetryPolicy) else RetryPolicy(retries)
        self.breakers = breakers
        self.quotas = quotas
        self.queue_timeout_s = queue_timeout_s
        self.deadline_s = deadline_s
        # The adapters' own timeout of a call: the deadline only needs its own timer on a
        # call when less than this is left (saves a timer per request otherwise).
        self.call_timeout_s = call_timeout_s
        self._turn = 0

    def _gated(self, deployment: Deployment) -> bool:
        # A deployment without rpm/tpm costs this one call (a dict lookup), nothing else.
        return self.quotas is not None and self.quotas.gated(deployment.id)

    async def complete(
        self,
        request: ChatRequest,
        links: list[Link],
        request_id: str,
        job_id: str | None = None,
        span: Span | None = None,
    ) -> Routed:
        async def call(deployment: Deployment, upstream: UpstreamRequest) -> dict[str, Any]:
            return await deployment.adapter.complete(upstream)

        routed, response, reservation = await self._route(
            request, links, request_id, job_id, call, False, span
        )
        routed.response = response
        if reservation is not None:
            await self.settle_usage(reservation, response.get("usage"))
        return routed

    async def open_stream(
        self,
        request: ChatRequest,
        links: list[Link],
        request_id: str,
        job_id: str | None = None,
        span: Span | None = None,
    ) -> Routed:
        """A stream fails over until its first chunk arrived (nothing has reached the client
        before it); a failure after that ends the stream (the pipeline sends an error event)."""

        async def call(deployment: Deployment, upstream: UpstreamRequest) -> ChunkStream:
            return await peek(await deployment.adapter.open_stream(upstream))

        routed, stream, reservation = await self._route(
            request, links, request_id, job_id, call, True, span
        )
        stream.hold(routed.deployment, self.settle_usage, reservation)
        routed.stream = stream
        return routed

    async def settle_usage(self, reservation: Reservation, usage: Any) -> None:
        """Count the call's real tokens instead of its estimate (kept if none reported)."""
        assert self.quotas is not None
        await settle_usage(self.quotas, reservation, usage)

    def _pick(self, candidates: list[Deployment], exclude: set[str]) -> Deployment | None:
        """The least busy candidate not in `exclude` whose circuit lets a call through;
        ties rotate."""
        count = len(candidates)
        self._turn += 1
        best: Deployment | None = None
        for i in range(count):
            deployment = candidates[(self._turn + i) % count]
            if deployment.id in exclude or not self.breakers.available(deployment.id):
                continue
            if best is None or deployment.in_flight < best.in_flight:
                best = deployment
        return best

    async def _route(
        self,
        request: ChatRequest,
        links: list[Link],
        request_id: str,
        job_id: str | None,
        call: Call,
        stream: bool,
        span: Span | None = None,
    ) -> tuple[Routed, Any, Reservation | None]:
        """Try each link of the plan, each with its retries; return the first success.

        For a `stream`, the winning deployment stays counted as in flight (a stream that
        is still running); the caller releases it.
        """
        run = Run(request_id, time.monotonic() + self.deadline_s, span)
        reason = ""
        index = 0
        try:
            for index, link in enumerate(links):
                if index:
                    log_fallback(request_id, job_id, links[index - 1].model, link.model, reason)
                if run.too_small >= 0:  # only a larger context window can take the prompt
                    window = max(d.context_window for d in link.deployments)
                    if window <= run.too_small:
                        reason = f"context window {window} not larger than {run.too_small}"
                        continue
                run.link, run.link_calls = index, run.calls
                outcome = await self._link(request, link, run, call, stream)
                if isinstance(outcome, str):
                    reason = outcome
                    continue
                deployment, result, reservation, elapsed = outcome
                routed = Routed(deployment, run.calls, index)
                routed.upstream_s = run.upstream_s + elapsed
                routed.queue_s = run.queue_s
                return routed, result, reservation
        except DeadlineReached:
            error = all_failed(request.model, run.failures, self.deadline_s)
            error.attempts, error.fallbacks = run.calls, index
            raise error from None
        last = run.failures[-1] if run.failures else None
        if last is not None and last[1].kind is FailureKind.CONTEXT_WINDOW:
            error = client_error(last[1], last[0])  # no link had a larger window
        else:
            error = all_failed(request.model, run.failures)
        error.attempts, error.fallbacks = run.calls, len(links) - 1
        raise error

    async def _link(
        self,
        request: ChatRequest,
        link: Link,
        run: Run,
        call: Call,
        stream: bool,
    ) -> tuple[Deployment, Any, Reservation | None, float] | str:
        """One link with its retries: (deployment, result, reservation, seconds of the
        successful call), or why the link failed. Raises for a client error (a request
        its adapter cannot translate too) and at the deadline."""
        if (
            run.media is None
            and request.images
            and any(d.adapter.inlines_images for d in link.deployments)
        ):
            await fetch_media(request, run)
        if request.documents and request.has_pdf:
            for deployment in link.deployments:
                if deployment.renders_pdf:
                    await render_pdfs(request, deployment, run)
        tried: set[str] = set()
        lost: set[str] = set()  # half-open deployments whose probe another caller holds
        used: dict[FailureKind, int] = {}  # retries spent, per failure class
        last: UpstreamFailure | None = None
        reason = ""
        while True:
            if run.remaining() <= 0:
                raise DeadlineReached
            exclude = tried
            deployment = self._pick(link.deployments, tried)
            if deployment is None and last is not None:  # every deployment tried: wait
                wait = self.policy.wait(last, used[last.kind])
                if wait is None:
                    return f"{reason}, retry hint beyond {self.policy.max_wait_s(last.kind):g}s"
                if wait:
                    if wait >= run.remaining():
                        raise DeadlineReached
                    await asyncio.sleep(wait)
                    run.upstream_s += wait
                exclude = lost
                deployment = self._pick(link.deployments, lost)
            if deployment is None:
                if last is None:  # every circuit of this link is open: no call at all
                    for open_one in link.deployments:
                        run.failures.append((open_one, circuit_open(self.breakers.cooldown_s)))
                    return "circuit open"
                return reason
            upstream = translate(request, deployment, run, stream)  # before reserving
            reservation: Reservation | None = None
            if self._gated(deployment):  # each attempt takes its own reservation
                if run.tokens < 0:
                    run.tokens = reserve_tokens(
                        request,
                        deployment.image_rule,
                        deployment.prompt_correction,
                        deployment.pdf_page_tokens,
                    )
                timeout = min(self.queue_timeout_s, run.remaining())
                picked = deployment
                deployment, reservation, waited, refusal = await reserve_in_link(
                    self.quotas, self.breakers, link.deployments, deployment, exclude,
                    run.tokens, timeout,
                )  # fmt: skip
                run.upstream_s += waited
                run.queue_s += waited
                if refusal is not None:  # no room in time: this link has failed
                    run.failures.append((deployment, refusal))
                    log.warning(
                        "request %s: deployment %s: %s",
                        run.request_id, deployment.id, refusal.describe(),
                    )  # fmt: skip
                    return f"quota: {refusal.message}"
                if deployment is not picked:  # a sibling with room takes the call
                    try:
                        upstream = translate(request, deployment, run, stream)
                    except BaseException:
                        if reservation is not None:  # nothing was sent
                            await unreserve(self.quotas, reservation, None, request)
                        raise
            tried.add(deployment.id)
            if not await self.breakers.attempt(deployment.id):  # its probe is someone else's
                lost.add(deployment.id)
                if reservation is not None:
                    await unreserve(self.quotas, reservation, None, request)
                continue
            if run.span is None:
                outcome = await self._call(
                    request, deployment, upstream, reservation, run, call, stream
                )
            else:
                outcome = await traced_attempt(
                    run.span,
                    deployment,
                    run.calls + 1,
                    run.link,
                    run.calls > run.link_calls,
                    stream,
                    self._call(request, deployment, upstream, reservation, run, call, stream),
                )
            if not isinstance(outcome, UpstreamFailure):
                return deployment, outcome[0], reservation, outcome[1]
            kind = outcome.kind
            if kind is FailureKind.CONTEXT_WINDOW:  # same model, same window: move on
                run.too_small = deployment.context_window
                return "context window exceeded"
            if not outcome.retryable:
                raise client_error(outcome, deployment)
            last = outcome
            reason = f"{kind} {outcome.status}" if outcome.status else str(kind)
            used[kind] = used.get(kind, 0) + 1
            if used[kind] > self.policy.retries(kind):
                return reason

    async def _call(
        self,
        request: ChatRequest,
        deployment: Deployment,
        upstream: UpstreamRequest,
        reservation: Reservation | None,
        run: Run,
        call: Call,
        stream: bool,
    ) -> tuple[Any, float] | UpstreamFailure:
        """One upstream call, judged for the breaker: (result, seconds) or the failure."""
        run.calls += 1
        deployment.in_flight += 1
        remaining = run.remaining()
        started = time.perf_counter()
        began = self.breakers.clock()  # the breaker tells answers of older calls apart
        try:
            if remaining < self.call_timeout_s:  # the deadline comes first: it cuts the call
                async with asyncio.timeout(remaining):
                    result = await call(deployment, upstream)
            else:
                result = await call(deployment, upstream)
        except UpstreamFailure as failure:
            deployment.in_flight -= 1
            run.upstream_s += time.perf_counter() - started
            if reservation is not None:
                await unreserve(self.quotas, reservation, failure, request)
            run.failures.append((deployment, failure))
            if failure.kind in DOWN:
                self.breakers.failure(deployment.id, began)
            else:
                self.breakers.success(deployment.id, began)  # it answered: it is up
            log.warning(
                "request %s: deployment %s failed (attempt %d): %s",
                run.request_id, deployment.id, run.calls, failure.describe(),
            )  # fmt: skip
            return failure
        except TimeoutError:  # cut by the deadline: no verdict on the deployment
            deployment.in_flight -= 1
            run.upstream_s += time.perf_counter() - started
            self.breakers.release(deployment.id)
            cut = UpstreamFailure(FailureKind.TIMEOUT, "cut short by the request deadline")
            run.failures.append((deployment, cut))
            raise DeadlineReached from None
        except GatewayError:
            # the request could not be encoded for the provider (a 400): nothing was sent,
            # so its reservation goes back and the breaker has no verdict
            deployment.in_flight -= 1
            self.breakers.release(deployment.id)
            if reservation is not None:
                await unreserve(self.quotas, reservation, None, request)
            raise
        except BaseException:
            # cancelled mid-call: the request may have reached the provider, so
            # its reservation stays counted (nothing to await in a cancelled task)
            deployment.in_flight -= 1
            self.breakers.release(deployment.id)
            raise
        self.breakers.success(deployment.id, began)
        if not stream:  # a stream keeps its deployment counted until it is closed
            deployment.in_flight -= 1
        return result, time.perf_counter() - started
