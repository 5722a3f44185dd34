"""Send a request to a deployment: select, retry once on a retryable failure, walk the chain.

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
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

from nemorouter.core.breaker import Breakers
from nemorouter.core.candidates import Link
from nemorouter.core.deployments import Deployment
from nemorouter.core.errors import GatewayError, invalid_request
from nemorouter.core.request import ChatRequest
from nemorouter.providers.base import ChunkStream, FailureKind, UpstreamFailure
from nemorouter.state.quota import QuotaGate
from nemorouter.state.types import Decision, Reservation

log = logging.getLogger("nemorouter.router")

# Longest provider retry hint the router waits out on the same deployment; beyond it,
# the link is given up (the chain moves on, or the client gets the hint in retry-after).
MAX_RETRY_WAIT_S = 10.0
BASE_BACKOFF_S = 0.1
# Completion tokens reserved against a tpm quota when the request sets no max_tokens: a
# page's extracted fields or a classification label are tens to a few hundred tokens. The
# reservation only stands in for the real count while the call runs (it is settled with
# the reported usage), so a modest figure keeps a tpm-bound deployment busy without
# reserving the model's whole output window (65k tokens on Gemini 2.5) per request.
DEFAULT_COMPLETION_TOKENS = 512


class Routed:
    """A successful answer and how it was reached: an upstream call, or (with no
    deployment) the response cache."""

    __slots__ = (
        "attempts",
        "cache",
        "cost",
        "deployment",
        "deployment_id",
        "fallbacks",
        "headers",
        "model",
        "queue_s",
        "response",
        "stream",
        "upstream_s",
    )

    def __init__(self, deployment: Deployment | None, attempts: int, fallbacks: int) -> None:
        self.deployment = deployment
        self.model = deployment.model if deployment is not None else ""
        self.deployment_id = deployment.id if deployment is not None else ""
        self.attempts = attempts
        self.fallbacks = fallbacks
        self.upstream_s = 0.0  # provider time, retry backoffs and quota queue waits
        self.queue_s = 0.0  # of which waiting for a deployment's quota
        self.response: dict[str, Any] | None = None
        self.stream: ChunkStream | None = None
        self.cache = "SKIP"  # x-nemo-cache: HIT | MISS | SKIP
        self.headers: dict[str, str] | None = None  # more response headers (rate limits)
        self.cost: Decimal | None = None  # of a completion; a stream's is known at its end

    @classmethod
    def cached(cls, model: str, deployment_id: str) -> Routed:
        """An answer from the response cache: no call, no attempt."""
        routed = cls(None, 0, 0)
        routed.model, routed.deployment_id = model, deployment_id
        routed.cache = "HIT"
        return routed


class Router:
    def __init__(
        self,
        retries: int,
        breakers: Breakers,
        quotas: QuotaGate | None = None,
        queue_timeout_s: float = 30.0,
    ) -> None:
        self.retries = retries
        self.breakers = breakers
        self.quotas = quotas
        self.queue_timeout_s = queue_timeout_s
        self._turn = 0

    def _gated(self, deployment: Deployment) -> bool:
        # A deployment without rpm/tpm costs this one call (a dict lookup), nothing else.
        return self.quotas is not None and self.quotas.gated(deployment.id)

    async def complete(self, request: ChatRequest, links: list[Link], request_id: str) -> Routed:
        async def call(deployment: Deployment) -> dict[str, Any]:
            return await deployment.adapter.complete(deployment.config, request.body)

        routed, response, reservation = await self._route(
            request, links, request_id, call, hold=False
        )
        routed.response = response
        if reservation is not None:
            await self.settle_usage(reservation, response.get("usage"))
        return routed

    async def open_stream(self, request: ChatRequest, links: list[Link], request_id: str) -> Routed:
        async def call(deployment: Deployment) -> ChunkStream:
            return await deployment.adapter.open_stream(deployment.config, request.body)

        routed, stream, reservation = await self._route(request, links, request_id, call, hold=True)
        routed.stream = HeldStream(stream, routed.deployment, self, reservation)
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
        self, reservation: Reservation, failure: UpstreamFailure, request: ChatRequest
    ) -> None:
        """After a failed call: give the reservation back if the request never reached
        the provider; else keep the request counted (providers count failed requests) and
        only its prompt's tokens."""
        assert self.quotas is not None
        try:
            if _never_sent(failure):
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
        self, candidates: list[Deployment], first: Deployment, exclude: set[str], tokens: int
    ) -> tuple[Deployment, Reservation | None, float, UpstreamFailure | None]:
        """A deployment of the link with a quota reservation: `first` (the pick) if it has
        room, else the least busy other one with room, else, after a FIFO wait on the one
        with the shortest queue (then the earliest room), that one. Returns (deployment, reservation, seconds waited,
        failure); the failure, when set, fails the link."""
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
            return first, None, 0.0, _quota_failure(refused[0][1], None)
        # the shortest queue, then the earliest room: requests spread over the siblings'
        # queues in arrival order, so the model as a whole serves them first come first served
        target, _ = min(
            waitable, key=lambda pair: (quotas.queued(pair[0].id), pair[1].retry_after_s)
        )
        decision = await quotas.acquire(target.id, tokens, self.queue_timeout_s)
        if decision.allowed:
            return target, decision.reservation, decision.waited_s, None
        return target, None, decision.waited_s, _quota_failure(decision, decision.retry_after_s)

    async def _route(
        self,
        request: ChatRequest,
        links: list[Link],
        request_id: str,
        call: Callable[[Deployment], Awaitable[Any]],
        hold: bool,
    ) -> tuple[Routed, Any, Reservation | None]:
        """Try each link of the plan, each with its retries; return the first success.

        With `hold`, the winning deployment stays counted as in flight (a stream that
        is still running); the caller releases it.
        """
        failures: list[tuple[Deployment, UpstreamFailure]] = []
        upstream_s = queue_s = 0.0
        calls = 0  # upstream calls made (a skipped open circuit is not one)
        tokens = -1  # the quota reservation's estimate, computed once if a quota needs it
        for index, link in enumerate(links):
            tried: set[str] = set()
            for attempt in range(self.retries + 1):
                exclude = tried
                deployment = self._pick(link.deployments, tried)
                if deployment is None and tried:  # every eligible deployment tried once
                    wait = _retry_wait(failures[-1][1], attempt)
                    if wait is None:
                        break
                    if wait:
                        await asyncio.sleep(wait)
                        upstream_s += wait
                    exclude = set()
                    deployment = self._pick(link.deployments, exclude)
                if deployment is None:  # every circuit of this link is open: no call at all
                    for open_one in link.deployments:
                        failures.append((open_one, _circuit_open(self.breakers.cooldown_s)))
                    break
                reservation: Reservation | None = None
                if self._gated(deployment):  # each attempt takes its own reservation
                    if tokens < 0:
                        tokens = reserve_tokens(request)
                    deployment, reservation, waited, refusal = await self._reserve(
                        link.deployments, deployment, exclude, tokens
                    )
                    upstream_s += waited
                    queue_s += waited
                    if refusal is not None:  # no room in time: this link has failed
                        failures.append((deployment, refusal))
                        log.warning(
                            "request %s: deployment %s: %s",
                            request_id, deployment.id, refusal.describe(),
                        )  # fmt: skip
                        break
                tried.add(deployment.id)
                calls += 1
                self.breakers.attempt(deployment.id)
                deployment.in_flight += 1
                started = time.perf_counter()
                try:
                    result = await call(deployment)
                except UpstreamFailure as failure:
                    deployment.in_flight -= 1
                    upstream_s += time.perf_counter() - started
                    if reservation is not None:
                        await self._unreserve(reservation, failure, request)
                    failures.append((deployment, failure))
                    if failure.retryable:
                        self.breakers.failure(deployment.id)
                    else:
                        self.breakers.success(deployment.id)  # it answered: it is up
                    log.warning(
                        "request %s: deployment %s failed (attempt %d): %s",
                        request_id, deployment.id, len(failures), failure.describe(),
                    )  # fmt: skip
                    if not failure.retryable:
                        raise _client_error(failure, deployment) from None
                    continue
                except BaseException:
                    # cancelled mid-call: the request may have reached the provider, so
                    # its reservation stays counted (nothing to await in a cancelled task)
                    deployment.in_flight -= 1
                    raise
                self.breakers.success(deployment.id)
                if not hold:
                    deployment.in_flight -= 1
                routed = Routed(deployment, calls, index)
                routed.upstream_s = upstream_s + time.perf_counter() - started
                routed.queue_s = queue_s
                return routed, result, reservation
            if index + 1 < len(links):
                log.warning(
                    "request %s: falling back from %s to %s",
                    request_id, link.model, links[index + 1].model,
                )  # fmt: skip
        error = _all_failed(request.model, failures)
        error.attempts = calls
        error.fallbacks = len(links) - 1
        raise error


