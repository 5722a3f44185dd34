"""The batch runner over the real corpus, through a real gateway: every kind of document,
broken inputs reported (not fatal), pacing that honours 429s, and kill -9 then resume."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from nemorouter.batch.prompts import classification, extraction
from nemorouter.batch.runner import BatchOptions, run_batch
from nemorouter.batch.sources import discover, render_page
from nemorouter.demo import INVOICE_SCHEMA, invoice_page, sample_documents
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import Fault, SimulatedProvider
from tests.corpus import CORPUS

from .conftest import MASTER_KEY

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")


def options(tmp_path: Path, inputs: list[Path], base_url: str, **kw: object) -> BatchOptions:
    settings: dict[str, object] = {
        "inputs": inputs, "job_id": "job-test", "task": extraction(INVOICE_SCHEMA),
        "out": tmp_path / "out", "base_url": base_url, "api_key": MASTER_KEY,
        "concurrency": 8, "plain_progress": True, **kw,
    }  # fmt: skip
    return BatchOptions(**settings)  # type: ignore[arg-type]


def results(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@needs_corpus
@pytest.mark.timeout(180)
def test_whole_corpus_every_kind_and_bad_inputs_reported(
    tmp_path: Path, gateway: BackgroundGateway, sim: SimulatedProvider
) -> None:
    outcome = asyncio.run(
        run_batch(options(tmp_path, [CORPUS], gateway.base_url, model="gemini-2.5-pro"))
    )
    documents, _ = discover([CORPUS])
    summary = outcome.summary
    assert summary["pages"] == sum(d.pages for d in documents)
    assert summary["ok"] == summary["pages"]
    assert {d.kind for d in documents} == {"pdf", "image", "tiff"}
    errors = [
        json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()
    ]
    failed_docs = {e["doc"] for e in errors}
    assert {f"bad/{n}" for n in ("encrypted-aes256.pdf", "password-protected-real.pdf", "truncated.pdf",
                                 "zero-bytes.pdf", "not-a-pdf.pdf", "huge-dimensions.png")} <= failed_docs  # fmt: skip
    assert "bad/png-named-as.pdf" not in failed_docs  # a PNG under a .pdf name is still a page
    assert all(e["reason"] for e in errors)
    assert outcome.exit_code == 1  # some inputs unreadable; every readable page done
    page_costs = [Decimal(str(r["cost_usd"])) for r in results(tmp_path / "out")]
    assert all(c > 0 for c in page_costs)
    assert Decimal(summary["cost_total_usd"]) == sum(page_costs)  # exact, from the cost headers
    sent = sim.requests
    assert len(sent) == summary["pages"]
    assert all(r.json()["model"] == "gemini-2.5-pro" for r in sent)
    assert all("metadata" not in r.json() for r in sent)  # the gateway keeps job metadata to itself
    pages = {(r["doc"], r["page"]) for r in results(tmp_path / "out")}
    assert pages == {(d.doc, n) for d in documents for n in range(1, d.pages + 1)}


def test_unacceptable_answers_are_reasked_once_then_fail(
    tmp_path: Path, gateway: BackgroundGateway, sim: SimulatedProvider
) -> None:
    docs = tmp_path / "docs"
    sample_documents(docs)
    # Every ask and re-ask is answered with no label at all.
    sim.inject(Fault.answer("Looks like a scanned business document to me."), times=10)
    outcome = asyncio.run(run_batch(options(tmp_path, [docs], gateway.base_url,
                                            task=classification(["invoice", "receipt"]))))  # fmt: skip
    assert outcome.summary["failed"] == outcome.summary["pages"] == 5
    assert len(sim.requests) == 10  # each page asked, then re-asked once
    reask = sim.requests[-1].json()["messages"]
    assert [m["role"] for m in reask] == ["user", "assistant", "user"]
    assert all("is not one of the labels" in str(r["error"]) for r in results(tmp_path / "out"))
    assert outcome.exit_code == 1


def test_pacing_honours_each_429(tmp_path: Path, sim: SimulatedProvider) -> None:
    docs = tmp_path / "docs"
    sample_documents(docs)
    sim.inject(Fault.status(429, retry_after=1), times=2)
    # Straight at an OpenAI-compatible endpoint (the simulated provider) to see its 429s.
    outcome = asyncio.run(run_batch(options(tmp_path, [docs], sim.base_url, concurrency=3)))
    assert outcome.summary["ok"] == 5
    assert outcome.summary["throttled"] == 2
    times = sorted(r.at for r in sim.requests)
    assert len(times) == 7  # five pages plus the two refused tries, no storm
    assert times[-1] - times[0] >= 0.95  # the retry-after was waited out


@pytest.mark.timeout(120)
def test_kill_9_then_resume_loses_nothing_and_repeats_nothing(
    tmp_path: Path, gateway: BackgroundGateway, sim: SimulatedProvider
) -> None:
    docs = tmp_path / "docs"
    sample_documents(docs)
    for extra in range(6):  # more pages, each different
        invoice_page(10 + extra).save(docs / f"extra-{extra}.png")
    sim.latency_ms = 150
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nemorouter.cli", "batch", "run", str(docs), "--job-id", "resume-1",
               "--schema", str(tmp_path / "schema.json"), "--out", str(out), "--concurrency", "2",
               "--base-url", gateway.base_url, "--model", "gemini-2.5-pro"]  # fmt: skip
    (tmp_path / "schema.json").write_text(json.dumps(INVOICE_SCHEMA))
    env = {**os.environ, "NEMOROUTER_API_KEY": MASTER_KEY}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = (
            (out / "results.jsonl").read_text().count("\n")
            if (out / "results.jsonl").exists()
            else 0
        )
        if done >= 3:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {(r["doc"], r["page"]) for r in results(out) if r["status"] == "ok"}
    assert 3 <= len(finished) < 11
    first_run = len(sim.requests)
    sim.latency_ms = 0
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    final = results(out)
    assert len(final) == 11
    assert all(r["status"] == "ok" for r in final)
    # No page finished before the kill was sent again: compare the images sent.
    documents = {d.doc: d for d in discover([docs])[0]}
    finished_images = {render_page(documents[doc], n).data for doc, n in finished}
    resent = {
        base64.b64decode(r.json()["messages"][0]["content"][1]["image_url"]["url"].split(",", 1)[1])
        for r in sim.requests[first_run:]
    }
    assert not finished_images & resent
    assert len(sim.requests) - first_run == 11 - len(finished)
