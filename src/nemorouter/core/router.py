"""Send a request to a deployment: select, retry per failure class, walk the chain.

Each link (a model) is tried with its retries before the next (core/retry.py): a retry
goes to another deployment of the link when there is one, else to the same one after the
provider's hint or a backoff. A client error (4xx) ends the request; a prompt too long
for the model's context window moves on to the next link with a larger window. An open
circuit (core/breaker.py) is skipped with no call. Every attempt, wait and quota queue of
a request ends at its deadline (a 504 listing the attempts so far). Each move from one
link to the next is one structured log line (request id, job id, from, to, reason).

Deployment quotas (rpm/tpm, the provider's own ceiling): a deployment is taken only with a
reservation from the quota gate. The router prefers a deployment of the link with room
now; when none has any, it waits in the FIFO queue of the one that frees up first, at most
`queue_timeout_s`, and a timeout fails the link (the chain moves on). The reservation
counts the request's token estimate and is settled with the real usage after the call
(a stream: when it is closed), or released when nothing reached the provider.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nemorouter.core.breaker import BreakerStore
from nemorouter.core.candidates import Link
from nemorouter.core.deployments import Deployment
from nemorouter.core.request import ChatRequest, reserve_tokens
from nemorouter.core.retry import RetryPolicy
from nemorouter.core.route_failures import (
    DOWN,
    all_failed,
    circuit_open,
    client_error,
    log_fallback,
    never_sent,
    quota_failure,
)
from nemorouter.core.routed import HeldStream, Routed, peek
from nemorouter.providers.base import ChunkStream, FailureKind, UpstreamFailure
from nemorouter.state.quota import QuotaGate
from nemorouter.state.types import Reservation

log = logging.getLogger("nemorouter.router")


class _DeadlineReached(Exception):
    """The request's deadline ended its attempts."""


