"""How the router reports what went wrong: failures it makes up itself, the errors a
client gets, and the one log line per fallback."""

from __future__ import annotations

import logging

from nemorouter.core.deployments import Deployment
from nemorouter.state.types import Decision
from nemorouter.types.errors import GatewayError, invalid_request
from nemorouter.types.upstream import FailureKind, UpstreamFailure

log = logging.getLogger("nemorouter.router")
# Judged as the deployment failing (the breaker counts them); any other answer shows it up.
# A 429 is the provider's quota speaking, which the retry hint and the quota gate handle:
# opening the circuit on a burst of them would send a whole cooldown's traffic elsewhere.
DOWN = frozenset(
    {
        FailureKind.TIMEOUT,
        FailureKind.CONNECTION,
        FailureKind.SERVER_ERROR,
        FailureKind.MALFORMED,
        FailureKind.AUTH,
    }
)


def log_fallback(
    request_id: str, job_id: str | None, source: str, target: str, reason: str
) -> None:
    """One line per fallback, with its fields also as record attributes for log shippers."""
    log.warning(
        "fallback request_id=%s job_id=%s from=%s to=%s reason=%s",
        request_id, job_id or "-", source, target, reason,
        extra={
            "request_id": request_id,
            "job_id": job_id,
            "fallback_from": source,
            "fallback_to": target,
            "fallback_reason": reason,
        },
    )  # fmt: skip


def circuit_open(cooldown_s: float) -> UpstreamFailure:
    return UpstreamFailure(
        FailureKind.CONNECTION, f"circuit open (repeated failures; retried after {cooldown_s:g}s)"
    )


def quota_failure(decision: Decision, retry_after: float | None) -> UpstreamFailure:
    reason = decision.reason or f"no room in {decision.limited_by}'s quota"
    return UpstreamFailure(FailureKind.QUOTA, reason, retry_after=retry_after or None)


def never_sent(failure: UpstreamFailure) -> bool:
    """The request surely did not reach the provider: the connection could not be made
    (see providers/http.py). Anything else (a dropped connection, a timeout, an error
    status) may have been counted by the provider, so the reservation stays."""
    return failure.status is None and failure.message.startswith("cannot connect")


def client_error(failure: UpstreamFailure, deployment: Deployment) -> GatewayError:
    message = (
        f"The provider of deployment {deployment.id!r} rejected the request: {failure.message}"
    )
    if failure.status == 413:
        return GatewayError(413, "request_too_large", message)
    return invalid_request(message)


def all_failed(
    model: str,
    failures: list[tuple[Deployment, UpstreamFailure]],
    deadline_s: float | None = None,
) -> GatewayError:
    """503 listing every attempt; 504 if the last was a timeout or the deadline ended them."""
    listed = "; ".join(
        f"attempt {i} {dep.id} ({dep.model}): {failure.describe()}"
        for i, (dep, failure) in enumerate(failures, 1)
    )
    last = failures[-1][1] if failures else None
    timed_out = deadline_s is not None or (last is not None and last.kind is FailureKind.TIMEOUT)
    headers = {}
    if last is not None and last.retry_after is not None:
        headers["retry-after"] = str(max(1, round(last.retry_after)))
    if deadline_s is not None:
        summary = f"The request deadline ({deadline_s:g}s) ended the attempts for {model!r}."
    else:
        summary = f"Every deployment for {model!r} failed."
    return GatewayError(
        504 if timed_out else 503,
        "all_deployments_failed",
        f"{summary} {listed or 'No deployment was available.'}",
        headers=headers,
    )
