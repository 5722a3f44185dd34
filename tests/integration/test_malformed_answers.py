"""A provider's 200 that is no answer, through a real gateway with the openai SDK: an error
object, choices (candidates, content) that are not a list, absurd usage, a gzip bomb, garbage
gzip, an oversized body. For each wire format (OpenAI pass-through, Gemini, Claude) the
client gets the fallback's answer (a chain with a healthy second link) or a 503 listing the
malformed attempts, never a 500 and never the malformed body; the spend record shows it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import (
    Fault,
    SimulatedAnthropic,
    SimulatedGemini,
    SimulatedProvider,
)

from .conftest import MASTER_KEY, fresh_sqlite_url
from .helpers import USER

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
# The primary of each wire format, and the chain that falls back to the healthy provider.
PRIMARY = {"openai": "gemini-2.5-flash", "gemini": "gemini-2.5-pro", "claude": "claude-haiku-4-5"}
DEPLOYMENT = {"openai": "oa", "gemini": "gm", "claude": "cl"}
FAULTS = {
    "error_in_200": Fault.error_in_200(),
    "choices_not_list": Fault.choices_not_list(),
    "absurd_usage": Fault.absurd_usage(10**13),
    "gzip_bomb": Fault.gzip_bomb(200),
    "garbage_gzip": Fault.garbage_gzip(),
    "oversized": Fault.oversized(3),  # the gateway below reads at most 2 MiB
}
_jobs = itertools.count()

Sims = dict[str, SimulatedProvider]


@pytest.fixture(scope="module")
def servers() -> Iterator[Sims]:
    with (
        SimulatedProvider() as openai_sim,
        SimulatedGemini(api_key="gm-key") as gemini_sim,
        SimulatedAnthropic(api_key="cl-key") as claude_sim,
        SimulatedProvider() as healthy,
    ):
        yield {"openai": openai_sim, "gemini": gemini_sim, "claude": claude_sim, "ok": healthy}


@pytest.fixture
def sims(servers: Sims) -> Sims:
    for sim in servers.values():
        sim.clear()
    return servers


@pytest.fixture(scope="module")
def gateway(servers: Sims) -> Iterator[BackgroundGateway]:
    raw = {
        "settings": {
            "master_key": MASTER_KEY,
            "database_url": fresh_sqlite_url(),
            # every test fails its primary on purpose: keep circuits closed
            "breaker": {"consecutive_failures": 1000, "min_calls": 1000},
            "cache": {"enabled": False},
            "request_timeout_s": 10,
            "max_upstream_body_mb": 2,
            "max_upstream_event_mb": 1,
        },
        "providers": {
            "oa": {"type": "openai-compatible", "base_url": servers["openai"].base_url},
            "gm": {"type": "gemini", "base_url": servers["gemini"].base_url, "api_key": "gm-key"},
            "cl": {
                "type": "anthropic",
                "base_url": servers["claude"].base_url,
                "api_key": "cl-key",
            },
            "ok": {"type": "openai-compatible", "base_url": servers["ok"].base_url},
        },
        "deployments": [
            {"id": "oa", "model": PRIMARY["openai"], "provider": "oa"},
            {"id": "gm", "model": PRIMARY["gemini"], "provider": "gm"},
            {"id": "cl", "model": PRIMARY["claude"], "provider": "cl"},
            {"id": "fallback", "model": "gemini-2.0-flash", "provider": "ok"},
        ],
        "groups": {f"chain-{kind}": [model, "gemini-2.0-flash"] for kind, model in PRIMARY.items()},
    }
    with BackgroundGateway(parse_config(raw, env={})) as started:
        yield started


@pytest.fixture
def client(gateway: BackgroundGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30)


def spend_event(gateway: BackgroundGateway, job: str) -> dict[str, Any]:
    """The job's one spend record, as /admin/events lists it (with the job's totals)."""
    deadline = time.monotonic() + 5
    while True:
        events = httpx.get(
            f"{gateway.url}/admin/events", params={"job_id": job}, headers=ADMIN
        ).json()["events"]
        if events:
            [event] = events
            report = httpx.get(f"{gateway.url}/admin/jobs/{job}", headers=ADMIN).json()
            return {**event, "prompt_tokens": report["prompt_tokens"]}
        assert time.monotonic() < deadline, "no spend record"
        time.sleep(0.05)


def new_job() -> dict[str, str]:
    return {"x-nemo-job-id": f"malformed-{next(_jobs)}"}


@pytest.mark.parametrize("kind", list(PRIMARY))
@pytest.mark.parametrize("variant", list(FAULTS))
def test_a_malformed_answer_fails_over_to_the_healthy_link(
    sims: Sims, gateway: BackgroundGateway, client: openai.OpenAI, kind: str, variant: str
) -> None:
    sims[kind].inject(FAULTS[variant], times=2)  # the attempt and its retry (server_error's)
    job = new_job()
    raw = client.chat.completions.with_raw_response.create(
        model=f"chain-{kind}", messages=USER, extra_headers=job
    )
    completion = raw.parse()
    assert raw.headers["x-nemo-deployment"] == "fallback"
    assert completion.choices[0].message.content.startswith("Simulated answer")  # type: ignore[union-attr]
    assert len(sims[kind].requests) == 2 and len(sims["ok"].requests) == 1
    event = spend_event(gateway, job["x-nemo-job-id"])
    assert (event["status"], event["deployment"]) == (200, "fallback")
    assert (event["attempts"], event["fallbacks"]) == (3, 1)
    assert event["prompt_tokens"] < 10_000  # the absurd count was never recorded


@pytest.mark.parametrize("kind", list(PRIMARY))
@pytest.mark.parametrize("variant", ["error_in_200", "absurd_usage", "garbage_gzip"])
def test_a_chain_of_malformed_answers_is_a_503_listing_them(
    sims: Sims, gateway: BackgroundGateway, client: openai.OpenAI, kind: str, variant: str
) -> None:
    sims[kind].inject(FAULTS[variant], times=2)
    job = new_job()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=PRIMARY[kind], messages=USER, extra_headers=job)
    assert caught.value.status_code == 503
    body: Any = caught.value.body
    assert body["code"] == "all_deployments_failed"
    assert body["message"].count("malformed") == 2
    event = spend_event(gateway, job["x-nemo-job-id"])
    assert (event["status"], event["error_code"]) == (503, "all_deployments_failed")
    assert event["attempts"] == 2 and event["prompt_tokens"] == 0


@pytest.mark.parametrize("kind", list(PRIMARY))
@pytest.mark.parametrize(
    "variant", ["error_in_200", "choices_not_list", "gzip_bomb", "garbage_gzip", "oversized"]
)
def test_a_stream_malformed_before_its_content_fails_over(
    sims: Sims, gateway: BackgroundGateway, client: openai.OpenAI, kind: str, variant: str
) -> None:
    sims[kind].inject(FAULTS[variant], times=2)
    job = new_job()
    with client.chat.completions.with_streaming_response.create(
        model=f"chain-{kind}", messages=USER, stream=True, extra_headers=job
    ) as response:
        assert response.headers["x-nemo-deployment"] == "fallback"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text.startswith("Simulated answer")
    event = spend_event(gateway, job["x-nemo-job-id"])
    assert (event["status"], event["deployment"], event["fallbacks"]) == (200, "fallback", 1)


def test_absurd_usage_after_the_content_ends_the_stream_with_an_error(
    sims: Sims, gateway: BackgroundGateway, client: openai.OpenAI
) -> None:
    sims["openai"].inject(FAULTS["absurd_usage"])
    job = new_job()
    stream = client.chat.completions.create(
        model=PRIMARY["openai"], messages=USER, stream=True, extra_headers=job
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    event = spend_event(gateway, job["x-nemo-job-id"])
    assert event["error_code"] == "stream_interrupted"
    assert event["prompt_tokens"] < 10_000


@pytest.mark.parametrize("kind", ["gemini", "claude"])
@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}, "tools[0].function.parameters"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": 3}, "tool_choice"),
        ({"stop": {"at": "end"}}, "stop"),
    ],
)  # fmt: skip
def test_a_request_the_adapter_cannot_translate_is_a_400_not_a_failover(
    sims: Sims, client: openai.OpenAI, kind: str, fields: dict[str, Any], param: str
) -> None:
    """The adapter's translation error is the client's: a 400 naming the field, before any
    call, and never retried on the chain's next link (an OpenAI pass-through would take it)."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=f"chain-{kind}", messages=USER, extra_body=fields)
    body: Any = caught.value.body
    assert (body["code"], body["param"]) == ("invalid_request", param)
    assert sims[kind].requests == [] and sims["ok"].requests == []
