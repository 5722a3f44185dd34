"""A 200-line deferred job through the gateway to each native provider batch API: Gemini API
batch mode, Anthropic Message Batches, Vertex AI batch inference (staged in the simulated
Cloud Storage), driven by the official openai SDK; every line answered, costed at half the
price (Vertex: of its regional price)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from nemorouter.catalog import load_catalog
from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import FakeOAuthServer, SimulatedAnthropic, SimulatedGemini
from nemorouter.testing.sim_batch_clock import BatchTiming

from .conftest import MASTER_KEY
from .test_deferred import read, request_line, run

KEY = "sim-key"
CASES = {
    # provider type, model, simulator class, its batch API's attribute
    "gemini": ("gemini", "gemini-2.5-flash", SimulatedGemini, "gemini_batches"),
    "anthropic": ("anthropic", "claude-haiku-4-5", SimulatedAnthropic, "message_batches"),
    "vertex": ("vertex", "gemini-2.5-flash", SimulatedGemini, "vertex_batches"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_200_lines_through_a_native_batch_api(case: str, tmp_path: Path) -> None:
    kind, model, simulator, attribute = CASES[case]
    with (
        FakeOAuthServer() as oauth,
        simulator(oauth=oauth) if kind == "vertex" else simulator(api_key=KEY) as sim,
    ):
        getattr(sim, attribute).timing = BatchTiming(delay_s=0.5)
        provider: dict[str, Any] = {"type": kind, "api_key": KEY, "base_url": sim.base_url}
        location = None
        if kind == "vertex":
            location = "us-central1"
            key_file = oauth.create_account().write(tmp_path / "key.json")
            provider = {
                "type": kind, "project": "sim-project", "location": location,
                "base_url": sim.base_url, "credentials": str(key_file),
                "batch_bucket": "gs://sim-bucket/nemo", "storage_url": sim.origin,
            }  # fmt: skip
        config: dict[str, Any] = {
            "settings": {
                "master_key": MASTER_KEY,
                "database_url": f"sqlite:///{tmp_path}/store.db",
                "cache": {"enabled": False},
                "deferred": {"poll_s": 0.1, "poll_max_s": 0.3, "tick_s": 0.1},
            },
            "providers": {"p": provider},
            "deployments": [{"id": "d", "model": model, "provider": "p"}],
        }
        with BackgroundGateway(parse_config(config, env={})) as gateway:
            client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
            lines = [request_line(i, model=model, max_tokens=200) for i in range(200)]
            batch = run(client, lines, metadata={"job_id": f"native-{case}"})
            assert batch.status == "completed" and batch.request_counts.completed == 200
            price = load_catalog()[model].pricing_for(kind, location)
            total = Decimal(0)
            for line in read(client, batch.output_file_id):
                body = line["response"]["body"]
                assert body["model"] == model
                usage = body["usage"]
                cost = Decimal(usage["cost"])
                assert cost == (
                    usage["prompt_tokens"] * price.input_per_mtok
                    + usage["completion_tokens"] * price.output_per_mtok
                ) / Decimal(2_000_000)
                total += cost
            job = httpx.get(
                f"{gateway.url}/admin/jobs/native-{case}",
                headers={"authorization": f"Bearer {MASTER_KEY}"},
            ).json()
            assert job["deferred_requests"] == 200
            assert Decimal(job["deferred_cost_usd"]) == total > 0
