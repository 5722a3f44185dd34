"""After a call: learn how far the provider's prompt count ran above the estimate, and make
a budget reservation that fell short of the call's real cost visible.

A short reservation means the budget could be overshot by more than one call when many run
at once; it is logged (WARNING, with both figures in decimal USD and the prompt ratio),
counted in `nemorouter_budget_underreserved_total` / `_usd_total` by deployment, and the
deployment's correction has already learned the ratio, so the next reservations cover it.
"""

from __future__ import annotations

import logging

from nemorouter.core.deployments import Deployment
from nemorouter.core.metrics import Metrics
from nemorouter.types.money import pico_usd
from nemorouter.types.request import ChatRequest

log = logging.getLogger("nemorouter.budget")


def learn_prompt_ratio(deployment: Deployment, request: ChatRequest, reported: int) -> float:
    """Fold the reported prompt tokens into the deployment's correction; return the ratio
    of reported to estimated tokens (0 when nothing was reported, or when the estimate holds
    a PDF of unknown length: its assumed worst case says nothing about the estimator)."""
    if request.unknown_pdfs:
        return 0.0
    estimated = request.prompt_tokens_for(deployment.image_rule, deployment.pdf_page_tokens)
    return deployment.prompt_correction.observe(estimated, reported)


def check_reservation(
    metrics: Metrics,
    deployment: Deployment,
    reserved_pico: int,
    actual_pico: int,
    ratio: float,
) -> None:
    """Report a call that cost more than its budget reservation."""
    if actual_pico <= reserved_pico:
        return
    metrics.underreserved(deployment.id, actual_pico - reserved_pico)
    log.warning(
        "budget reservation too small: deployment %s cost $%s, reserved $%s; the provider "
        "counted %.2fx the estimated prompt tokens (correction now %.2fx)",
        deployment.id,
        pico_usd(actual_pico),
        pico_usd(reserved_pico),
        ratio,
        deployment.prompt_correction.factor,
    )
