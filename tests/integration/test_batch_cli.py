"""`nemorouter batch run|status` through the CLI, as a user runs them: a gateway that is not
there ends the job in seconds with one clear message (exit 3); the exit codes of unreadable
and missing inputs; `batch status` after a kill -9 tells total, done, pending, cost, that
the job is not running, and which paid answers were lost; resume completes."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from nemorouter.batch.sources import discover, render_page
from nemorouter.demo import invoice_page, sample_documents
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import Fault, SimulatedProvider

from .conftest import MASTER_KEY, GatewayFactory, gateway_config

ENV = {**os.environ, "NEMOROUTER_API_KEY": MASTER_KEY}
PAGES = 11


def batch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nemorouter.cli", "batch", *args]
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=timeout)


def run_args(docs: Path, out: Path, base_url: str, job_id: str = "cli-1") -> list[str]:
    return ["run", str(docs), "--job-id", job_id, "--prompt", "Describe the page.",
            "--out", str(out), "--base-url", base_url, "--model", "gemini-2.5-pro"]  # fmt: skip


def nothing_listening() -> str:
    with socket.socket() as probe:  # a port just freed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def documents(tmp_path: Path, pages: int = 5) -> Path:
    docs = tmp_path / "docs"
    sample_documents(docs)  # 5 pages
    for extra in range(pages - 5):
        invoice_page(10 + extra).save(docs / f"extra-{extra}.png")
    return docs


def results(out: Path) -> dict[tuple[str, int], dict[str, Any]]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {(r["doc"], r["page"]): r for r in map(json.loads, lines)}


@pytest.mark.timeout(60)
def test_gateway_unreachable_stops_within_seconds_with_one_clear_message(tmp_path: Path) -> None:
    docs, out, base_url = documents(tmp_path, pages=PAGES), tmp_path / "out", nothing_listening()
    started = time.monotonic()
    done = batch(*run_args(docs, out, base_url), "--concurrency", "4")
    elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr  # docs/batch.md: 3, the gateway is unreachable
    assert elapsed < 10, elapsed  # was 94 s of retries
    assert f"cannot reach the gateway at {base_url}" in done.stderr
    assert "Is `nemorouter serve` running there?" in done.stderr
    assert "NEMOROUTER_BASE_URL" in done.stderr
    assert done.stderr.count("cannot reach the gateway") == 1
    assert "0 pages done, 0 failed, 11 not sent" in done.stderr
    assert (out / "results.jsonl").read_text() == ""  # no made-up failures: resumable as is
    summary = json.loads((out / "summary.json").read_text())
    assert summary["not_sent"] == summary["pages_total"] == PAGES
    shown = batch("status", "--out", str(out))
    assert "not running (last run ended at" in shown.stdout
    assert "the gateway was unreachable" in shown.stdout
    assert f"{PAGES} total, 0 done, 0 failed, {PAGES} pending" in shown.stdout


def test_unreadable_inputs_with_every_page_done_exit_1(
    tmp_path: Path, gateway: BackgroundGateway, sim: SimulatedProvider
) -> None:
    docs = documents(tmp_path)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 this is not a whole PDF")
    done = batch(*run_args(docs, tmp_path / "out", gateway.base_url))
    assert done.returncode == 1, done.stderr  # a document not processed is not "all done"
    assert "5/5 pages ok, 0 failed, 1 unreadable inputs" in done.stdout
    errors = (tmp_path / "out" / "errors.jsonl").read_text()
    assert json.loads(errors)["doc"] == "broken.pdf"
    (docs / "broken.pdf").unlink()  # fixed: the rerun has nothing left to send and exits 0
    again = batch(*run_args(docs, tmp_path / "out", gateway.base_url))
    assert again.returncode == 0, again.stderr
    assert len(sim.requests) == 5


def test_no_readable_document_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a document")
    out = tmp_path / "out"
    done = batch(*run_args(empty, out, nothing_listening()))
    assert done.returncode == 2, done.stderr
    assert f"no document found in {empty}" in done.stderr
    assert "0/0 pages" not in done.stdout + done.stderr
    assert not out.exists()  # nothing to resume: no output folder littered
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "scan.pdf").write_bytes(b"")
    done = batch(*run_args(broken, out, nothing_listening()))
    assert done.returncode == 2, done.stderr
    assert f"no readable document in {broken}: 1 file(s) could not be read: scan.pdf:" in (
        done.stderr
    )


def test_run_help_lists_the_exit_codes() -> None:
    shown = batch("run", "--help")
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "Exit codes: 0 every page of every input done" in text
    for code in ("1 results written but not all", "2 bad usage", "3 the gateway is unreachable",
                 "128+N stopped by signal N"):  # fmt: skip
        assert code in text, code


def sent_pages(docs: Path, requests: list[Any]) -> list[tuple[str, int]]:
    """The (doc, page) of each request the provider received, by its image."""
    by_image = {}
    for document in discover([docs])[0]:
        for number in range(1, document.pages + 1):
            by_image[render_page(document, number).data] = (document.doc, number)
    pages = []
    for request in requests:
        url = request.json()["messages"][0]["content"][1]["image_url"]["url"]
        pages.append(by_image[base64.b64decode(url.split(",", 1)[1])])
    return pages


def status_json(out: Path) -> dict[str, Any]:
    shown = batch("status", "--out", str(out), "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


@pytest.mark.timeout(120)
def test_status_after_kill_9_shows_totals_not_running_and_paid_answers_lost(
    tmp_path: Path, start_gateway: GatewayFactory, sim: SimulatedProvider
) -> None:
    # The gateway waits for the slow provider (no timeout, no retry) while the test looks on.
    gateway = start_gateway(gateway_config(sim, request_timeout_s=60))
    docs, out = documents(tmp_path, pages=PAGES), tmp_path / "out"
    args = [*run_args(docs, out, gateway.base_url, job_id="killed-1"), "--concurrency", "2"]
    # Three quick answers, then two requests the provider holds for 12 s: in flight at the kill.
    sim.inject(Fault.latency(0), times=3)
    sim.inject(Fault.latency(12_000), times=2)
    command = [sys.executable, "-m", "nemorouter.cli", "batch", *args]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        journal = out / "results.jsonl"
        written = journal.read_text().count("\n") if journal.exists() else 0
        if written == 3 and len(sim.requests) == 5:
            break
        time.sleep(0.02)
    assert len(sim.requests) == 5
    while_running = status_json(out)
    assert while_running["running"] is True and while_running["state"] == "running"
    assert while_running["pid"] == process.pid and while_running["in_flight"] == 2
    assert while_running["paid_answer_lost"]["count"] == 0  # in flight is not lost
    second = batch(*args)  # the same OUT is not written by two runs at once
    assert second.returncode == 2 and f"(pid {process.pid}) is running" in second.stderr
    process.kill()
    process.wait()

    written = results(out)
    lost = set(sent_pages(docs, sim.requests)) - written.keys()
    assert len(lost) == 2  # the provider answered (or will) two pages the runner never wrote
    status = status_json(out)
    assert status["running"] is False and status["state"] == "interrupted"
    assert status["pages"] == {"total": PAGES, "done": 3, "failed": 0, "pending": PAGES - 3}
    assert Decimal(status["cost_usd"]) == sum(Decimal(r["cost_usd"]) for r in written.values())
    reported = status["paid_answer_lost"]
    assert reported["count"] == 2
    assert {(p["doc"], p["page"]) for p in reported["pages"]} == lost
    text = batch("status", "--out", str(out)).stdout
    assert "not running (the last run" in text and "was interrupted" in text
    assert f"{PAGES} total, 3 done, 0 failed, {PAGES - 3} pending" in text
    assert "paid, answer lost: 2 page(s)" in text
    assert "2 will be sent again on resume" in text and "billed twice" in text
    for doc, page in lost:
        assert f"{doc} p{page}" in text

    resumed = batch(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "paid, answer lost: 2 page(s)" in resumed.stderr
    final = results(out)
    assert len(final) == PAGES and all(r["status"] == "ok" for r in final.values())
    assert lost <= set(sent_pages(docs, sim.requests[5:]))  # sent again, as announced
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paid_answer_lost"]["count"] == 2
    assert {(p["doc"], p["page"]) for p in summary["paid_answer_lost"]["pages"]} == lost
    after = status_json(out)
    assert after["state"] == "ended" and after["ended"] == "completed"
    assert after["pages"] == {"total": PAGES, "done": PAGES, "failed": 0, "pending": 0}
    assert all(p["sent_again"] for p in after["paid_answer_lost"]["pages"])
