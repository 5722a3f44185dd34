"""Vertex AI batch inference backend against the simulated batchPredictionJobs API and the
simulated Cloud Storage JSON API, held against the official `google-genai` SDK (and httpx
speaking the Storage JSON API, google-cloud-storage not being installed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest
from google import genai
from google.oauth2.credentials import Credentials

from nemorouter.config import ConfigError, ProviderConfig, parse_config
from nemorouter.providers.deferred_vertex import LABEL, VertexBatches, digest
from nemorouter.providers.gemini import GeminiAdapter
from nemorouter.providers.google_auth import ServiceAccountTokens
from nemorouter.testing import FakeOAuthServer, SimulatedGemini
from nemorouter.testing.sim_batch_clock import BatchTiming
from nemorouter.types.deferred import PartStatus
from nemorouter.types.target import Target

from .helpers import SCHEMA, SETTINGS, lines, outcomes, wait_ended

TARGET = Target("flash-us", "gemini-2.5-flash", "gemini-2.5-flash", 65_536, 1_048_576, None)
BUCKET = "sim-bucket"


@pytest.fixture(scope="module")
def oauth() -> Iterator[FakeOAuthServer]:
    with FakeOAuthServer() as server:
        yield server


@pytest.fixture(scope="module")
def key_file(oauth: FakeOAuthServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return oauth.create_account().write(tmp_path_factory.mktemp("sa") / "key.json")


@pytest.fixture(scope="module")
def server(oauth: FakeOAuthServer) -> Iterator[SimulatedGemini]:
    with SimulatedGemini(oauth=oauth) as sim:
        yield sim


@pytest.fixture
def sim(server: SimulatedGemini) -> SimulatedGemini:
    server.clear()
    server.vertex_batches.timing = BatchTiming(delay_s=0.4)
    server.storage.page_size = 1000
    return server


def provider(sim: SimulatedGemini, key_file: Path, **extra) -> ProviderConfig:
    return ProviderConfig(
        type="vertex",
        project="sim-project",
        location="us-central1",
        base_url=sim.base_url,
        credentials=str(key_file),
        batch_bucket=f"gs://{BUCKET}/batches/nemo",
        storage_url=sim.origin,
        **extra,
    )


@pytest.fixture
async def backend(sim, key_file) -> AsyncIterator[VertexBatches]:
    batches = VertexBatches("vertex", provider(sim, key_file), SETTINGS)
    yield batches
    await batches.close()


@pytest.fixture
def adapter(sim, key_file) -> GeminiAdapter:
    return GeminiAdapter("vertex", provider(sim, key_file), SETTINGS)


async def test_200_lines_staged_run_and_read_back(sim, backend, adapter) -> None:
    sim.storage.page_size = 1  # listings come a page at a time
    sent = lines(adapter, TARGET, 200)
    job_id = await backend.submit(TARGET, sent)
    staged = [n for b, n in sim.storage.objects if b == BUCKET and n.endswith("input.jsonl")]
    assert len(staged) == 1 and staged[0].startswith("batches/nemo/nemorouter-")
    rows = [json.loads(r) for r in sim.storage.get(BUCKET, staged[0]).splitlines()]
    assert [r["request"]["labels"][LABEL] for r in rows] == [str(i) for i in range(200)]
    seen = await wait_ended(backend, job_id)
    assert seen[0].status in (PartStatus.VALIDATING, PartStatus.IN_PROGRESS)
    assert seen[-1] == type(seen[-1])(PartStatus.COMPLETED, 200, 199, 1)
    # something else in the output folder is not a predictions file
    job = sim.vertex_batches.jobs[job_id]
    folder = job.extra["directory"].removeprefix(f"gs://{BUCKET}/")
    sim.storage.put(BUCKET, f"{folder}/zz-notes.txt", b"not jsonl", "text/plain")
    got = await outcomes(backend, TARGET, job_id, sent)
    assert sorted(got) == sorted(line.custom_id for line in sent)
    assert got["line-0007"].error is not None and "Internal" in got["line-0007"].error["message"]
    for custom_id, outcome in got.items():
        if custom_id != "line-0007":
            assert outcome.response is not None and outcome.response["model"] == "gemini-2.5-flash"
            assert outcome.usage == outcome.response["usage"] and outcome.usage["prompt_tokens"] > 0
    structured = got["line-0150"].response
    jsonschema.validate(json.loads(structured["choices"][0]["message"]["content"]), SCHEMA)
    lists = [r for r in sim.requests if r.method == "GET" and "/o?prefix=" in r.path]
    assert len(lists) == 2  # two objects under the output folder, one per page


async def test_expiry_keeps_exported_rows(sim, backend, adapter) -> None:
    sim.vertex_batches.timing = BatchTiming(delay_s=1.0, expire_s=0.4)
    sent = lines(adapter, TARGET, 10)
    job_id = await backend.submit(TARGET, sent)
    assert (await wait_ended(backend, job_id))[-1].status is PartStatus.EXPIRED
    got = await outcomes(backend, TARGET, job_id, sent)
    expired = [o for o in got.values() if o.error and o.error["code"] == "expired"]
    answered = [o for o in got.values() if o.response is not None]
    assert expired and answered and len(got) == 10


async def test_cancel(sim, backend, adapter) -> None:
    sim.vertex_batches.timing = BatchTiming(delay_s=2.0, cancel_lag_s=0.3)
    sent = lines(adapter, TARGET, 10)
    job_id = await backend.submit(TARGET, sent)
    await asyncio.sleep(0.5)
    await backend.cancel(job_id)
    assert (await backend.poll(job_id)).status is PartStatus.CANCELLING
    assert (await wait_ended(backend, job_id))[-1].status is PartStatus.CANCELLED
    got = await outcomes(backend, TARGET, job_id, sent)
    cancelled = [o for o in got.values() if o.error and o.error["code"] == "cancelled"]
    assert 0 < len(cancelled) < 10 and len(got) == 10


async def test_a_refused_token_is_refreshed(sim, backend, adapter, oauth) -> None:
    sent = lines(adapter, TARGET, 2)
    await backend.submit(TARGET, sent)
    oauth.revoke_all()  # the cached token is refused: one refresh, then the call goes through
    await backend.submit(TARGET, sent)


def test_lines_are_matched_by_content_without_their_label(adapter) -> None:
    from nemorouter.providers.deferred_vertex import LineMatcher

    sent = lines(adapter, TARGET, 3)
    match = LineMatcher(sent)
    echoed = json.loads(json.dumps(sent[2].wire, sort_keys=True))  # another key order
    assert match({"request": echoed}) is sent[2]
    assert match({"request": {**sent[1].wire, "labels": {LABEL: "0"}}}) is sent[0]
    assert digest({"a": 1, "labels": {"x": "1"}}) == digest({"a": 1})


def test_configuration(sim, key_file) -> None:
    with pytest.raises(ConfigError, match="batch_bucket"):
        VertexBatches("vertex", provider(sim, key_file).__replace__(batch_bucket=None), SETTINGS)
    raw = {
        "settings": {"master_key": SETTINGS.master_key},
        "providers": {"g": {"type": "gemini", "api_key": "k", "batch_bucket": "gs://b"}},
        "deployments": [{"id": "d", "model": "gemini-2.5-flash", "provider": "g"}],
    }
    with pytest.raises(ConfigError, match="batch_bucket"):
        parse_config(raw, env={})
    raw["providers"] = {
        "v": {"type": "vertex", "project": "p", "location": "l", "batch_bucket": "bucket"}
    }
    raw["deployments"][0]["provider"] = "v"
    with pytest.raises(ConfigError, match="gs://"):
        parse_config(raw, env={})
    raw["providers"]["v"]["batch_bucket"] = "gs://bucket/prefix"
    assert parse_config(raw, env={}).providers["v"].batch_bucket == "gs://bucket/prefix"


async def sdk_client(sim: SimulatedGemini, key_file: Path) -> tuple[genai.Client, str]:
    """The official client with a token of the gateway's own service account."""
    tokens = ServiceAccountTokens(json.loads(await asyncio.to_thread(key_file.read_text)))
    token = await tokens.token()
    await tokens.close()
    options = {"base_url": sim.base_url, "api_version": "v1"}
    client = genai.Client(
        vertexai=True, project="sim-project", location="us-central1",
        credentials=Credentials(token), http_options=options,
    )  # fmt: skip
    return client, token


