"""What the router hands back: the answer (or the open stream) and how it was reached."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nemorouter.core.answer_stream import AnswerStream
from nemorouter.core.deployments import Deployment


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
        self.stream: AnswerStream | None = None
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
