"""`GET /v1/models`: the OpenAI model list, with each model's capabilities and prices."""

from __future__ import annotations

from typing import Any

from nemorouter.core.deployments import Deployment, DeploymentPool


def models_listing(pool: DeploymentPool, created: int, tags: frozenset[str]) -> dict[str, Any]:
    """Models (and groups) that have every tag in `tags` on at least one deployment."""
    offered = {
        name: deps for name, deps in pool.by_model.items() if any(tags <= d.tags for d in deps)
    }
    data = [_model_entry(name, deps, created) for name, deps in offered.items()]
    for name, chain in pool.groups.items():
        if any(model in offered for model in chain):
            data.append(
                {"id": name, "object": "model", "created": created, "owned_by": "nemorouter",
                 "group": [model for model in chain if model in offered]}
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