class _Run:
    """What one request's route has done so far."""

    __slots__ = (
        "calls",
        "deadline",
        "failures",
        "queue_s",
        "request_id",
        "tokens",
        "too_small",
        "upstream_s",
    )

    def __init__(self, request_id: str, deadline: float) -> None:
        self.request_id = request_id
        self.deadline = deadline
        self.failures: list[tuple[Deployment, UpstreamFailure]] = []
        self.upstream_s = 0.0  # provider time, retry backoffs and quota queue waits
        self.queue_s = 0.0
        self.calls = 0  # upstream calls made (a skipped open circuit is not one)
        self.tokens = -1  # the quota reservation's estimate, computed once if a quota needs it
        self.too_small = -1  # context window that refused the prompt (-1: none did)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


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
        self, request: ChatRequest, links: list[Link], request_id: str, job_id: str | None = None
    ) -> Routed:
        async def call(deployment: Deployment) -> dict[str, Any]:
            return await deployment.adapter.complete(deployment.config, request.body)

        routed, response, reservation = await self._route(
            request, links, request_id, job_id, call, hold=False
        )
        routed.response = response
        if reservation is not None:
            await self.settle_usage(reservation, response.get("usage"))
        return routed

    async def open_stream(
        self, request: ChatRequest, links: list[Link], request_id: str, job_id: str | None = None
    ) -> Routed:
        """A stream fails over until its first chunk arrived (nothing has reached the client
        before it); a failure after that ends the stream (the pipeline sends an error event)."""

        async def call(deployment: Deployment) -> ChunkStream:
            return await peek(await deployment.adapter.open_stream(deployment.config, request.body))

        routed, stream, reservation = await self._route(
            request, links, request_id, job_id, call, hold=True
        )
        routed.stream = HeldStream(stream, routed.deployment, self.settle_usage, reservation)
        return routed

    async def settle_usage(self, reservation: Reservation, usage: Any) -> None:
        """Count the call's real tokens instead of its estimate (kept if none reported)."""
        assert self.quotas is not None
        if not isinstance(usage, dict):
            return
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return
        try:
            await self.quotas.settle(reservation, prompt + completion)
        except Exception:  # the answer is already here: a state hiccup must not lose it
            log.exception("settling quota reservation %s failed", reservation.id)

    async def _unreserve(
        self, reservation: Reservation, failure: UpstreamFailure | None, request: ChatRequest
    ) -> None:
        """After a failed call: give the reservation back if the request never reached
        the provider (or no call was made: `failure` None); else keep the request counted
        (providers count failed requests) and only its prompt's tokens."""
        assert self.quotas is not None
        try:
            if failure is None or never_sent(failure):
                await self.quotas.release(reservation)
            else:
                await self.quotas.settle(reservation, request.prompt_tokens_estimate)
        except Exception:
            log.exception("returning quota reservation %s failed", reservation.id)

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

    async def _reserve(
        self,
        candidates: list[Deployment],
        first: Deployment,
        exclude: set[str],
        tokens: int,
        timeout_s: float,
    ) -> tuple[Deployment, Reservation | None, float, UpstreamFailure | None]:
        """A deployment of the link with a quota reservation: `first` (the pick) if it has
        room, else the least busy other one with room, else, after a FIFO wait of at most
        `timeout_s` on the one with the shortest queue (then the earliest room), that one.
        Returns (deployment, reservation, seconds waited, failure); the failure, when
        set, fails the link."""
        quotas = self.quotas
        assert quotas is not None
        decision = await quotas.try_acquire(first.id, tokens)
        if decision.allowed:
            return first, decision.reservation, 0.0, None
        refused = [(first, decision)]
        others = [
            d
            for d in candidates
            if d is not first and d.id not in exclude and self.breakers.available(d.id)
        ]
        others.sort(key=lambda d: d.in_flight)  # stable: keeps the link's order on ties
        for other in others:
            if not quotas.gated(other.id):
                return other, None, 0.0, None
            decision = await quotas.try_acquire(other.id, tokens)
            if decision.allowed:
                return other, decision.reservation, 0.0, None
            refused.append((other, decision))
        waitable = [(d, dec) for d, dec in refused if not dec.never]
        if not waitable:  # too large for every quota: waiting cannot help
            return first, None, 0.0, quota_failure(refused[0][1], None)
        # the shortest queue, then the earliest room: requests spread over the siblings'
        # queues in arrival order, so the model as a whole serves them first come first served
        target, _ = min(
            waitable, key=lambda pair: (quotas.queued(pair[0].id), pair[1].retry_after_s)
        )
        decision = await quotas.acquire(target.id, tokens, max(timeout_s, 0.0))
        if decision.allowed:
            return target, decision.reservation, decision.waited_s, None
        return target, None, decision.waited_s, quota_failure(decision, decision.retry_after_s)

    async def _route(
        self,
        request: ChatRequest,
        links: list[Link],
        request_id: str,
        job_id: str | None,
        call: Callable[[Deployment], Awaitable[Any]],
        hold: bool,
    ) -> tuple[Routed, Any, Reservation | None]:
        """Try each link of the plan, each with its retries; return the first success.

        With `hold`, the winning deployment stays counted as in flight (a stream that
        is still running); the caller releases it.
        """
        run = _Run(request_id, time.monotonic() + self.deadline_s)
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
                outcome = await self._link(request, link, run, call, hold)
                if isinstance(outcome, str):
                    reason = outcome
                    continue
                deployment, result, reservation, elapsed = outcome
                routed = Routed(deployment, run.calls, index)
                routed.upstream_s = run.upstream_s + elapsed
                routed.queue_s = run.queue_s
                return routed, result, reservation
        except _DeadlineReached:
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
        run: _Run,
        call: Callable[[Deployment], Awaitable[Any]],
        hold: bool,
    ) -> tuple[Deployment, Any, Reservation | None, float] | str:
        """One link with its retries: (deployment, result, reservation, seconds of the
        successful call), or why the link failed. Raises for a client error and at the
        deadline."""
        tried: set[str] = set()
        lost: set[str] = set()  # half-open deployments whose probe another caller holds
        used: dict[FailureKind, int] = {}  # retries spent, per failure class
        last: UpstreamFailure | None = None
        reason = ""
        while True:
            if run.remaining() <= 0:
                raise _DeadlineReached
            exclude = tried
            deployment = self._pick(link.deployments, tried)
            if deployment is None and last is not None:  # every deployment tried: wait
                wait = self.policy.wait(last, used[last.kind])
                if wait is None:
                    return f"{reason}, retry hint beyond {self.policy.max_wait_s(last.kind):g}s"
                if wait:
                    if wait >= run.remaining():
                        raise _DeadlineReached
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
            reservation: Reservation | None = None
            if self._gated(deployment):  # each attempt takes its own reservation
                if run.tokens < 0:
                    run.tokens = reserve_tokens(
                        request, deployment.image_rule, deployment.prompt_correction
                    )
                timeout = min(self.queue_timeout_s, run.remaining())
                deployment, reservation, waited, refusal = await self._reserve(
                    link.deployments, deployment, exclude, run.tokens, timeout
                )
                run.upstream_s += waited
                run.queue_s += waited
                if refusal is not None:  # no room in time: this link has failed
                    run.failures.append((deployment, refusal))
                    log.warning(
                        "request %s: deployment %s: %s",
                        run.request_id, deployment.id, refusal.describe(),
                    )  # fmt: skip
                    return f"quota: {refusal.message}"
            tried.add(deployment.id)
            if not await self.breakers.attempt(deployment.id):  # its probe is someone else's
                lost.add(deployment.id)
                if reservation is not None:
                    await self._unreserve(reservation, None, request)
                continue
            outcome = await self._call(request, deployment, reservation, run, call, hold)
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
        reservation: Reservation | None,
        run: _Run,
        call: Callable[[Deployment], Awaitable[Any]],
        hold: bool,
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
                    result = await call(deployment)
            else:
                result = await call(deployment)
        except UpstreamFailure as failure:
            deployment.in_flight -= 1
            run.upstream_s += time.perf_counter() - started
            if reservation is not None:
                await self._unreserve(reservation, failure, request)
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
            raise _DeadlineReached from None
        except BaseException:
            # cancelled mid-call: the request may have reached the provider, so
            # its reservation stays counted (nothing to await in a cancelled task)
            deployment.in_flight -= 1
            self.breakers.release(deployment.id)
            raise
        self.breakers.success(deployment.id, began)
        if not hold:
            deployment.in_flight -= 1
        return result, time.perf_counter() - started
