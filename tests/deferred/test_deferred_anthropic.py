"""Anthropic Message Batches backend against the simulated Message Batches API, and the
simulator and backend held against the official `anthropic` SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import anthropic
import jsonschema
import pytest

from nemorouter.config import ConfigError, ProviderConfig
from nemorouter.providers.anthropic import ANTHROPIC_VERSION, AnthropicAdapter
from nemorouter.providers.deferred_anthropic import AnthropicBatches, batch_key, progress
from nemorouter.testing import SimulatedAnthropic
from nemorouter.testing.sim_batch_clock import BatchTiming
from nemorouter.types.deferred import PartStatus
from nemorouter.types.target import Target
from nemorouter.types.upstream import UpstreamFailure

from .helpers import SCHEMA, SETTINGS, lines, outcomes, wait_ended

KEY = "sk-ant-sim"
TARGET = Target("haiku", "claude-haiku-4-5-20251001", "claude-haiku-4-5", 2048, 200_000, None)


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatedAnthropic]:
    with SimulatedAnthropic(api_key=KEY) as sim:
        yield sim


@pytest.fixture
def sim(server: SimulatedAnthropic) -> SimulatedAnthropic:
    server.clear()
    server.message_batches.timing = BatchTiming(delay_s=0.4)
    return server


def provider(sim: SimulatedAnthropic) -> ProviderConfig:
    return ProviderConfig(type="anthropic", api_key=KEY, base_url=sim.base_url)


@pytest.fixture
async def backend(sim: SimulatedAnthropic) -> AsyncIterator[AnthropicBatches]:
    batches = AnthropicBatches("claude", provider(sim), SETTINGS)
    yield batches
    await batches.close()


@pytest.fixture
def adapter(sim: SimulatedAnthropic) -> AnthropicAdapter:
    return AnthropicAdapter("claude", provider(sim), SETTINGS)


async def test_200_lines_complete_with_usage_and_one_failure(backend, adapter) -> None:
    sent = lines(adapter, TARGET, 200)
    batch_id = await backend.submit(TARGET, sent)
    seen = await wait_ended(backend, batch_id)
    assert seen[0].status is PartStatus.IN_PROGRESS and seen[0].total == 200
    assert seen[-1] == type(seen[-1])(PartStatus.COMPLETED, 200, 199, 1)
    got = await outcomes(backend, TARGET, batch_id, sent)
    assert sorted(got) == sorted(line.custom_id for line in sent)
    failed = got["line-0007"]
    assert failed.error is not None and failed.error["code"] == "api_error"
    for custom_id, outcome in got.items():
        if custom_id == "line-0007":
            continue
        response = outcome.response
        assert response is not None and response["object"] == "chat.completion"
        assert response["model"] == "claude-haiku-4-5"  # the target's label, as interactively
        usage = outcome.usage
        assert usage is not None and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
        assert usage == response["usage"]
    # structured output through the forced tool: the tool's input is the answer
    structured = got["line-0050"].response
    assert structured is not None
    assert next(line for line in sent if line.custom_id == "line-0050").structured
    jsonschema.validate(json.loads(structured["choices"][0]["message"]["content"]), SCHEMA)
    assert structured["choices"][0]["finish_reason"] == "stop"


async def test_expiry_keeps_finished_lines(sim, backend, adapter) -> None:
    sim.message_batches.timing = BatchTiming(delay_s=1.0, expire_s=0.4)
    sent = lines(adapter, TARGET, 20)
    batch_id = await backend.submit(TARGET, sent)
    final = (await wait_ended(backend, batch_id))[-1]
    assert final.status is PartStatus.EXPIRED
    got = await outcomes(backend, TARGET, batch_id, sent)
    expired = [o for o in got.values() if o.error and o.error["code"] == "expired"]
    answered = [o for o in got.values() if o.response is not None]
    assert expired and answered and len(got) == 20
    assert final.succeeded == len(answered) and final.failed == 20 - len(answered)


async def test_cancel(sim, backend, adapter) -> None:
    sim.message_batches.timing = BatchTiming(delay_s=2.0, cancel_lag_s=0.3)
    sent = lines(adapter, TARGET, 10)
    batch_id = await backend.submit(TARGET, sent)
    await asyncio.sleep(0.5)
    await backend.cancel(batch_id)
    assert (await backend.poll(batch_id)).status is PartStatus.CANCELLING
    final = (await wait_ended(backend, batch_id))[-1]
    assert final.status is PartStatus.CANCELLED
    got = await outcomes(backend, TARGET, batch_id, sent)
    cancelled = [o for o in got.values() if o.error and o.error["code"] == "cancelled"]
    assert 0 < len(cancelled) < 10 and len(got) == 10


async def test_unknown_batch_is_a_client_error(backend) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        await backend.poll("msgbatch_nope")
    assert caught.value.status == 404


def test_custom_ids_anthropic_refuses_are_mapped_stably() -> None:
    assert batch_key("line-1") == "line-1"
    odd = batch_key("file-abc/line:1")
    assert odd == batch_key("file-abc/line:1") and len(odd) <= 64
    assert odd.replace("h", "", 1).isalnum()


def test_progress_reads_every_status() -> None:
    counts = {"processing": 0, "succeeded": 3, "errored": 1, "canceled": 0, "expired": 2}
    ended = {"processing_status": "ended", "request_counts": counts}
    assert progress(ended).status is PartStatus.EXPIRED
    assert progress({**ended, "cancel_initiated_at": "2026-01-01T00:00:00Z"}).status is (
        PartStatus.CANCELLED
    )
    assert progress({"processing_status": "canceling"}).status is PartStatus.CANCELLING
    done = progress({**ended, "request_counts": {**counts, "expired": 0}})
    assert done == type(done)(PartStatus.COMPLETED, 4, 3, 1)


def test_vertex_claude_has_no_message_batches() -> None:
    config = ProviderConfig(type="anthropic-vertex", project="p", location="us-east5")
    with pytest.raises(ConfigError):
        AnthropicBatches("claude", config, SETTINGS)


def sdk(sim: SimulatedAnthropic) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.base_url, api_key=KEY, max_retries=0)


def test_official_sdk_reads_the_simulator(sim, adapter) -> None:
    sent = lines(adapter, TARGET, 8)
    client = sdk(sim)
    requests = [{"custom_id": line.custom_id, "params": line.wire} for line in sent]
    batch = client.messages.batches.create(requests=requests)
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 8
    sim.message_batches.batches[batch.id].timing.delay_s = 0
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.succeeded == 7
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["line-0000"].type == "succeeded"
    assert results["line-0000"].message.usage.input_tokens > 0
    assert results["line-0000"].message.content[0].type == "tool_use"  # line 0 is structured
    assert results["line-0001"].message.content[0].type == "text"
    assert results["line-0007"].type == "errored"
    assert results["line-0007"].error.error.type == "api_error"
    other = client.messages.batches.create(requests=requests)
    cancelled = client.messages.batches.cancel(other.id)
    assert cancelled.processing_status == "canceling" and cancelled.cancel_initiated_at


async def test_backend_sends_what_the_official_sdk_sends(sim, backend, adapter) -> None:
    sent = lines(adapter, TARGET, 3)
    sim.message_batches.timing.delay_s = 0
    batch_id = await backend.submit(TARGET, sent)
    await backend.poll(batch_id)
    [outcome async for outcome in backend.results(TARGET, batch_id, sent)]
    await backend.cancel(batch_id)
    ours = sim.requests
    sim.clear()
    client = sdk(sim)
    requests = [{"custom_id": line.custom_id, "params": line.wire} for line in sent]
    sdk_id = client.messages.batches.create(requests=requests).id
    client.messages.batches.retrieve(sdk_id)
    list(client.messages.batches.results(sdk_id))  # retrieve, then the results_url
    client.messages.batches.cancel(sdk_id)
    theirs = sim.requests

    def shape(recorded, batch: str):
        return [(r.method, r.path.replace(batch, "{id}")) for r in recorded]

    assert shape(ours, batch_id) == shape(theirs, sdk_id)
    assert ours[0].json() == theirs[0].json()  # the create body, byte for byte in meaning
    # Every call carries the key and a version; ours is the interactive adapter's (its
    # answers are translated by the same code), the SDK's its own newer default.
    for mine, official in zip(ours, theirs, strict=True):
        assert mine.headers["anthropic-version"] == ANTHROPIC_VERSION
        assert official.headers["anthropic-version"]
        # the key: ours as the API reference and the interactive adapter send it, the
        # SDK's (anthropic 2.17.0) as a bearer token; the API takes both
        assert mine.headers["x-api-key"] == KEY
        assert official.headers["authorization"] == f"Bearer {KEY}"
    assert ours[3].headers["accept"] == theirs[3].headers["accept"] == "application/binary"
