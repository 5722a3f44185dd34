"""The route plan: which deployments may serve a request, link by link of its chain.

`auto`, model names and group names all go through the same filter: a deployment is
eligible only if it has every required tag and its context window holds the prompt (PDF
pages counted at the deployment's own tokens per page). A
link (model) with no eligible deployment is skipped and logged; a plan with no link left
is a 400 `tag_mismatch`, never a call to any provider.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from nemorouter.core.deployments import AUTO, Deployment, DeploymentPool
from nemorouter.types.errors import GatewayError, invalid_request, model_not_found

log = logging.getLogger("nemorouter.routing")


class Link:
    """One model of the chain and its deployments eligible for this request."""

    __slots__ = ("deployments", "model")

    def __init__(self, model: str, deployments: list[Deployment]) -> None:
        self.model = model
        self.deployments = deployments


def has_tags(deployment: Deployment, required: frozenset[str]) -> bool:
    """The tag half of eligibility: what /v1/models filters on, before any prompt exists."""
    return required <= deployment.tags


def eligible(
    deployment: Deployment,
    required: frozenset[str],
    prompt_tokens: int,
    pdf_pages: int = 0,
    stored_files: bool = False,
) -> bool:
    if stored_files and not deployment.reads_gcs:
        return False
    window = deployment.context_window
    if pdf_pages:
        prompt_tokens += pdf_pages * deployment.pdf_page_tokens
    return has_tags(deployment, required) and (not window or prompt_tokens <= window)


class Offer:
    """The models (with all their deployments) and the groups (with their models) that
    have at least one deployment with every tag in `required`."""

    __slots__ = ("groups", "models")

    def __init__(self, pool: DeploymentPool, required: frozenset[str]) -> None:
        self.models = {
            name: deployments
            for name, deployments in pool.by_model.items()
            if any(has_tags(d, required) for d in deployments)
        }
        offered = {
            name: [model for model in chain if model in self.models]
            for name, chain in pool.groups.items()
        }
        self.groups = {name: chain for name, chain in offered.items() if chain}


def plan(
    pool: DeploymentPool,
    name: str,
    required: frozenset[str],
    prompt_tokens: int,
    request_id: str,
    fallbacks: list[str] | None = None,
    disable_fallbacks: bool = False,
    pdf_pages: int = 0,
    stored_files: bool = False,
) -> list[Link]:
    chain = _chain(pool, name, fallbacks, disable_fallbacks)
    links: list[Link] = []
    skipped: list[tuple[str, str]] = []
    for model in chain:
        deployments = pool.by_model[model]
        fit = [
            d for d in deployments if eligible(d, required, prompt_tokens, pdf_pages, stored_files)
        ]
        if fit:
            links.append(Link(model, fit))
            continue
        reason = _why_not(deployments, required, prompt_tokens, pdf_pages, stored_files)
        skipped.append((model, reason))
        if name in pool.groups:  # a configured chain lost a link: worth an operator's eye
            log.info("request %s: skipping %s in %s: %s", request_id, model, name, reason)
        elif name != model:  # `auto` skips whatever lacks the tags, routinely
            log.debug("request %s: skipping %s in auto: %s", request_id, model, reason)
    if not links:
        raise _mismatch(pool, name, required, prompt_tokens, skipped, pdf_pages, stored_files)
    return links


def _chain(
    pool: DeploymentPool, name: str, fallbacks: list[str] | None, disable: bool
) -> list[str]:
    """The configured chain for `name`, or its first link followed by the request's own
    `fallbacks` (which override the configured ones), or only the first link. Their types
    were checked at the edge (types/options.py); the names are checked here."""
    chain = pool.chain(name)
    if chain is None:
        raise model_not_found(name, pool.names)
    if disable:
        return chain[:1]
    if fallbacks is None:
        return chain
    unknown = [m for m in fallbacks if m not in pool.by_model]
    if unknown:
        raise invalid_request(
            f"'fallbacks' names unknown models {unknown}; configured: {', '.join(pool.by_model)}.",
            "fallbacks",
        )
    return list(dict.fromkeys([chain[0], *fallbacks]))


def _why_not(
    deployments: list[Deployment],
    required: frozenset[str],
    prompt_tokens: int,
    pdf_pages: int,
    stored_files: bool,
) -> str:
    missing = required - frozenset.union(*(d.tags for d in deployments))
    if missing:
        return f"lacks {_names(missing)}"
    if stored_files and not any(d.reads_gcs for d in deployments):
        return "cannot read gs:// files (only Vertex AI deployments do)"
    if any(has_tags(d, required) for d in deployments):
        windows = max(d.context_window for d in deployments)
        pages = f" with {pdf_pages} PDF pages" if pdf_pages else ""
        return (
            f"its context window ({windows} tokens) cannot hold the prompt (~{prompt_tokens} "
            f"tokens{pages})"
        )
    return f"no single deployment has all of {_names(required)}"


def _mismatch(
    pool: DeploymentPool,
    name: str,
    required: frozenset[str],
    prompt_tokens: int,
    skipped: list[tuple[str, str]],
    pdf_pages: int = 0,
    stored_files: bool = False,
) -> GatewayError:
    would = [
        model
        for model, deployments in pool.by_model.items()
        if any(eligible(d, required, prompt_tokens, pdf_pages, stored_files) for d in deployments)
    ]
    offer = (
        f"Models that would: {', '.join(would)}."
        if would
        else "No configured model satisfies them."
    )
    if name in pool.by_model:
        detail = f"model {name!r} {skipped[0][1]}"
    else:
        what = "the whole catalog (auto)" if name == AUTO else f"group {name!r}"
        detail = f"no model of {what} qualifies: " + "; ".join(f"{m} {r}" for m, r in skipped)
    return GatewayError(
        400,
        "tag_mismatch",
        f"The request needs {_names(required) or 'no tags'} (~{prompt_tokens} prompt tokens); "
        f"{detail}. {offer}",
        param="tags",
    )


def _names(tags: Iterable[str]) -> str:
    return "[" + ", ".join(sorted(tags)) + "]"
