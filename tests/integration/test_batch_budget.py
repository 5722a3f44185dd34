"""The batch runner with a budgeted key, through the CLI: every answer the gateway recorded as
paid has its line in results.jsonl, a 402 caused by reservations in flight means wait and
slow down, only a truly spent budget stops the job (and says so), and `--max-tokens` (or the
task's default) is sent on every request."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemorouter.demo import INVOICE_SCHEMA, invoice_page, sample_documents
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import Fault, SimulatedProvider
from nemorouter.types.money import display_usd

from .conftest import MASTER_KEY, GatewayFactory, gateway_config

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
PAGES = 11


class Budgeted:
    """A gateway on its own SQLite store and a key with a budget on it."""

    def __init__(self, gateway: BackgroundGateway, database: Path, key: dict[str, Any]) -> None:
        self.gateway = gateway
        self.database = database
        self.key = key["key"]
        self.key_id = key["id"]

    def admin(self, path: str) -> Any:
        response = httpx.get(f"{self.gateway.url}{path}", headers=ADMIN, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def paid(self, job_id: str) -> dict[tuple[str, int], Decimal]:
        """Cost per (doc, page) of every call the gateway recorded as answered for the job."""
        job = self.admin(f"/admin/jobs/{job_id}")  # an admin read flushes the spend writer
        with sqlite3.connect(self.database) as db:
            rows = db.execute(
                "SELECT metadata, cost_pico FROM spend WHERE job_id = ? AND status = 200",
                (job_id,),
            ).fetchall()
        paid: dict[tuple[str, int], Decimal] = {}
        for metadata, cost_pico in rows:
            where = json.loads(metadata)
            key = (where["doc"], where["page"])
            paid[key] = paid.get(key, Decimal(0)) + Decimal(cost_pico).scaleb(-12)
        assert job["succeeded"] == len(rows)
        assert Decimal(job["cost_usd"]) == sum(paid.values(), Decimal(0))
        return paid


def budgeted(
    start_gateway: GatewayFactory, sim: SimulatedProvider, tmp_path: Path, budget_usd: str
) -> Budgeted:
    database = tmp_path / "store.db"
    gateway = start_gateway(gateway_config(sim, database_url=f"sqlite:///{database}"))
    created = httpx.post(
        f"{gateway.url}/admin/keys",
        json={"name": "batch", "budget_usd": budget_usd, "budget_period": "daily"},
        headers=ADMIN,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return Budgeted(gateway, database, created.json())


def documents(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    sample_documents(docs)  # 5 pages
    for extra in range(PAGES - 5):
        invoice_page(10 + extra).save(docs / f"extra-{extra}.png")
    (tmp_path / "schema.json").write_text(json.dumps(INVOICE_SCHEMA))
    return docs


def command(tmp_path: Path, base_url: str, job_id: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nemorouter.cli", "batch", "run", str(tmp_path / "docs"),
            "--job-id", job_id, "--out", str(tmp_path / "out"), "--base-url", base_url,
            "--model", "gemini-2.5-flash", *extra]  # fmt: skip


def run(cmd: list[str], key: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEMOROUTER_API_KEY": key}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def results(tmp_path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    return {(r["doc"], r["page"]): r for r in map(json.loads, lines)}


def every_paid_answer_written(
    paid: dict[tuple[str, int], Decimal], written: dict[tuple[str, int], dict[str, Any]]
) -> None:
    assert paid, "the gateway recorded no paid answer"
    answered = {page: r for page, r in written.items() if r["cost_usd"] is not None}
    assert answered.keys() == paid.keys()
    for page, cost in paid.items():  # the same calls: the page's line carries their cost
        assert Decimal(answered[page]["cost_usd"]) == cost, page


@pytest.mark.timeout(120)
def test_budget_held_by_calls_in_flight_slows_the_job_down_and_it_completes(
    tmp_path: Path, sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    # Each call reserves ~$0.02 (8192 tokens, the extraction default, at $2.50/M) and really
    # costs ~$0.0002: $0.05 pays for every page but admits only 3 calls at once of the 8.
    env = budgeted(start_gateway, sim, tmp_path, "0.05")
    documents(tmp_path)
    sim.latency_ms = 200
    cmd = command(tmp_path, env.gateway.base_url, "held-1", "--schema",
                  str(tmp_path / "schema.json"), "--concurrency", "8")  # fmt: skip
    done = run(cmd, env.key)
    assert done.returncode == 0, done.stderr
    written = results(tmp_path)
    assert len(written) == PAGES and all(r["status"] == "ok" for r in written.values())
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["budget_waits"] > 0  # the gateway did refuse with retry-after, and it waited
    assert summary["not_sent"] == 0
    every_paid_answer_written(env.paid("held-1"), written)
    assert all(r.json()["max_tokens"] == 8192 for r in sim.requests)  # the extraction default


@pytest.mark.timeout(120)
def test_a_truly_spent_budget_stops_the_job_with_the_numbers_and_every_answer_written(
    tmp_path: Path, sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    # ~$0.0002 a page: $0.0015 is spent after about eight pages of the eleven.
    env = budgeted(start_gateway, sim, tmp_path, "0.0015")
    documents(tmp_path)
    sim.latency_ms = 100
    cmd = command(tmp_path, env.gateway.base_url, "spent-1", "--schema",
                  str(tmp_path / "schema.json"), "--concurrency", "4", "--max-tokens", "300")  # fmt: skip
    done = run(cmd, env.key)
    assert done.returncode == 1, done.stderr  # results written, not every page: see docs/batch.md
    paid = env.paid("spent-1")
    written = results(tmp_path)
    every_paid_answer_written(paid, written)
    assert 2 <= len(paid) < PAGES
    spent = display_usd(sum(paid.values(), Decimal(0)))  # the one human money format
    assert f"the budget is spent (limit $0.0015, spent {spent})" in done.stderr, done.stderr
    assert "budget of key 'batch' is spent" in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["not_sent"] == PAGES - len(written) > 0
    assert f"{summary['ok']} pages done" in done.stderr and "results.jsonl" in done.stderr
    assert all(r.json()["max_tokens"] == 300 for r in sim.requests)  # --max-tokens sent as is


@pytest.mark.timeout(120)
def test_answers_in_flight_when_the_budget_runs_out_are_written(
    tmp_path: Path, sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    env = budgeted(start_gateway, sim, tmp_path, "100")
    documents(tmp_path)
    sim.latency_ms = 200
    sim.inject(Fault.latency(3000), times=2)  # two pages still in flight when the budget ends
    cmd = command(tmp_path, env.gateway.base_url, "ends-1", "--schema",
                  str(tmp_path / "schema.json"), "--concurrency", "3")  # fmt: skip
    process = subprocess.Popen(
        cmd, env={**os.environ, "NEMOROUTER_API_KEY": env.key},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    journal = tmp_path / "out" / "results.jsonl"
    deadline = time.monotonic() + 30
    while not (journal.exists() and journal.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    # A fast page is paid for: a budget below its cost is spent from now on.
    lowered = httpx.patch(f"{env.gateway.url}/admin/keys/{env.key_id}", headers=ADMIN,
                          json={"budget_usd": "0.0000001"}, timeout=30)  # fmt: skip
    assert lowered.status_code == 200, lowered.text
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr
    assert "the budget is spent (limit $0.0000001, spent $" in stderr
    written = results(tmp_path)
    answered = [r for r in written.values() if r["cost_usd"] is not None]
    # Every request that reached the provider was answered and written, the slow two too.
    assert len(answered) == len(sim.requests) >= 3
    every_paid_answer_written(env.paid("ends-1"), written)


def test_max_tokens_default_follows_the_task(
    tmp_path: Path, sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    env = budgeted(start_gateway, sim, tmp_path, "100")
    docs = tmp_path / "docs"
    docs.mkdir()
    invoice_page(1).save(docs / "one.png")
    base = env.gateway.base_url
    classify = run(command(tmp_path, base, "labels", "--classify", "invoice,receipt"), env.key)
    assert classify.returncode == 0, classify.stderr  # the simulated provider picks a label
    prompt_out = tmp_path / "out-prompt"
    prompt = run([*command(tmp_path, base, "free", "--prompt", "Describe the page."), "--out",
                  str(prompt_out)], env.key)  # fmt: skip
    assert prompt.returncode == 0, prompt.stderr
    sent = [r.json()["max_tokens"] for r in sim.requests]
    assert sent == [1024, 8192]  # classify, then the free prompt


@pytest.mark.timeout(120)
def test_sigterm_waits_for_the_answers_in_flight_and_writes_them(
    tmp_path: Path, sim: SimulatedProvider, start_gateway: GatewayFactory
) -> None:
    env = budgeted(start_gateway, sim, tmp_path, "100")
    documents(tmp_path)
    sim.latency_ms = 1500
    cmd = command(tmp_path, env.gateway.base_url, "stop-1", "--schema",
                  str(tmp_path / "schema.json"), "--concurrency", "3")  # fmt: skip
    process = subprocess.Popen(
        cmd, env={**os.environ, "NEMOROUTER_API_KEY": env.key},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while len(sim.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    in_flight = len(sim.requests)
    assert in_flight == 3
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "waiting for 3 request(s) in flight" in stderr
    assert len(sim.requests) == in_flight  # nothing more was sent after the signal
    written = results(tmp_path)
    assert len(written) == in_flight and all(r["status"] == "ok" for r in written.values())
    every_paid_answer_written(env.paid("stop-1"), written)
