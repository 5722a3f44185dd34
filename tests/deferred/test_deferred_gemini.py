"""Gemini API batch mode backend against the simulated batch and Files APIs, and the
simulator and backend held against the official `google-genai` SDK."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator

import jsonschema
import pytest
from google import genai

from nemorouter.config import ProviderConfig
from nemorouter.providers.deferred_gemini import GeminiBatches, job_status
from nemorouter.providers.gemini import GeminiAdapter
from nemorouter.testing import SimulatedGemini
from nemorouter.testing.sim_batch_clock import BatchTiming
from nemorouter.types.deferred import PartStatus
from nemorouter.types.target import Target

from .helpers import SCHEMA, SETTINGS, lines, outcomes, wait_ended

KEY = "gemini-sim-key"
TARGET = Target("flash", "gemini-2.5-flash", "gemini-2.5-flash", 65_536, 1_048_576, None)


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatedGemini]:
    with SimulatedGemini(api_key=KEY) as sim:
        yield sim


@pytest.fixture
def sim(server: SimulatedGemini) -> SimulatedGemini:
    server.clear()
    server.gemini_batches.timing = BatchTiming(delay_s=0.4)
    return server


def provider(sim: SimulatedGemini) -> ProviderConfig:
    return ProviderConfig(type="gemini", api_key=KEY, base_url=sim.base_url)


@pytest.fixture
async def backend(sim: SimulatedGemini) -> AsyncIterator[GeminiBatches]:
    batches = GeminiBatches("gemini", provider(sim), SETTINGS)
    yield batches
    await batches.close()


@pytest.fixture
def adapter(sim: SimulatedGemini) -> GeminiAdapter:
    return GeminiAdapter("gemini", provider(sim), SETTINGS)


def check_200(got, sent) -> None:
    assert sorted(got) == sorted(line.custom_id for line in sent)
    failed = got["line-0007"]
    assert failed.error is not None and failed.error["code"] == "INTERNAL"
    for custom_id, outcome in got.items():
        if custom_id == "line-0007":
            continue
        response = outcome.response
        assert response is not None and response["object"] == "chat.completion"
        assert response["model"] == "gemini-2.5-flash"
        assert outcome.usage == response["usage"] and outcome.usage["prompt_tokens"] > 0
        assert outcome.usage["completion_tokens"] > 0
    structured = got["line-0100"].response
    assert structured is not None
    jsonschema.validate(json.loads(structured["choices"][0]["message"]["content"]), SCHEMA)


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "file"])
async def test_200_lines_complete_with_usage_and_one_failure(sim, backend, adapter, inline) -> None:
    if not inline:
        backend.inline_limit = 10_000  # 200 lines are more: the JSONL file upload
    sent = lines(adapter, TARGET, 200)
    batch_id = await backend.submit(TARGET, sent)
    uploads = [r for r in sim.requests if r.path.startswith("/upload/")]
    assert len(uploads) == (0 if inline else 2)
    seen = await wait_ended(backend, batch_id)
    assert seen[0].status in (PartStatus.VALIDATING, PartStatus.IN_PROGRESS)
    assert seen[-1] == type(seen[-1])(PartStatus.COMPLETED, 200, 199, 1)
    got = await outcomes(backend, TARGET, batch_id, sent)
    check_200(got, sent)
    downloads = [r for r in sim.requests if ":download" in r.path]
    assert len(downloads) == (0 if inline else 1)


async def test_expired_batch_reports_every_line_expired(sim, backend, adapter) -> None:
    sim.gemini_batches.timing = BatchTiming(delay_s=1.0, expire_s=0.3)
    sent = lines(adapter, TARGET, 12)
    batch_id = await backend.submit(TARGET, sent)
    assert (await wait_ended(backend, batch_id))[-1].status is PartStatus.EXPIRED
    got = await outcomes(backend, TARGET, batch_id, sent)
    assert len(got) == 12 and all(o.error and o.error["code"] == "expired" for o in got.values())


async def test_cancel_keeps_finished_lines(sim, backend, adapter) -> None:
    sim.gemini_batches.timing = BatchTiming(delay_s=2.0, cancel_lag_s=0.2)
    sent = lines(adapter, TARGET, 10)
    batch_id = await backend.submit(TARGET, sent)
    await asyncio.sleep(0.5)
    await backend.cancel(batch_id)
    assert (await wait_ended(backend, batch_id))[-1].status is PartStatus.CANCELLED
    got = await outcomes(backend, TARGET, batch_id, sent)
    cancelled = [o for o in got.values() if o.error and o.error["code"] == "cancelled"]
    answered = [o for o in got.values() if o.response is not None]
    assert cancelled and answered and len(cancelled) + len(answered) == 10


def test_states_of_both_apis() -> None:
    assert job_status("BATCH_STATE_PENDING") is PartStatus.VALIDATING
    assert job_status("JOB_STATE_RUNNING") is PartStatus.IN_PROGRESS
    assert job_status("BATCH_STATE_SUCCEEDED") is PartStatus.COMPLETED
    assert job_status("JOB_STATE_PARTIALLY_SUCCEEDED") is PartStatus.COMPLETED
    assert job_status("JOB_STATE_CANCELLING") is PartStatus.CANCELLING
    assert job_status("BATCH_STATE_EXPIRED") is PartStatus.EXPIRED
    assert job_status("JOB_STATE_FAILED") is PartStatus.FAILED
    assert job_status(None) is PartStatus.IN_PROGRESS


def client(sim: SimulatedGemini) -> genai.Client:
    options = {"base_url": sim.origin, "api_version": "v1beta"}
    return genai.Client(api_key=KEY, http_options=options)


def sdk_requests(sent) -> list[dict]:
    """Our lines as the SDK's inlined requests (the adapter's wire, in SDK field names)."""
    out = []
    for line in sent:
        config = {"max_output_tokens": line.wire["generationConfig"]["maxOutputTokens"]}
        out.append(
            {
                "contents": line.wire["contents"],
                "config": config,
                "metadata": {"key": line.custom_id},
            }
        )
    return out


def test_official_sdk_reads_the_simulator(sim, adapter) -> None:
    sent = [line for line in lines(adapter, TARGET, 9) if line.custom_id != "line-0000"]
    sdk = client(sim)
    job = sdk.batches.create(
        model=TARGET.provider_model, src=sdk_requests(sent), config={"display_name": "x"}
    )
    assert job.name.startswith("batches/") and job.state.name in (
        "JOB_STATE_PENDING",
        "JOB_STATE_RUNNING",
    )
    sim.gemini_batches.batches[job.name.removeprefix("batches/")].timing.delay_s = 0
    done = sdk.batches.get(name=job.name)
    assert done.state.name == "JOB_STATE_SUCCEEDED"
    responses = done.dest.inlined_responses
    assert [r.metadata["key"] for r in responses] == [line.custom_id for line in sent]
    assert (
        responses[0].response.text and responses[0].response.usage_metadata.prompt_token_count > 0
    )
    assert responses[6].error is not None and responses[6].error.code == 500  # line-0007
    # the file route: upload, create from it, download the responses file
    data = b"".join(
        json.dumps({"key": line.custom_id, "request": line.wire}).encode() + b"\n" for line in sent
    )
    uploaded = sdk.files.upload(file=io.BytesIO(data), config={"mime_type": "jsonl"})
    assert sim.gemini_batches.files[uploaded.name.removeprefix("files/")] == data
    from_file = sdk.batches.create(model=TARGET.provider_model, src=uploaded.name)
    sim.gemini_batches.batches[from_file.name.removeprefix("batches/")].timing.delay_s = 0
    finished = sdk.batches.get(name=from_file.name)
    assert finished.dest.file_name.startswith("files/")
    content = sdk.files.download(file=finished.dest.file_name)
    results = [json.loads(line) for line in content.splitlines()]
    assert [r["key"] for r in results] == [line.custom_id for line in sent]
    other = sdk.batches.create(model=TARGET.provider_model, src=sdk_requests(sent))
    sdk.batches.cancel(name=other.name)
    assert sdk.batches.get(name=other.name).state.name in (
        "JOB_STATE_RUNNING",
        "JOB_STATE_PENDING",
        "JOB_STATE_CANCELLED",
    )


async def test_backend_sends_what_the_official_sdk_sends(sim, backend, adapter) -> None:
    sent = [line for line in lines(adapter, TARGET, 3)[1:]]  # plain text lines
    sim.gemini_batches.timing.delay_s = 0
    inline_id = await backend.submit(TARGET, sent)
    await backend.poll(inline_id)
    await backend.cancel(inline_id)
    backend.inline_limit = 0
    file_id = await backend.submit(TARGET, sent)
    [o async for o in backend.results(TARGET, file_id, sent)]
    ours = sim.requests
    sim.clear()
    sdk = client(sim)
    display = f"nemorouter-{TARGET.deployment_id}-{len(sent)}"
    job = sdk.batches.create(
        model=TARGET.provider_model, src=sdk_requests(sent), config={"display_name": display}
    )
    sdk.batches.get(name=job.name)
    sdk.batches.cancel(name=job.name)
    data = b"".join(
        json.dumps({"key": line.custom_id, "request": line.wire}, separators=(",", ":")).encode()
        + b"\n"
        for line in sent
    )
    uploaded = sdk.files.upload(
        file=io.BytesIO(data), config={"mime_type": "jsonl", "display_name": display}
    )
    from_file = sdk.batches.create(
        model=TARGET.provider_model, src=uploaded.name, config={"display_name": display}
    )
    sdk.files.download(file=sdk.batches.get(name=from_file.name).dest.file_name)
    theirs = sim.requests

    def shape(recorded):
        return [
            (r.method, r.path.split("?")[0].split("batches/")[0].split("files/")[0])
            for r in recorded
        ]

    # ours reads the batch once more before downloading; the SDK's download needs a get too
    assert shape(ours) == shape(theirs)
    assert ours[0].json() == theirs[0].json()  # inline create
    assert ours[0].path == theirs[0].path == "/v1beta/models/gemini-2.5-flash:batchGenerateContent"
    start, finish = ours[3], ours[4]
    sdk_start, sdk_finish = theirs[3], theirs[4]
    for name in (
        "x-goog-upload-protocol",
        "x-goog-upload-command",
        "x-goog-upload-header-content-length",
    ):
        assert start.headers[name] == sdk_start.headers[name]
    assert start.headers["x-goog-upload-header-content-type"] == "jsonl"
    assert start.json() == sdk_start.json()  # {"file": {display_name, mime_type, size_bytes}}
    assert finish.headers["x-goog-upload-command"] == sdk_finish.headers["x-goog-upload-command"]
    assert finish.headers["x-goog-upload-offset"] == sdk_finish.headers["x-goog-upload-offset"]
    assert finish.body == sdk_finish.body  # the JSONL file itself
    create_file, sdk_create_file = ours[5].json(), theirs[5].json()
    assert (
        create_file["batch"]["inputConfig"].keys() == sdk_create_file["batch"]["inputConfig"].keys()
    )
    assert create_file["batch"]["displayName"] == sdk_create_file["batch"]["displayName"]
    assert all(r.headers["x-goog-api-key"] == KEY for r in ours)
