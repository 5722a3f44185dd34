"""Property: over random catalogs, configs and requests, a request only ever reaches a
deployment that has every tag it needs, through any fallback link; otherwise it is a
400 and no provider is called at all."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nemorouter.catalog import CAPABILITIES
from nemorouter.config import parse_config
from nemorouter.core.candidates import plan
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.router import Router
from nemorouter.state.breaker_memory import Breakers
from nemorouter.types.errors import GatewayError
from nemorouter.types.request import ChatRequest
from nemorouter.types.target import Target
from nemorouter.types.upstream import FailureKind, UpstreamFailure

TAGS = [*sorted(CAPABILITIES - {"long-context"}), "eu", "cheap"]


class FlakyAdapter:
    """Fails at random (retryable), records every deployment it was asked to call."""

    name = "flaky"

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.calls: list[Target] = []

    inlines_images = False

    def prepare(self, target: Target, body: dict[str, Any], fetched: Any, stream: bool) -> Any:
        return target

    async def complete(self, target: Target) -> dict[str, Any]:
        self.calls.append(target)
        if self.random.random() < 0.5:
            raise UpstreamFailure(FailureKind.SERVER_ERROR, "flaky", status=503)
        return {"choices": []}


deployment_st = st.fixed_dictionaries(
    {
        "tags": st.lists(st.sampled_from(TAGS), max_size=4, unique=True),
        "window": st.sampled_from([4_000, 32_000, 128_000, 1_000_000]),
    }
)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    deployments = draw(st.lists(deployment_st, min_size=1, max_size=8))
    raw = []
    for i, dep in enumerate(deployments):
        model = f"m{draw(st.integers(0, 4))}"
        raw.append(
            {"id": f"d{i}", "model": model, "provider": "p", "tags": dep["tags"],
             "context_window": dep["window"],
             "pricing": {"input_per_mtok": "1", "output_per_mtok": "1"}}
        )  # fmt: skip
    models = sorted({d["model"] for d in raw})
    chain = draw(st.lists(st.sampled_from(models), min_size=1, max_size=len(models), unique=True))
    config = {
        "settings": {"master_key": "sk-test-master-key", "retries": draw(st.integers(0, 2))},
        "providers": {"p": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}},
        "deployments": raw,
        "groups": {"chain": chain},
    }
    return config, [*models, "chain", "auto"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario(),
    st.data(),
    st.frozensets(st.sampled_from(TAGS), max_size=3),
    st.sampled_from([0, 3_000, 50_000, 500_000]),
    st.integers(0, 2**32),
)
def test_requests_only_reach_deployments_with_every_required_tag(
    setup: tuple[dict[str, Any], list[str]],
    data: st.DataObject,
    required: frozenset[str],
    prompt_tokens: int,
    seed: int,
) -> None:
    raw, names = setup
    name = data.draw(st.sampled_from(names))
    config = parse_config(raw, env={})
    adapter = FlakyAdapter(seed)
    pool = DeploymentPool(config, {"p": adapter})  # type: ignore[dict-item]
    request = ChatRequest({"model": name, "messages": []}, {}, name, False, 0, 0)
    try:
        links = plan(pool, name, required, prompt_tokens, "r")
    except GatewayError as error:
        assert error.code == "tag_mismatch"
        assert adapter.calls == []
        eligible_anywhere = any(
            required <= d.tags and prompt_tokens <= d.context_window
            for deps in pool.by_model.values()
            for d in deps
            if d.model in (pool.chain(name) or [])
        )
        assert not eligible_anywhere
        return
    try:
        router = Router(config.settings.retries, Breakers(2, 30.0))
        asyncio.run(router.complete(request, links, "r"))
    except GatewayError as error:
        assert error.code == "all_deployments_failed"
    assert adapter.calls, "a plan with links must call a provider"
    by_id = {d.id: d for deps in pool.by_model.values() for d in deps}
    chain = pool.chain(name) or []
    for called in adapter.calls:
        deployment = by_id[called.deployment_id]
        assert required <= deployment.tags
        assert prompt_tokens <= deployment.context_window
        assert deployment.model in chain
