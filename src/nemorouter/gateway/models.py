"""`GET /v1/models`: the OpenAI model list, with each model's capabilities and prices.

Groups and `auto` are listed as models too (a client sends their names like a model's),
with every field filled in from the models they may route to, so no entry has a null the
client must special-case: `group` is the chain in order; `provider`, `deployments` and
`tags` the union over the chain; `context_window` and `max_output_tokens` the largest
(a bigger prompt skips the links whose window is smaller, as routing does); `pricing` the
highest input and output rates (what a call may cost at most, the rule budgets reserve by).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nemorouter.core.candidates import Offer
from nemorouter.core.deployments import AUTO, Deployment, DeploymentPool


def models_listing(pool: DeploymentPool, created: int, tags: frozenset[str]) -> dict[str, Any]:
    """Models (and groups, and `auto`) that have every tag in `tags` on at least one
    deployment: the same tag filter a request's route plan applies (core/candidates)."""
    offer = Offer(pool, tags)
    data = [_entry(name, deps, created) for name, deps in offer.models.items()]
    chains = dict(offer.groups)
    if offer.models and AUTO not in chains:
        chains[AUTO] = list(offer.models)  # auto: every model, in config order
    for name, chain in chains.items():
        deployments = [d for model in chain for d in offer.models[model]]
        data.append({**_entry(name, deployments, created), "group": chain})
    return {"object": "list", "data": data}


def _entry(name: str, deployments: list[Deployment], created: int) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "nemorouter",
        "provider": ",".join(dict.fromkeys(d.config.provider for d in deployments)),
        "deployments": [d.id for d in deployments],
        "tags": sorted(frozenset.union(*(d.tags for d in deployments))),
        "context_window": _largest(d.context_window for d in deployments),
        "max_output_tokens": _largest(d.max_output_tokens for d in deployments),
        "pricing": _pricing(deployments),
    }


def _largest(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v]
    return max(known) if known else None


def _pricing(deployments: list[Deployment]) -> dict[str, str] | None:
    """One model: its first deployment's rates. Several models: the highest of each rate
    (every deployment has a price: the pool refuses one without)."""
    prices = [d.pricing for d in deployments if d.pricing is not None]
    if not prices:
        return None
    models = {d.model for d in deployments}
    if len(models) == 1:
        first = prices[0]
        return {"input_per_mtok": str(first.input_per_mtok),
                "output_per_mtok": str(first.output_per_mtok)}  # fmt: skip
    return {
        "input_per_mtok": str(max(p.input_per_mtok for p in prices)),
        "output_per_mtok": str(max(p.output_per_mtok for p in prices)),
    }