def _circuit_open(cooldown_s: float) -> UpstreamFailure:
    return UpstreamFailure(
        FailureKind.CONNECTION, f"circuit open (repeated failures; retried after {cooldown_s:g}s)"
    )


def reserve_tokens(request: ChatRequest) -> int:
    """Tokens a request reserves against a tpm quota: its prompt estimate plus the output
    it allows itself (max_completion_tokens / max_tokens), else DEFAULT_COMPLETION_TOKENS."""
    body = request.body
    out = body.get("max_completion_tokens")
    if out is None:
        out = body.get("max_tokens")
    if not isinstance(out, int) or isinstance(out, bool) or out <= 0:
        out = DEFAULT_COMPLETION_TOKENS
    return request.prompt_tokens_estimate + out


def _quota_failure(decision: Decision, retry_after: float | None) -> UpstreamFailure:
    reason = decision.reason or f"no room in {decision.limited_by}'s quota"
    return UpstreamFailure(FailureKind.QUOTA, reason, retry_after=retry_after or None)


def _never_sent(failure: UpstreamFailure) -> bool:
    """The request surely did not reach the provider: the connection could not be made
    (see providers/http.py). Anything else (a dropped connection, a timeout, an error
    status) may have been counted by the provider, so the reservation stays."""
    return failure.status is None and failure.message.startswith("cannot connect")


