"""The deployment check's decisions, in process: a model without a known price is never
called, a dear check call becomes a lookup, secrets never reach a reason, and the quota
headers are summarised by family."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from nemorouter.check_cli import quota_summary
from nemorouter.config import (
    Config,
    DeploymentConfig,
    ProviderConfig,
    Settings,
    parse_config,
)
from nemorouter.core.deployment_check import check_body, redact, run_checks
from nemorouter.testing import FakeOAuthServer, Fault, SimulatedGemini, SimulatedProvider

MASTER = "sk-test-master-key-0123"


def local(sim: SimulatedProvider) -> ProviderConfig:
    return ProviderConfig(type="openai-compatible", base_url=sim.base_url, api_key="none")


async def test_a_model_without_a_known_price_is_looked_up_never_called() -> None:
    async with SimulatedProvider() as sim:
        sim.known_models = frozenset({"mystery-model"})
        # Built directly: config validation refuses this deployment, but a catalog without a
        # price for the provider's kind leaves a deployment as unpriced as this one.
        config = Config(
            settings=Settings(master_key=MASTER),
            providers={"local": local(sim)},
            deployments=(
                DeploymentConfig(
                    id="mystery", model="mystery-model", provider="local", context_window=8192
                ),
            ),
        )
        (row,) = await run_checks(config)
        assert sim.request_count == 0  # a call nobody could cost is not made
    # Either looked up and failed for want of a price, or refused when built (as the
    # gateway's pool refuses an unpriced deployment): never called, never a pass.
    assert row.price == "unknown" and row.mode in ("lookup", "-")
    assert row.passed is False
    assert row.reason is not None and "price" in row.reason


def dear_config(sim: SimulatedProvider) -> Config:
    deployment = {
        "id": "dear",
        "model": "dear-model",
        "provider": "local",
        "context_window": 8192,
        "pricing": {"input_per_mtok": "1000", "output_per_mtok": "50000"},
    }
    raw = {
        "settings": {"master_key": MASTER},
        "providers": {"local": {"type": "openai-compatible", "base_url": sim.base_url}},
        "deployments": [deployment],
    }
    return parse_config(raw, env={})


async def test_a_check_call_dearer_than_the_limit_becomes_a_lookup() -> None:
    async with SimulatedProvider() as sim:
        sim.known_models = frozenset({"dear-model"})
        (looked_up,) = await run_checks(dear_config(sim))
        assert sim.request_count == 0
        (called,) = await run_checks(dear_config(sim), max_call_usd=Decimal(1))
        assert sim.request_count == 1
    assert looked_up.mode == "lookup" and looked_up.passed
    assert looked_up.note is not None and "over $0.01" in looked_up.note
    assert called.mode == "call" and called.passed
    assert called.cost_usd is not None and called.cost_usd > 0


def test_openai_is_sent_max_completion_tokens_others_max_tokens() -> None:
    assert check_body("openai", "gpt-4.1")["max_completion_tokens"] == 1
    for kind in ("openai-compatible", "vertex", "gemini", "anthropic", "anthropic-vertex"):
        body: dict[str, Any] = check_body(kind, "m")
        assert body["max_tokens"] == 1 and "max_completion_tokens" not in body


def test_reasons_lose_the_configured_secrets_and_stay_short() -> None:
    provider = ProviderConfig(type="openai", api_key="sk-live-secret-abcdef")
    text = redact("Incorrect API key provided: sk-live-secret-abcdef.\n" + "x" * 500, provider)
    assert "sk-live-secret-abcdef" not in text and "***" in text
    assert len(text) <= 200 and "\n" not in text
    assert redact("none is fine", ProviderConfig(type="openai", api_key="none")) == "none is fine"


def test_quota_headers_are_summarised_by_family() -> None:
    headers = {
        "anthropic-ratelimit-input-tokens-limit": "1",
        "anthropic-ratelimit-requests-limit": "1",
        "anthropic-ratelimit-requests-remaining": "1",
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-reset-tokens": "1s",
    }
    assert quota_summary(headers) == (
        "anthropic-ratelimit: input-tokens, requests\nx-ratelimit: requests, tokens"
    )
    assert quota_summary({}) == "none"


async def test_a_refused_service_account_fails_auth_before_any_call(tmp_path: Path) -> None:
    with FakeOAuthServer() as oauth, SimulatedGemini(oauth=oauth) as sim:
        key_file = oauth.create_account().write(tmp_path / "sa.json")
        oauth.inject(Fault.status(400))  # the token endpoint refuses the assertion
        vertex = {
            "type": "vertex",
            "project": "p",
            "location": "us-central1",
            "base_url": sim.base_url,
            "credentials": str(key_file),
        }
        raw = {
            "settings": {"master_key": MASTER},
            "providers": {"vertex": vertex},
            "deployments": [{"id": "pro", "model": "gemini-2.5-pro", "provider": "vertex"}],
        }
        (row,) = await run_checks(parse_config(raw, env={}))
        assert sim.request_count == 0
    assert (row.auth, row.reachable, row.passed) == ("failed", "?", False)
    assert row.reason is not None and row.reason.startswith("credentials: OAuth token endpoint")
    assert row.latency_ms is None  # nothing was sent to the model


async def test_checks_run_side_by_side_each_under_its_own_timeout() -> None:
    async with (
        SimulatedProvider() as slow,
        SimulatedProvider() as slower,
        SimulatedProvider() as ok,
    ):
        slow.inject(Fault.hang(30))
        slower.inject(Fault.hang(30))
        sims = {"slow": slow, "slower": slower, "ok": ok}
        raw = {
            "settings": {"master_key": MASTER},
            "providers": {
                name: {"type": "openai-compatible", "base_url": sim.base_url}
                for name, sim in sims.items()
            },
            "deployments": [
                {"id": name, "model": "gemini-2.5-flash", "provider": name} for name in sims
            ],
        }
        started = time.perf_counter()
        rows = await run_checks(parse_config(raw, env={}), timeout_s=1.0)
        elapsed = time.perf_counter() - started
    assert elapsed < 1.9  # one timeout's worth, not two
    assert [r.reason for r in rows] == ["no answer within 1 s", "no answer within 1 s", None]
    assert [r.passed for r in rows] == [False, False, True]


async def test_a_token_refresh_refused_after_a_401_fails_auth(tmp_path: Path) -> None:
    with FakeOAuthServer() as oauth, SimulatedGemini(oauth=oauth) as sim:
        key_file = oauth.create_account().write(tmp_path / "sa.json")
        oauth.inject(Fault.latency(1))  # the first token is issued (after 1 ms)
        oauth.inject(Fault.status(400))  # the refresh after the 401 is refused
        sim.inject(Fault.status(401))
        vertex = {
            "type": "vertex",
            "project": "p",
            "location": "us-central1",
            "base_url": sim.base_url,
            "credentials": str(key_file),
        }
        raw = {
            "settings": {"master_key": MASTER},
            "providers": {"vertex": vertex},
            "deployments": [{"id": "pro", "model": "gemini-2.5-pro", "provider": "vertex"}],
        }
        (row,) = await run_checks(parse_config(raw, env={}))
        assert (sim.request_count, oauth.request_count) == (1, 2)
    assert (row.auth, row.passed) == ("failed", False)
    assert row.reason is not None and row.reason.startswith("credentials refused")
