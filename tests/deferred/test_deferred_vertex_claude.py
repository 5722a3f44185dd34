"""Claude batch inference on Vertex AI against the simulated batchPredictionJobs and Cloud
Storage APIs served by `SimulatedAnthropic`, its create request held against google-genai."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from google import genai
from google.oauth2.credentials import Credentials

from nemorouter.config import ProviderConfig
from nemorouter.providers.anthropic import AnthropicAdapter
from nemorouter.providers.deferred_vertex_claude import VertexClaudeBatches
from nemorouter.providers.google_auth import ServiceAccountTokens
from nemorouter.testing import FakeOAuthServer, SimulatedAnthropic
from nemorouter.testing.sim_batch_clock import BatchTiming
from nemorouter.types.deferred import PartStatus
from nemorouter.types.target import Target

from .helpers import SCHEMA, SETTINGS, lines, outcomes, wait_ended

MODEL = "claude-sonnet-4-5@20250929"
TARGET = Target("sonnet", MODEL, "claude-sonnet-4-5", 8192, 200_000, None)
BUCKET = "claude-bucket"


@pytest.fixture(scope="module")
def oauth() -> Iterator[FakeOAuthServer]:
    with FakeOAuthServer() as server:
        yield server


@pytest.fixture(scope="module")
def key_file(oauth: FakeOAuthServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return oauth.create_account().write(tmp_path_factory.mktemp("sa") / "key.json")


@pytest.fixture(scope="module")
def server(oauth: FakeOAuthServer) -> Iterator[SimulatedAnthropic]:
    with SimulatedAnthropic(oauth=oauth) as sim:
        yield sim


@pytest.fixture
def sim(server: SimulatedAnthropic) -> SimulatedAnthropic:
    server.clear()
    server.vertex_batches.timing = BatchTiming(delay_s=0.4)
    return server


def provider(sim: SimulatedAnthropic, key_file: Path) -> ProviderConfig:
    return ProviderConfig(
        type="anthropic-vertex",
        project="sim-project",
        location="us-east5",
        base_url=sim.base_url,
        credentials=str(key_file),
        batch_bucket=f"gs://{BUCKET}",
        storage_url=sim.origin,
    )


@pytest.fixture
async def backend(sim, key_file) -> AsyncIterator[VertexClaudeBatches]:
    batches = VertexClaudeBatches("claude", provider(sim, key_file), SETTINGS)
    yield batches
    await batches.close()


@pytest.fixture
def adapter(sim, key_file) -> AnthropicAdapter:
    return AnthropicAdapter("claude", provider(sim, key_file), SETTINGS)


async def test_200_lines_complete_with_usage_and_one_failure(sim, backend, adapter) -> None:
    sent = lines(adapter, TARGET, 200)
    sent[3] = replace(sent[3], custom_id="file-1/line:3")  # an id Claude's batches refuse
    job_id = await backend.submit(TARGET, sent)
    [name] = [n for b, n in sim.storage.objects if b == BUCKET]
    rows = [json.loads(r) for r in sim.storage.get(BUCKET, name).splitlines()]
    assert rows[0] == {"custom_id": "line-0000", "request": sent[0].wire}
    assert rows[0]["request"]["anthropic_version"] == "vertex-2023-10-16"
    final = (await wait_ended(backend, job_id))[-1]
    assert final == type(final)(PartStatus.COMPLETED, 200, 199, 1)
    got = await outcomes(backend, TARGET, job_id, sent)
    assert sorted(got) == sorted(line.custom_id for line in sent)
    assert got["line-0007"].error is not None and got["line-0007"].error["code"] == "error"
    assert got["file-1/line:3"].response is not None
    for custom_id, outcome in got.items():
        if custom_id != "line-0007":
            assert outcome.response["model"] == "claude-sonnet-4-5"
            assert outcome.usage == outcome.response["usage"] and outcome.usage["prompt_tokens"] > 0
    structured = got["line-0050"].response
    jsonschema.validate(json.loads(structured["choices"][0]["message"]["content"]), SCHEMA)


async def test_cancel(sim, backend, adapter) -> None:
    sim.vertex_batches.timing = BatchTiming(delay_s=2.0, cancel_lag_s=0.2)
    sent = lines(adapter, TARGET, 10)
    job_id = await backend.submit(TARGET, sent)
    await asyncio.sleep(0.5)
    await backend.cancel(job_id)
    assert (await wait_ended(backend, job_id))[-1].status is PartStatus.CANCELLED
    got = await outcomes(backend, TARGET, job_id, sent)
    cancelled = [o for o in got.values() if o.error and o.error["code"] == "cancelled"]
    assert 0 < len(cancelled) < 10 and len(got) == 10


async def test_create_request_is_what_google_genai_sends(sim, key_file, backend, adapter) -> None:
    sent = lines(adapter, TARGET, 2)
    await backend.submit(TARGET, sent)
    mine = next(r for r in sim.requests if r.path.endswith("/batchPredictionJobs")).json()
    sim.clear()
    info = json.loads(await asyncio.to_thread(key_file.read_text))
    tokens = ServiceAccountTokens(info)
    token = await tokens.token()
    await tokens.close()
    sdk = genai.Client(
        vertexai=True, project="sim-project", location="us-east5", credentials=Credentials(token),
        http_options={"base_url": sim.base_url, "api_version": "v1"},
    )  # fmt: skip
    config = {
        "dest": mine["outputConfig"]["gcsDestination"]["outputUriPrefix"],
        "display_name": mine["displayName"],
    }
    await sdk.aio.batches.create(
        model=f"publishers/anthropic/models/{MODEL}",
        src=mine["inputConfig"]["gcsSource"]["uris"][0],
        config=config,
    )
    theirs = next(r for r in sim.requests if r.path.endswith("/batchPredictionJobs"))
    assert theirs.json() == mine
    assert theirs.path == "/v1/projects/sim-project/locations/us-east5/batchPredictionJobs"