def _retry_wait(failure: UpstreamFailure, attempt: int) -> float | None:
    """Seconds to wait before retrying the same deployment, or None to give up on it."""
    if failure.retry_after is not None:
        return failure.retry_after if failure.retry_after <= MAX_RETRY_WAIT_S else None
    return BASE_BACKOFF_S * (2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class HeldStream:
    """An upstream stream that keeps its deployment counted in flight until closed, and
    settles its quota reservation then with the usage the stream reported.

    `aclose` is idempotent and must be called by whoever received the stream (the
    pipeline's CostedStream closes it when the response ends, however it ends)."""

    def __init__(
        self,
        stream: ChunkStream,
        deployment: Deployment,
        router: Router | None = None,
        reservation: Reservation | None = None,
    ) -> None:
        self._stream = stream
        self._deployment = deployment
        self._open = True
        self._router = router
        self._reservation = reservation
        self._usage: Any = None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        try:
            if self._reservation is None:
                async for chunk in self._stream:
                    yield chunk
            else:  # watch for the usage chunk (the pipeline asks every stream for one)
                async for chunk in self._stream:
                    usage = chunk.get("usage")
                    if usage is not None:
                        self._usage = usage
                    yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._deployment.in_flight -= 1
            try:
                await self._stream.aclose()
            finally:
                reservation, self._reservation = self._reservation, None
                if reservation is not None and self._router is not None:
                    # no usage (cut short): the estimate stays, the call did reach it
                    await self._router.settle_usage(reservation, self._usage)


def _client_error(failure: UpstreamFailure, deployment: Deployment) -> GatewayError:
    message = (
        f"The provider of deployment {deployment.id!r} rejected the request: {failure.message}"
    )
    if failure.status == 413:
        return GatewayError(413, "request_too_large", message)
    return invalid_request(message)


def _all_failed(model: str, failures: list[tuple[Deployment, UpstreamFailure]]) -> GatewayError:
    listed = "; ".join(
        f"attempt {i} {dep.id} ({dep.model}): {failure.describe()}"
        for i, (dep, failure) in enumerate(failures, 1)
    )
    last = failures[-1][1] if failures else None
    timed_out = last is not None and last.kind is FailureKind.TIMEOUT
    headers = {}
    if last is not None and last.retry_after is not None:
        headers["retry-after"] = str(max(1, round(last.retry_after)))
    return GatewayError(
        504 if timed_out else 503,
        "all_deployments_failed",
        f"Every deployment for {model!r} failed. {listed or 'No deployment was available.'}",
        headers=headers,
    )
