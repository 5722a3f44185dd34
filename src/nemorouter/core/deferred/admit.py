"""One line of a batch through the checks an interactive request passes before any call:
parse, job id, required tags, route plan, the key's allowed models, and (for a line going to
a provider batch) the budget reservation of its worst case at the batch price.

A line goes to a provider batch when a deployment of its first link has a batch backend
and a known batch price; otherwise it runs later through the interactive pipeline, which
then applies its own budget and limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from nemorouter.core.access import allowed_links, budget_subjects
from nemorouter.core.auth import Caller
from nemorouter.core.budget import DEFAULT_MAX_OUTPUT, budget_exceeded
from nemorouter.core.candidates import Link, plan
from nemorouter.core.deployments import Deployment, DeploymentPool
from nemorouter.core.record import job_id_of
from nemorouter.core.tags import required_tags
from nemorouter.state.budgets import BudgetStore
from nemorouter.types.budget import BudgetRefused
from nemorouter.types.deferred import DeferredBackend
from nemorouter.types.errors import invalid_request
from nemorouter.types.money import MILLION_TOKENS, to_pico
from nemorouter.types.request import ChatRequest, parse_chat_request


@dataclass(slots=True)
class Admitted:
    request: ChatRequest
    job_id: str | None
    deployment: Deployment | None  # the provider batch it goes to; None: interactive
    reservation: Any = None


def parse_line(body: dict[str, Any]) -> ChatRequest:
    request = parse_chat_request(orjson.dumps(body))
    if request.stream:
        raise invalid_request("'stream' is not available in a batch.", "stream")
    return request


class LineAdmission:
    def __init__(
        self,
        pool: DeploymentPool,
        budgets: BudgetStore,
        backends: Mapping[str, DeferredBackend],
        default_tags: frozenset[str],
    ) -> None:
        self.pool = pool
        self.budgets = budgets
        self.backends = backends  # by provider name
        self.default_tags = default_tags
        self._turn = 0

    async def admit(
        self, caller: Caller, body: dict[str, Any], batch_job: str | None, request_id: str
    ) -> Admitted:
        """Raises the GatewayError an interactive request would get."""
        request = parse_line(body)
        job_id = job_id_of(request, batch_job.encode() if batch_job else None)
        defaults = caller.default_tags
        required = required_tags(request, None, self.default_tags if defaults is None else defaults)
        links = plan(
            self.pool,
            request.model,
            required,
            request.prompt_tokens_estimate,
            request_id,
            request.options.fallbacks,
            request.options.disable_fallbacks,
        )
        links = allowed_links(caller, request.model, links, self.pool)
        deployment = self._batch_deployment(request, links[0])
        admitted = Admitted(request, job_id, deployment)
        subjects = budget_subjects(caller)
        if deployment is not None and subjects:
            try:
                admitted.reservation = await self.budgets.reserve(
                    subjects, worst_case_batch_pico(request, deployment)
                )
            except BudgetRefused as refused:
                raise budget_exceeded(refused) from None
        return admitted

    def batchable(self, deployment: Deployment) -> bool:
        return deployment.batch_pricing is not None and deployment.config.provider in self.backends

    def _batch_deployment(self, request: ChatRequest, link: Link) -> Deployment | None:
        """A deployment of the first link with a batch API and price, in turn; None if none
        (or the line has remote images its provider would need fetched: interactive)."""
        fit = [d for d in link.deployments if self.batchable(d)]
        if not fit:
            return None
        if request.images and any(d.adapter.inlines_images for d in fit) and _remote(request):
            return None
        self._turn += 1
        return fit[self._turn % len(fit)]


def worst_case_batch_pico(request: ChatRequest, deployment: Deployment) -> int:
    """As core.budget.worst_case_pico, on one deployment at its batch price."""
    pricing = deployment.batch_pricing
    assert pricing is not None
    prompt = deployment.prompt_correction.apply(request.prompt_tokens_for(deployment.image_rule))
    output = request.max_output or deployment.target.default_max_tokens(False) or DEFAULT_MAX_OUTPUT
    rates = pricing.rates(prompt)
    cost = (prompt * rates.input_per_mtok + output * rates.output_per_mtok) / MILLION_TOKENS
    return to_pico(Decimal(cost))


def _remote(request: ChatRequest) -> bool:
    for message in request.body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            url = (part.get("image_url") or {}).get("url") if isinstance(part, dict) else None
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                return True
    return False