async def test_official_sdk_and_storage_api_read_the_simulators(sim, key_file, adapter) -> None:
    sdk, token = await sdk_client(sim, key_file)
    auth = {"Authorization": f"Bearer {token}"}
    sent = lines(adapter, TARGET, 8)
    data = b"".join(json.dumps({"request": line.wire}).encode() + b"\n" for line in sent)
    async with httpx.AsyncClient(base_url=sim.origin, headers=auth) as gcs:
        put = await gcs.post(
            f"/upload/storage/v1/b/{BUCKET}/o",
            params={"uploadType": "media", "name": "sdk/in.jsonl"},
            content=data,
            headers={"Content-Type": "application/jsonl"},
        )
        assert put.status_code == 200 and put.json()["size"] == str(len(data))
        job = await sdk.aio.batches.create(
            model="gemini-2.5-flash",
            src=f"gs://{BUCKET}/sdk/in.jsonl",
            config={"dest": f"gs://{BUCKET}/sdk/out"},
        )
        assert job.state.name in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING")
        sim.vertex_batches.jobs[job.name.rsplit("/", 1)[1]].timing.delay_s = 0
        done = await sdk.aio.batches.get(name=job.name)
        assert (
            done.state.name == "JOB_STATE_SUCCEEDED" and done.completion_stats.successful_count == 7
        )
        directory = done.output_info.gcs_output_directory
        prefix = directory.removeprefix(f"gs://{BUCKET}/") + "/"
        listing = (await gcs.get(f"/storage/v1/b/{BUCKET}/o", params={"prefix": prefix})).json()
        [name] = [item["name"] for item in listing["items"]]
        media = await gcs.get(
            f"/storage/v1/b/{BUCKET}/o/{name.replace('/', '%2F')}", params={"alt": "media"}
        )
        rows = [json.loads(r) for r in media.content.splitlines()]
        assert len(rows) == 8 and sum(1 for r in rows if r.get("response")) == 7
        assert all("request" in r and "status" in r for r in rows)
        other = await sdk.aio.batches.create(
            model="gemini-2.5-flash", src=f"gs://{BUCKET}/sdk/in.jsonl"
        )
        await sdk.aio.batches.cancel(name=other.name)
        state = (await sdk.aio.batches.get(name=other.name)).state.name
        assert state in ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")


