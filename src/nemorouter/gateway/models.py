"""`GET /v1/models`: the OpenAI model list, with each model's capabilities and prices."""

from __future__ import annotations

from typing import Any

from nemorouter.core.candidates import Offer
from nemorouter.core.deployments import Deployment, DeploymentPool


def models_listing(pool: DeploymentPool, created: int, tags: frozenset[str]) -> dict[str, Any]:
    """Models (and groups) that have every tag in `tags` on at least one deployment: the
    same tag filter a request's route plan applies (core/candidates)."""
    offer = Offer(pool, tags)
    data = [_model_entry(name, deps, created) for name, deps in offer.models.items()]
    for name, chain in offer.groups.items():
        data.append(
            {"id": name, "object": "model", "created": created, "owned_by": "nemorouter",
             "group": chain}
        )  # fmt: skip
    return {"object": "list", "data": data}


def _model_entry(name: str, deployments: list[Deployment], created: int) -> dict[str, Any]:
    first = deployments[0]
    pricing = first.pricing
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "nemorouter",
        "provider": ",".join(dict.fromkeys(d.config.provider for d in deployments)),
        "deployments": [d.id for d in deployments],
        "tags": sorted(frozenset.union(*(d.tags for d in deployments))),
        "context_window": first.context_window,
        "max_output_tokens": first.max_output_tokens,
        "pricing": None
        if pricing is None
        else {
            "input_per_mtok": str(pricing.input_per_mtok),
            "output_per_mtok": str(pricing.output_per_mtok),
        },
    }
