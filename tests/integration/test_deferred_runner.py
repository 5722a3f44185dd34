"""The batch runner's `--deferred` against the real gateway (not a fake Batch API): pages go
through /v1/files and /v1/batches, the gateway sends them to the simulated provider's
Batch API at half price, and the runner's summary cost equals the job's deferred cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx

from nemorouter.config import parse_config
from nemorouter.demo import sample_documents
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider

from .conftest import MASTER_KEY
from .test_deferred import deferred_config


def test_batch_run_deferred_through_the_gateway(tmp_path: Path) -> None:
    docs, out = tmp_path / "docs", tmp_path / "out"
    sample_documents(docs)  # 5 pages
    with SimulatedProvider() as sim:
        config = deferred_config(sim, database_url=f"sqlite:///{tmp_path}/store.db")
        with BackgroundGateway(parse_config(config, env={})) as gateway:
            args = [sys.executable, "-m", "nemorouter.cli", "batch", "run", str(docs),
                    "--job-id", "runner-deferred", "--prompt", "Describe the page.",
                    "--out", str(out), "--base-url", gateway.base_url, "--model", "gpt-4o-mini",
                    "--deferred", "--poll-interval", "0.2"]  # fmt: skip
            env = {**os.environ, "NEMOROUTER_API_KEY": MASTER_KEY}
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr + done.stdout
            assert sim.batches.submitted_lines == 5 and sim.request_count == 0
            records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
            assert len(records) == 5 and {r["status"] for r in records} == {"ok"}
            summary = json.loads((out / "summary.json").read_text())
            job = httpx.get(
                f"{gateway.url}/admin/jobs/runner-deferred",
                headers={"authorization": f"Bearer {MASTER_KEY}"},
            ).json()
            assert job["deferred_requests"] == 5
            assert Decimal(summary["cost_total_usd"]) == Decimal(job["deferred_cost_usd"]) > 0
