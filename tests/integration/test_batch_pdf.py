"""The batch runner's PDF send modes through a real gateway: `--send document` (a PDF file
part per PDF or chunk, checked at the simulated provider), resume after kill -9 in document
mode, `--text-layer` on born-digital and scanned corpus pages, and the estimate beside the
actual cost in the summary."""

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
from typing import Any

import pypdfium2 as pdfium
import pytest
from PIL import Image

from nemorouter.batch.plan import SendPlan
from nemorouter.batch.prompts import extraction
from nemorouter.batch.runner import BatchOptions, run_batch
from nemorouter.batch.status import job_status
from nemorouter.batch.units import TEXT_LABEL
from nemorouter.demo import INVOICE_SCHEMA
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.corpus import CORPUS

from .conftest import MASTER_KEY

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")
MULTI = CORPUS / "mixed" / "multi_page.pdf"  # 5 born-digital pages
COVER = CORPUS / "mixed" / "cover+AmazonWebServices.pdf"  # p1 a scan, p2 a born-digital invoice
SCAN = CORPUS / "mixed" / "ocr_test.pdf"  # 1 scanned page


def options(tmp_path: Path, inputs: list[Path], base_url: str, **kw: Any) -> BatchOptions:
    settings: dict[str, Any] = {
        "inputs": inputs, "job_id": "pdf-test", "task": extraction(INVOICE_SCHEMA),
        "out": tmp_path / "out", "base_url": base_url, "api_key": MASTER_KEY,
        "model": "gemini-2.5-pro", "concurrency": 4, "plain_progress": True, **kw,
    }  # fmt: skip
    return BatchOptions(**settings)


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def pdf_texts(data: bytes) -> list[str]:
    pdf = pdfium.PdfDocument(data)
    return [pdf[i].get_textpage().get_text_bounded() for i in range(len(pdf))]


def file_parts(request: Any) -> list[dict[str, Any]]:
    content = request.json()["messages"][0]["content"]
    return [p for p in content if p["type"] == "file"]


def sent_pdf(part: dict[str, Any]) -> bytes:
    return base64.b64decode(part["file"]["file_data"].split(",", 1)[1])


@pytest.mark.timeout(120)
def test_document_mode_sends_each_chunk_as_one_file_part(
    tmp_path: Path, gateway: BackgroundGateway, sim: SimulatedProvider
) -> None:
    Image.new("RGB", (600, 400), "white").save(tmp_path / "photo.png")
    plan = SendPlan("document", "off", 2)
    outcome = asyncio.run(run_batch(options(tmp_path, [MULTI, COVER, tmp_path / "photo.png"],
                                            gateway.base_url, plan=plan)))  # fmt: skip
    lines = {(r["doc"], tuple(r["pages"])): r for r in results(tmp_path / "out")}
    assert set(lines) == {
        ("multi_page.pdf", (1, 2)), ("multi_page.pdf", (3, 4)), ("multi_page.pdf", (5,)),
        ("cover+AmazonWebServices.pdf", (1, 2)), ("photo.png", (1,)),
    }  # fmt: skip
    assert all(r["status"] == "ok" for r in lines.values())
    assert lines[("multi_page.pdf", (3, 4))]["sent"] == "document"
    assert lines[("photo.png", (1,))]["sent"] == "image"
    summary = outcome.summary
    assert (summary["pages"], summary["requests"], summary["ok"]) == (8, 5, 8)
    assert outcome.exit_code == 0
    status = job_status(tmp_path / "out")  # `batch status` counts pages, not requests
    assert status["pages"] == {"total": 8, "done": 8, "failed": 0, "pending": 0}
    # At the provider: each PDF request carries one file part holding exactly its pages.
    texts = {"multi_page.pdf": pdf_texts(MULTI.read_bytes()),
             "cover+AmazonWebServices.pdf": pdf_texts(COVER.read_bytes())}  # fmt: skip
    seen = {}
    for request in sim.requests:
        parts = file_parts(request)
        if not parts:
            kinds = [p["type"] for p in request.json()["messages"][0]["content"]]
            assert kinds == ["text", "image_url"]  # the PNG, as an image
            continue
        [part] = parts
        name = part["file"]["filename"]
        doc = name.split(".p")[0] + ".pdf" if ".p" in name else name
        seen[name] = pdf_texts(sent_pdf(part))
        assert part["file"]["file_data"].startswith("data:application/pdf;base64,")
        assert all(t in texts[doc] for t in seen[name])
    assert seen == {
        "multi_page.p1-2.pdf": texts["multi_page.pdf"][0:2],
        "multi_page.p3-4.pdf": texts["multi_page.pdf"][2:4],
        "multi_page.p5.pdf": texts["multi_page.pdf"][4:],
        "cover+AmazonWebServices.pdf": texts["cover+AmazonWebServices.pdf"],  # whole: 2 pages
    }
    assert len(sim.requests) == 5
    # The estimate for the run's own model and mode sits beside the actual cost.
    estimate = summary["estimate"]
    assert (estimate["model"], estimate["send"], estimate["requests"]) == (
        "gemini-2.5-pro", "document", 5)  # fmt: skip
    assert Decimal(estimate["cost_usd"]) > 0 and Decimal(summary["cost_total_usd"]) > 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["estimate"] == estimate


