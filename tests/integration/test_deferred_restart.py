"""A gateway killed (SIGKILL) in the middle of a deferred job: the next process takes the
poller's lease once it expires, polls the provider batch the dead one submitted (never
submits it again), and every line ends in the output file, charged once."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from nemorouter.testing import SimulatedProvider
from nemorouter.testing.processes import serve_process

from .conftest import MASTER_KEY
from .test_deferred import deferred_config, jsonl, read, request_line, wait

LINES = 120


@pytest.mark.timeout(180)
def test_killed_gateway_resumes_polling_and_loses_no_line(tmp_path: Path) -> None:
    with SimulatedProvider() as sim:
        sim.batches.progress_s = 3.0
        config = deferred_config(sim, database_url=f"sqlite:///{tmp_path}/store.db")
        with serve_process(config, tmp_path, "first") as (process, url):
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
            upload = client.files.create(
                file=("p.jsonl", jsonl([request_line(i) for i in range(LINES)])), purpose="batch"
            )
            batch = client.batches.create(
                input_file_id=upload.id, endpoint="/v1/chat/completions",
                completion_window="24h", metadata={"job_id": "killed"},
            )  # fmt: skip
            deadline = time.monotonic() + 20
            while sim.batches.submitted_lines < LINES:
                assert time.monotonic() < deadline, "the batch never reached the provider"
                time.sleep(0.05)
            time.sleep(0.3)  # a poll or two while the provider batch is in progress
            process.kill()  # no shutdown: the lease stays held until it expires
            process.wait(timeout=10)
        with serve_process(config, tmp_path, "second") as (_, url):
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
            ended = wait(client, batch.id, 60)
            assert ended.status == "completed"
            assert ended.request_counts.completed == LINES and ended.request_counts.failed == 0
            assert len(sim.batches.batches) == 1  # the provider batch was never submitted again
            out = read(client, ended.output_file_id)
            assert sorted(o["custom_id"] for o in out) == sorted(f"page-{i}" for i in range(LINES))
            report = httpx.get(
                f"{url}/admin/jobs/killed", headers={"authorization": f"Bearer {MASTER_KEY}"}
            ).json()
            assert report["deferred_requests"] == LINES  # one spend row per line, not two
            lines_cost = sum(Decimal(o["response"]["body"]["usage"]["cost"]) for o in out)
            assert Decimal(report["deferred_cost_usd"]) == lines_cost
