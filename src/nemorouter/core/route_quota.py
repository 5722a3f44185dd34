"""Deployment quota reservations of the router's attempts: taken for one attempt of a chain
link (the picked deployment if it has room, else a sibling of the link with room, else a
bounded FIFO wait), then settled with the real usage or given back."""

from __future__ import annotations

import logging
from typing import Any

from nemorouter.core.deployments import Deployment
from nemorouter.core.route_failures import never_sent, quota_failure
from nemorouter.state.breaker_memory import BreakerStore
from nemorouter.state.quota import QuotaGate
from nemorouter.state.types import Reservation
from nemorouter.types.request import ChatRequest
from nemorouter.types.upstream import UpstreamFailure

log = logging.getLogger("nemorouter.router")


async def reserve_in_link(
    quotas: QuotaGate | None,
    breakers: BreakerStore,
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
    assert quotas is not None
    decision = await quotas.try_acquire(first.id, tokens)
    if decision.allowed:
        return first, decision.reservation, 0.0, None
    refused = [(first, decision)]
    others = [
        d for d in candidates if d is not first and d.id not in exclude and breakers.available(d.id)
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
    target, _ = min(waitable, key=lambda pair: (quotas.queued(pair[0].id), pair[1].retry_after_s))
    decision = await quotas.acquire(target.id, tokens, max(timeout_s, 0.0))
    if decision.allowed:
        return target, decision.reservation, decision.waited_s, None
    return target, None, decision.waited_s, quota_failure(decision, decision.retry_after_s)


async def settle_usage(quotas: QuotaGate, reservation: Reservation, usage: Any) -> None:
    """Count the call's real tokens instead of its estimate (kept if none reported)."""
    if not isinstance(usage, dict):
        return
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return
    try:
        await quotas.settle(reservation, prompt + completion)
    except Exception:  # the answer is already here: a state hiccup must not lose it
        log.exception("settling quota reservation %s failed", reservation.id)


async def unreserve(
    quotas: QuotaGate | None,
    reservation: Reservation,
    failure: UpstreamFailure | None,
    request: ChatRequest,
) -> None:
    """After a failed or unmade call: give the reservation back if the request never
    reached the provider (`failure` None: no call was made); else keep the request counted
    (providers count failed requests) and only its prompt's tokens."""
    assert quotas is not None
    try:
        if failure is None or never_sent(failure):
            await quotas.release(reservation)
        else:
            await quotas.settle(reservation, request.prompt_tokens_estimate)
    except Exception:
        log.exception("returning quota reservation %s failed", reservation.id)
