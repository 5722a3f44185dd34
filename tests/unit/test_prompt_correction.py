"""The per-deployment prompt correction: rises at once, decays slowly, never below 1; the
budget's worst case follows it; a call costing more than its reservation is visible."""

from __future__ import annotations

import logging
from decimal import Decimal

import orjson
import pytest

from nemorouter.config import parse_config
from nemorouter.core.budget import worst_case_pico
from nemorouter.core.candidates import plan
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.metrics import Metrics
from nemorouter.core.prompt_correction import DECAY, MAX_FACTOR, PromptCorrection
from nemorouter.core.request import reserve_tokens
from nemorouter.core.reservation_check import check_reservation, learn_prompt_ratio
from nemorouter.types.money import to_pico
from nemorouter.types.request import parse_chat_request


def test_rises_at_once_and_decays_slowly_never_below_one() -> None:
    correction = PromptCorrection()
    assert correction.apply(100) == 100
    assert correction.observe(100, 300) == 3.0
    assert correction.factor == 3.0 and correction.apply(100) == 300
    correction.observe(100, 100)  # one call at the estimate: a small step down only
    assert correction.factor == pytest.approx(3.0 - 2.0 * DECAY)
    for _ in range(2000):
        correction.observe(100, 50)  # reported below the estimate: the floor is 1
    assert correction.factor == 1.0
    correction.observe(100, 250)
    assert correction.factor == 2.5


def test_nothing_reported_teaches_nothing_and_absurd_reports_are_capped() -> None:
    correction = PromptCorrection()
    assert correction.observe(0, 100) == 0.0 and correction.observe(100, 0) == 0.0
    assert correction.factor == 1.0
    correction.observe(10, 10**13)
    assert correction.factor == MAX_FACTOR


def _pool() -> DeploymentPool:
    config = parse_config(
        {
            "settings": {"master_key": "sk-test-master-key-0123456789"},
            "providers": {"p": {"type": "openai-compatible", "base_url": "http://x:9/v1"}},
            "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "p"}],
        },
        env={},
    )
    return DeploymentPool(config, {"p": object()})  # type: ignore[dict-item]


def test_worst_case_and_tpm_reservation_follow_the_learned_ratio() -> None:
    pool = _pool()
    body = {"model": "gemini-2.5-flash", "max_tokens": 500, "messages": [
        {"role": "user", "content": "x" * 2993}]}  # fmt: skip
    request = parse_chat_request(orjson.dumps(body))
    links = plan(pool, "gemini-2.5-flash", frozenset(), 0, "r")
    deployment = links[0].deployments[0]
    estimated = request.prompt_tokens_for(deployment.image_rule)
    assert estimated == 998 + 4 + 3
    price = (Decimal(estimated) * Decimal("0.30") + 500 * Decimal("2.50")) / 1_000_000
    assert worst_case_pico(request, links) == to_pico(price)

    assert learn_prompt_ratio(deployment, request, 3 * estimated + 15) > 3
    corrected = deployment.prompt_correction.apply(estimated)
    assert corrected >= 3 * estimated + 15
    price = (Decimal(corrected) * Decimal("0.30") + 500 * Decimal("2.50")) / 1_000_000
    assert worst_case_pico(request, links) == to_pico(price)
    tpm = reserve_tokens(request, deployment.image_rule, deployment.prompt_correction)
    assert tpm == corrected + 500


def test_a_call_over_its_reservation_is_logged_counted_and_in_usd(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deployment = _pool().by_model["gemini-2.5-flash"][0]
    metrics = Metrics()
    with caplog.at_level(logging.WARNING, "nemorouter.budget"):
        check_reservation(metrics, deployment, 1_000_000, 1_000_000, 1.0)  # covered: quiet
        assert not caplog.records
        deployment.prompt_correction.observe(100, 340)
        check_reservation(metrics, deployment, 1_250_000, 4_000_000, 3.4)
    (line,) = caplog.records
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert "flash" in message and "$0.000004" in message and "$0.00000125" in message
    assert "3.40x" in message
    text = metrics.render().decode()
    assert 'nemorouter_budget_underreserved_total{deployment="flash"} 1.0' in text
    assert 'nemorouter_budget_underreserved_usd_total{deployment="flash"} 2.75e-06' in text