@pytest.mark.timeout(120)
def test_text_layer_instead_and_with_image_on_born_digital_and_scanned_pages(
    tmp_path: Path, gateway: BackgroundGateway, sim: SimulatedProvider
) -> None:
    out = tmp_path / "instead"
    outcome = asyncio.run(run_batch(options(tmp_path, [COVER, SCAN], gateway.base_url, out=out,
                                            plan=SendPlan("pages", "instead"))))  # fmt: skip
    assert outcome.exit_code == 0
    sent = {(r["doc"], r["page"]): r["sent"] for r in results(out)}
    assert sent == {("cover+AmazonWebServices.pdf", 1): "image",
                    ("cover+AmazonWebServices.pdf", 2): "text", ("ocr_test.pdf", 1): "image"}  # fmt: skip
    by_kind = sorted([p["type"] for p in r.json()["messages"][0]["content"]] for r in sim.requests)
    assert by_kind == [["text", "image_url"], ["text", "image_url"], ["text", "text"]]
    [text_only] = [r for r in sim.requests if "image_url" not in json.dumps(r.json())]
    page_text = text_only.json()["messages"][0]["content"][1]["text"]
    assert page_text.startswith(TEXT_LABEL) and "Amazon Web Services" in page_text
    # Each result line carries the provider's usage: the simulator counts text at 4 characters
    # a token and 258 tokens an image.
    instruction = text_only.json()["messages"][0]["content"][0]["text"]
    tokens = {r["page"]: r["prompt_tokens"] for r in results(out) if r["doc"].startswith("cover")}
    assert tokens[2] == -(-(len(instruction) + len(page_text)) // 4)
    assert tokens[1] == -(-len(instruction) // 4) + 258
    assert outcome.summary["estimate"]["send"] == "text"

    first = len(sim.requests)
    out = tmp_path / "with-image"
    outcome = asyncio.run(run_batch(options(tmp_path, [COVER], gateway.base_url, out=out,
                                            plan=SendPlan("pages", "with-image"))))  # fmt: skip
    assert [r["sent"] for r in results(out)] == ["image", "image+text"]
    kinds = [[p["type"] for p in r.json()["messages"][0]["content"]] for r in sim.requests[first:]]
    assert sorted(kinds) == [["text", "image_url"], ["text", "image_url", "text"]]


@pytest.mark.timeout(120)
def test_document_mode_resumes_after_kill_9_without_resending_finished_chunks(
    tmp_path: Path, gateway: BackgroundGateway, sim: SimulatedProvider
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("multi_page.pdf", "normal_4pages.pdf", "cover+AmazonWebServices.pdf",
                 "cover+saeco.pdf", "fake-memo.pdf"):  # fmt: skip
        (docs / name).symlink_to(CORPUS / "mixed" / name)
    (tmp_path / "schema.json").write_text(json.dumps(INVOICE_SCHEMA))
    sim.latency_ms = 150
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nemorouter.cli", "batch", "run", str(docs), "--job-id", "doc-1",
               "--schema", str(tmp_path / "schema.json"), "--out", str(out), "--concurrency", "1",
               "--base-url", gateway.base_url, "--model", "gemini-2.5-pro",
               "--send", "document", "--pages-per-request", "2"]  # fmt: skip
    env = {**os.environ, "NEMOROUTER_API_KEY": MASTER_KEY}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (out / "results.jsonl").exists() and (out / "results.jsonl").read_text().count(
            "\n"
        ) >= 3:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {(r["doc"], tuple(r["pages"])) for r in results(out) if r["status"] == "ok"}
    # 5 + 4 + 2 + 2 + 1 pages in chunks of 2: 3 + 2 + 1 + 1 + 1 = 8 requests.
    assert 3 <= len(finished) < 8
    first_run = len(sim.requests)
    sim.latency_ms = 0
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    final = results(out)
    assert len(final) == 8 and all(r["status"] == "ok" for r in final)
    assert sum(len(r["pages"]) for r in final) == 14
    resent = {part["file"]["filename"] for r in sim.requests[first_run:] for part in file_parts(r)}
    counts = {"multi_page.pdf": 5, "normal_4pages.pdf": 4, "fake-memo.pdf": 1}
    finished_names = {  # a whole PDF goes under its name, a chunk as NAME.pFIRST-LAST.pdf
        doc if len(p) == counts.get(doc, 2)
        else doc.removesuffix(".pdf") + (f".p{p[0]}-{p[-1]}" if len(p) > 1 else f".p{p[0]}") + ".pdf"
        for doc, p in finished
    }  # fmt: skip
    assert not finished_names & resent
    assert len(sim.requests) - first_run == 8 - len(finished)
    assert "estimate (gemini-2.5-pro, send document)" in again.stdout
    # The same OUT refuses the job sent another way: its results are per chunk.
    other = subprocess.run(command[:-4], env=env, capture_output=True, text=True, timeout=60)
    assert other.returncode == 2
    assert "different task" in other.stderr
