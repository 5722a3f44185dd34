"""The resolved target an adapter receives: the deployment's own values over the catalog's,
built once; Claude's max_tokens and the budget's worst case read the same max output."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from nemorouter.catalog import load_catalog
from nemorouter.config import parse_config
from nemorouter.core.budget import worst_case_pico
from nemorouter.core.candidates import plan
from nemorouter.core.deployments import DeploymentPool
from nemorouter.providers import build_adapter
from nemorouter.types.money import MILLION_TOKENS, to_pico
from nemorouter.types.prices import Pricing
from nemorouter.types.request import parse_chat_request

SONNET = load_catalog()["claude-sonnet-4-5"]


def claude_pool(**deployment: Any) -> DeploymentPool:
    config = parse_config(
        {
            "settings": {"master_key": "sk-test-master-key"},
            "providers": {
                "c": {"type": "anthropic", "api_key": "sk-ant-x", "base_url": "http://x:9"}
            },
            "deployments": [
                {
                    "id": "sonnet",
                    "model": "claude-sonnet-4-5",
                    "provider": "c",
                    "provider_model": "claude-sonnet-4-5-20250929",
                    **deployment,
                }
            ],
        },
        env={},
    )
    return DeploymentPool(config, {"c": build_adapter("c", config.providers["c"], config.settings)})


def test_target_merges_the_deployment_over_the_catalog() -> None:
    catalog_only = claude_pool().by_model["claude-sonnet-4-5"][0].target
    assert catalog_only.deployment_id == "sonnet"
    assert catalog_only.provider_model == "claude-sonnet-4-5-20250929"
    assert catalog_only.model == "claude-sonnet-4-5"
    assert catalog_only.max_output_tokens == SONNET.max_output_tokens
    assert catalog_only.context_window == SONNET.context_window
    assert catalog_only.pricing == SONNET.pricing
    own = claude_pool(
        max_output_tokens=2048,
        context_window=100_000,
        pricing={"input_per_mtok": "1", "output_per_mtok": "2"},
    ).by_model["claude-sonnet-4-5"][0]
    assert own.target.max_output_tokens == own.max_output_tokens == 2048
    assert own.target.context_window == own.context_window == 100_000
    # stated prices replace the catalog's; the rest (cache reads, write multipliers) is kept
    assert (
        own.target.pricing
        == own.pricing
        == Pricing(
            Decimal(1),
            Decimal(2),
            SONNET.pricing.cached_input_per_mtok,
            (),
            Decimal("1.25"),
            Decimal(2),
        )
    )


@pytest.mark.parametrize("configured", [None, 2048])
def test_claude_max_tokens_and_the_budget_worst_case_agree(configured: int | None) -> None:
    pool = claude_pool(**({"max_output_tokens": configured} if configured else {}))
    deployment = pool.by_model["claude-sonnet-4-5"][0]
    request = parse_chat_request(
        orjson.dumps(
            {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x" * 400}]}
        )
    )
    upstream = deployment.adapter.prepare(deployment.target, request.body, {}, stream=False)
    sent = upstream.wire["max_tokens"]
    # non-streaming: the catalog's 64,000 is capped to what the default 120 s timeout allows
    # at the Anthropic SDK's pace (core/deployments.nonstreaming_default)
    assert sent == (configured or 4266)
    # the budget reserves exactly that output at the deployment's prices (and the prompt
    # as estimated under the deployment's image rule and learned correction)
    prompt = deployment.prompt_correction.apply(request.prompt_tokens_for(deployment.image_rule))
    rates = SONNET.pricing.rates(prompt)
    expected = (prompt * rates.input_per_mtok + sent * rates.output_per_mtok) / MILLION_TOKENS
    links = plan(pool, "claude-sonnet-4-5", frozenset(), prompt, "r")
    assert worst_case_pico(request, links) == to_pico(expected)
    # a client's limit wins for both
    limited = parse_chat_request(
        orjson.dumps({**request.body, "max_tokens": 300, "messages": request.body["messages"]})
    )
    upstream = deployment.adapter.prepare(deployment.target, limited.body, {}, stream=False)
    assert upstream.wire["max_tokens"] == 300
    expected = (prompt * rates.input_per_mtok + 300 * rates.output_per_mtok) / MILLION_TOKENS
    assert worst_case_pico(limited, links) == to_pico(expected)