async def test_backend_sends_what_the_official_sdk_sends(sim, key_file, backend, adapter) -> None:
    sent = lines(adapter, TARGET, 3)
    sim.vertex_batches.timing.delay_s = 0
    job_id = await backend.submit(TARGET, sent)
    await backend.poll(job_id)
    await backend.cancel(job_id)
    ours = [r for r in sim.requests if "batchPredictionJobs" in r.path]
    mine = ours[0].json()
    sim.clear()
    sdk, _ = await sdk_client(sim, key_file)
    config = {
        "dest": mine["outputConfig"]["gcsDestination"]["outputUriPrefix"],
        "display_name": mine["displayName"],
    }
    job = await sdk.aio.batches.create(
        model=TARGET.provider_model, src=mine["inputConfig"]["gcsSource"]["uris"][0], config=config
    )
    await sdk.aio.batches.get(name=job.name)
    await sdk.aio.batches.cancel(name=job.name)
    theirs = [r for r in sim.requests if "batchPredictionJobs" in r.path]
    assert theirs[0].json() == mine  # the create body, field for field
    shape = [(r.method, r.path.split("batchPredictionJobs")[0]) for r in ours]
    assert shape == [(r.method, r.path.split("batchPredictionJobs")[0]) for r in theirs]
    assert ours[1].path.endswith(f"/batchPredictionJobs/{job_id}")
    assert ours[2].path.endswith(f"/batchPredictionJobs/{job_id}:cancel")
    assert theirs[2].path.endswith(":cancel")
