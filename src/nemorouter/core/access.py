"""What a virtual key may use: its allowed models, and the budgets it answers to."""

from __future__ import annotations

from nemorouter.core.auth import Caller
from nemorouter.core.candidates import Link
from nemorouter.core.deployments import DeploymentPool
from nemorouter.types.budget import BudgetSubject
from nemorouter.types.errors import GatewayError


def allowed_links(
    caller: Caller, requested: str, links: list[Link], pool: DeploymentPool
) -> list[Link]:
    """The plan's links the key may use. A key may list models, groups (standing for their
    models) or `auto` (every model); a request naming a model it may not use is refused,
    and other links (fallbacks) it may not use are dropped."""
    key = caller.key
    if key is None or key.models is None:
        return links
    allowed: set[str] = set()
    for name in key.models:
        allowed.update(pool.chain(name) or (name,))
    kept = [link for link in links if link.model in allowed]
    named_model = requested in pool.by_model
    if not kept or (named_model and requested not in allowed):
        raise GatewayError(
            403,
            "model_not_allowed",
            f"This API key may not use {requested!r} (allowed: {', '.join(sorted(key.models))}).",
            param="model",
        )
    return kept


def budget_subjects(caller: Caller) -> list[BudgetSubject]:
    """The key's budget and its team's, where set; a call must fit both."""
    subjects = []
    key, team = caller.key, caller.team
    if key is not None and key.budget_pico is not None:
        subjects.append(
            BudgetSubject("key_id", key.id, f"key {key.name!r}", key.budget_pico, key.budget_period)
        )
    if team is not None and team.budget_pico is not None:
        subjects.append(
            BudgetSubject(
                "team_id", team.id, f"team {team.name!r}", team.budget_pico, team.budget_period
            )
        )
    return subjects
