"""The simulated provider's OpenAI Batch API, driven by the official openai SDK: state
transitions, partial failures, expiry and cancel."""

from __future__ import annotations

import io
import json
import time

import openai

from nemorouter.testing import SimulatedProvider


def _upload(client: openai.OpenAI, n: int) -> str:
    lines = "".join(
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                    "body": {"model": "gpt-4o-mini",
                             "messages": [{"role": "user", "content": f"page {i}"}]}}) + "\n"
        for i in range(n)
    )  # fmt: skip
    return client.files.create(file=("in.jsonl", io.BytesIO(lines.encode())), purpose="batch").id


def _until_ended(client: openai.OpenAI, batch_id: str) -> tuple[openai.types.Batch, list[str]]:
    seen = []
    batch = client.batches.retrieve(batch_id)
    deadline = time.monotonic() + 10
    while batch.status not in ("completed", "expired", "cancelled", "failed"):
        seen.append(batch.status)
        assert time.monotonic() < deadline
        time.sleep(0.05)
        batch = client.batches.retrieve(batch_id)
    return batch, seen


def test_states_over_time_results_and_partial_failure() -> None:
    with SimulatedProvider() as sim:
        sim.batches.fail_custom_ids = {"r1"}
        client = openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0)
        file_id = _upload(client, 4)
        assert client.files.retrieve(file_id).purpose == "batch"
        created = client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        assert created.status == "validating"
        batch, seen = _until_ended(client, created.id)
        assert "in_progress" in seen and batch.status == "completed"
        assert (batch.request_counts.completed, batch.request_counts.failed) == (3, 1)
        assert batch.output_file_id is not None and batch.error_file_id is not None
        out = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
        assert {o["custom_id"] for o in out} == {"r0", "r2", "r3"}
        assert all(o["response"]["body"]["usage"]["prompt_tokens"] > 0 for o in out)
        [error] = [
            json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()
        ]
        assert error["custom_id"] == "r1" and error["response"]["status_code"] == 500
        assert [b.id for b in client.batches.list()] == [created.id]


def test_expiry_and_cancel() -> None:
    with SimulatedProvider() as sim:
        sim.batches.expire = True
        client = openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0)
        created = client.batches.create(
            input_file_id=_upload(client, 4), endpoint="/v1/chat/completions",
            completion_window="24h",
        )  # fmt: skip
        batch, _ = _until_ended(client, created.id)
        assert batch.status == "expired" and batch.request_counts.completed == 2
        assert batch.error_file_id is not None
        errors = client.files.content(batch.error_file_id).text.splitlines()
        assert {json.loads(x)["error"]["code"] for x in errors} == {"batch_expired"}
        sim.batches.expire, sim.batches.progress_s = False, 30
        created = client.batches.create(
            input_file_id=_upload(client, 2), endpoint="/v1/chat/completions",
            completion_window="24h",
        )  # fmt: skip
        assert client.batches.cancel(created.id).status == "cancelling"
        batch, _ = _until_ended(client, created.id)
        assert batch.status == "cancelled" and batch.output_file_id is None
