"""One upstream attempt inside its span (a CLIENT child of the request's span): the router
calls this instead of its bare call only when the request is traced."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from nemorouter.core import tracing
from nemorouter.core.deployments import Deployment
from nemorouter.telemetry.spans import Span
from nemorouter.types.errors import GatewayError
from nemorouter.types.upstream import UpstreamFailure

Outcome = tuple[Any, float] | UpstreamFailure


async def traced_attempt(
    parent: Span,
    deployment: Deployment,
    number: int,
    link: int,
    retry: bool,
    stream: bool,
    calling: Coroutine[Any, Any, Outcome],
) -> Outcome:
    """Await `calling` (the router's call of `deployment`) and end its span by the outcome;
    a stream's span stays open until the stream closes (it ends with its request)."""
    span = tracing.attempt_started(parent, deployment, number, link, retry)
    try:
        outcome = await calling
    except GatewayError as error:  # not encodable for the provider: nothing was sent
        tracing.attempt_broke(span, error.code)
        raise
    except asyncio.CancelledError:
        tracing.attempt_broke(span, "cancelled")
        raise
    except Exception as exc:  # the request's deadline cut it (the router's own signal)
        tracing.attempt_broke(span, getattr(exc, "trace_label", "internal_error"))
        raise
    if isinstance(outcome, UpstreamFailure):
        tracing.attempt_failed(span, outcome)
    elif stream:
        tracing.attempt_streaming(span, parent)
    else:
        tracing.attempt_answered(span, outcome[0])
    return outcome
