"""Send a request to a deployment: select, retry once on a retryable failure, walk the chain.

Circuit breakers, cooldowns and per-request fallback overrides arrive with the failover
issue; this module is where they plug in.
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

log = logging.getLogger("nemorouter.router")

# Longest provider retry hint the router waits out on the same deployment; beyond it,
# the link is given up (the chain moves on, or the client gets the hint in retry-after).
MAX_RETRY_WAIT_S = 10.0
BASE_BACKOFF_S = 0.1


class Routed:
    """A successful upstream call and how it was reached."""

    __slots__ = ("attempts", "cost", "deployment", "fallbacks", "response", "stream", "upstream_s")

    def __init__(self, deployment: Deployment, attempts: int, fallbacks: int) -> None:
        self.deployment = deployment
        self.attempts = attempts
        self.fallbacks = fallbacks
        self.upstream_s = 0.0
        self.response: dict[str, Any] | None = None
        self.stream: ChunkStream | None = None
        self.cost: Decimal | None = None  # of a completion; a stream's is known at its end


class Router:
    def __init__(self, retries: int, breakers: Breakers) -> None:
        self.retries = retries
        self.breakers = breakers
        self._turn = 0

    async def complete(self, request: ChatRequest, links: list[Link], request_id: str) -> Routed:
        async def call(deployment: Deployment) -> dict[str, Any]:
            return await deployment.adapter.complete(deployment.config, request.body)

        routed, response = await self._route(request, links, request_id, call, hold=False)
        routed.response = response
        return routed

    async def open_stream(self, request: ChatRequest, links: list[Link], request_id: str) -> Routed:
        async def call(deployment: Deployment) -> ChunkStream:
            return await deployment.adapter.open_stream(deployment.config, request.body)

        routed, stream = await self._route(request, links, request_id, call, hold=True)
        routed.stream = HeldStream(stream, routed.deployment)
        return routed

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
        call: Callable[[Deployment], Awaitable[Any]],
        hold: bool,
    ) -> tuple[Routed, Any]:
        """Try each link of the plan, each with its retries; return the first success.

        With `hold`, the winning deployment stays counted as in flight (a stream that
        is still running); the caller releases it.
        """
        failures: list[tuple[Deployment, UpstreamFailure]] = []
        upstream_s = 0.0
        calls = 0  # upstream calls made (a skipped open circuit is not one)
        for index, link in enumerate(links):
            tried: set[str] = set()
            for attempt in range(self.retries + 1):
                deployment = self._pick(link.deployments, tried)
                if deployment is None and tried:  # every eligible deployment tried once
                    wait = _retry_wait(failures[-1][1], attempt)
                    if wait is None:
                        break
                    if wait:
                        await asyncio.sleep(wait)
                        upstream_s += wait
                    deployment = self._pick(link.deployments, set())
                if deployment is None:  # every circuit of this link is open: no call at all
                    for open_one in link.deployments:
                        failures.append((open_one, _circuit_open(self.breakers.cooldown_s)))
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
                    deployment.in_flight -= 1
                    raise
                self.breakers.success(deployment.id)
                if not hold:
                    deployment.in_flight -= 1
                routed = Routed(deployment, calls, index)
                routed.upstream_s = upstream_s + time.perf_counter() - started
                return routed, result
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


def _retry_wait(failure: UpstreamFailure, attempt: int) -> float | None:
    """Seconds to wait before retrying the same deployment, or None to give up on it."""
    if failure.retry_after is not None:
        return failure.retry_after if failure.retry_after <= MAX_RETRY_WAIT_S else None
    return BASE_BACKOFF_S * (2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class HeldStream:
    """An upstream stream that keeps its deployment counted in flight until closed.

    `aclose` is idempotent and must be called by whoever received the stream."""

    def __init__(self, stream: ChunkStream, deployment: Deployment) -> None:
        self._stream = stream
        self._deployment = deployment
        self._open = True

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        try:
            async for chunk in self._stream:
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._deployment.in_flight -= 1
            await self._stream.aclose()


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
