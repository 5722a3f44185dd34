"""`nemorouter batch run --deferred` through the real CLI against a fake OpenAI Batch API:
a run that waits; --detach, `batch status`, `batch collect`; kill -9 after submission and a
rerun that collects without submitting again; error-file lines failing their pages; the
cost summed exactly; the re-ask through the interactive path only when allowed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from nemorouter.demo import invoice_page, sample_documents

from .fake_batch_api import FakeBatchApi

ENV = {**os.environ, "NEMOROUTER_API_KEY": "sk-test"}


@pytest.fixture
def fake() -> Iterator[FakeBatchApi]:
    api = FakeBatchApi()
    yield api
    api.close()


def batch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nemorouter.cli", "batch", *args]
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=timeout)


def documents(tmp_path: Path, pages: int = 5) -> Path:
    docs = tmp_path / "docs"
    sample_documents(docs)  # 5 pages
    for extra in range(pages - 5):
        invoice_page(10 + extra).save(docs / f"extra-{extra}.png")
    return docs


def run_args(docs: Path, out: Path, fake: FakeBatchApi, *extra: str) -> list[str]:
    return ["run", str(docs), "--job-id", "deferred-1", "--prompt", "Describe the page.",
            "--out", str(out), "--base-url", fake.base_url, "--model", "gemini-2.5-flash",
            "--deferred", "--deferred-max-lines", "2", "--poll-interval", "0.1", *extra]  # fmt: skip


def results(out: Path) -> dict[tuple[str, int], dict[str, Any]]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {(r["doc"], r["page"]): r for r in map(json.loads, lines)}


def summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def sent_lines(fake: FakeBatchApi) -> list[dict[str, Any]]:
    inputs = [f for f, meta in fake.files.items() if meta["purpose"] == "batch"]
    return [json.loads(raw) for f in inputs for raw in fake.contents[f].splitlines()]


def test_run_waits_and_writes_every_page_with_the_exact_cost(
    tmp_path: Path, fake: FakeBatchApi
) -> None:
    docs, out = documents(tmp_path), tmp_path / "out"
    done = batch(*run_args(docs, out, fake))
    assert done.returncode == 0, done.stderr
    assert fake.batches_created == 3 == fake.uploads  # 5 pages, at most 2 a batch
    lines = sent_lines(fake)
    assert len(lines) == 5
    for line in lines:  # OpenAI's input line, with the interactive runner's body
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        body = line["body"]
        assert body["metadata"]["job_id"] == "deferred-1"
        assert line["custom_id"] == f"{body['metadata']['doc']}#p{body['metadata']['page']}"
        assert body["model"] == "gemini-2.5-flash" and body["max_tokens"] == 8192
        assert body["messages"][0]["content"][0]["text"] == "Describe the page."
        assert body["messages"][0]["content"][1]["type"] == "image_url"
    found = results(out)
    assert len(found) == 5
    for record in found.values():
        cid = f"{record['doc']}#p{record['page']}"
        assert record["status"] == "ok" and record["output"] == f"page {cid}"
        assert record["deferred"] is True and record["batch_id"].startswith("batch_")
        assert record["cost_usd"] == str(fake.costs[cid])
        assert record["model"] == "gemini-2.5-flash" and record["prompt_tokens"] == 300
    total = sum(fake.costs.values(), Decimal(0))
    assert Decimal(summary(out)["cost_total_usd"]) == total  # to the last digit
    assert summary(out)["cost_total_usd"] == str(total)
    assert f"cost {total}" in done.stdout
    assert "5/5 pages ok" in done.stdout
    ledger = json.loads((out / "deferred.json").read_text())
    assert [p["collected"] for p in ledger["parts"]] == [True, True, True]
    assert "deferred: submitted batch batch_1" in done.stdout
    assert "completed" in done.stdout
    again = batch(*run_args(docs, out, fake))  # nothing left to do: nothing submitted
    assert again.returncode == 0, again.stderr
    assert fake.batches_created == 3


def test_detach_then_status_then_collect(tmp_path: Path, fake: FakeBatchApi) -> None:
    fake.hold = True
    docs, out = documents(tmp_path), tmp_path / "out"
    done = batch(*run_args(docs, out, fake, "--detach"))
    assert done.returncode == 0, done.stderr
    assert "submitted, detached" in done.stderr and "batch collect --out" in done.stderr
    assert fake.batches_created == 3
    assert summary(out)["pages_in_batches"] == 5
    assert summary(out)["not_sent"] == 0
    shown = batch("status", "--out", str(out), "--base-url", fake.base_url, "--json")
    assert shown.returncode == 0, shown.stderr
    parts = json.loads(shown.stdout)["deferred"]
    assert [p["batch_id"] for p in parts] == ["batch_1", "batch_2", "batch_3"]
    assert all(p["polled"] and p["status"] == "in_progress" for p in parts)
    text = batch("status", "--out", str(out), "--base-url", fake.base_url).stdout
    assert "deferred batches: 3" in text and "batch_2:" in text
    early = batch("collect", "--out", str(out), "--base-url", fake.base_url)
    assert early.returncode == 4, early.stderr  # still running: collect later
    assert "3 batch(es) still running" in early.stderr
    assert not any(r["status"] == "ok" for r in results(out).values())
    fake.hold = False
    late = batch("collect", "--out", str(out), "--base-url", fake.base_url)
    assert late.returncode == 0, late.stderr
    assert len([r for r in results(out).values() if r["status"] == "ok"]) == 5
    assert Decimal(summary(out)["cost_total_usd"]) == sum(fake.costs.values(), Decimal(0))
    assert summary(out)["estimate"]["deferred_cost_usd"] is not None  # kept from the run
    assert fake.batches_created == 3
    shown = json.loads(batch("status", "--out", str(out), "--json").stdout)
    assert shown["pages"]["done"] == 5 and all(p["collected"] for p in shown["deferred"])


def test_kill_9_after_submission_rerun_collects_without_submitting_again(
    tmp_path: Path, fake: FakeBatchApi
) -> None:
    fake.duration_s = 4.0
    docs, out = documents(tmp_path, pages=7), tmp_path / "out"
    command = [sys.executable, "-m", "nemorouter.cli", "batch", *run_args(docs, out, fake)]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait for all 4 batch ids to be recorded
        ledger = out / "deferred.json"
        if ledger.exists():
            parts = json.loads(ledger.read_text())["parts"]
            if len(parts) == 4 and all(p["batch_id"] for p in parts):
                break
        time.sleep(0.05)
    else:
        pytest.fail("the batches were not recorded")
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert fake.batches_created == 4
    # A run killed between creating a batch and recording it: the rerun finds the batch by
    # its input file (GET /batches) instead of creating it again.
    ledger = json.loads((out / "deferred.json").read_text())
    ledger["parts"][3]["batch_id"] = None
    (out / "deferred.json").write_text(json.dumps(ledger))
    shown = batch("status", "--out", str(out), "--base-url", fake.base_url)
    assert "was interrupted" in shown.stdout
    again = batch(*run_args(docs, out, fake))
    assert again.returncode == 0, again.stderr
    assert fake.batches_created == 4 and fake.uploads == 4  # nothing submitted again
    assert len([r for r in results(out).values() if r["status"] == "ok"]) == 7
    assert Decimal(summary(out)["cost_total_usd"]) == sum(fake.costs.values(), Decimal(0))


def test_error_file_lines_fail_their_pages_and_a_rerun_resubmits_only_them(
    tmp_path: Path, fake: FakeBatchApi
) -> None:
    fake.fail = {"fabrikam-two-pages.pdf#p2": "the image could not be decoded",
                 "acme-invoice.png#p1": "image too small"}  # fmt: skip
    docs, out = documents(tmp_path), tmp_path / "out"
    names = {r[0] for r in [(p.name,) for p in docs.iterdir()]}
    assert {"fabrikam-two-pages.pdf", "acme-invoice.png"} <= names, names
    done = batch(*run_args(docs, out, fake))
    assert done.returncode == 1, done.stderr
    found = results(out)
    failed = {k: r for k, r in found.items() if r["status"] == "failed"}
    assert set(failed) == {("fabrikam-two-pages.pdf", 2), ("acme-invoice.png", 1)}
    assert "the image could not be decoded" in failed[("fabrikam-two-pages.pdf", 2)]["error"]
    assert "HTTP 400" in failed[("acme-invoice.png", 1)]["error"]
    assert "image too small" in failed[("acme-invoice.png", 1)]["error"]
    assert summary(out)["failed"] == 2 and summary(out)["ok"] == 3
    assert Decimal(summary(out)["cost_total_usd"]) == sum(fake.costs.values(), Decimal(0))
    fake.fail = {}
    again = batch(*run_args(docs, out, fake))
    assert again.returncode == 0, again.stderr
    assert fake.batches_created == 4  # the two failed pages in one more batch
    assert sorted(line["custom_id"] for line in sent_lines(fake)[5:]) == sorted(
        ["fabrikam-two-pages.pdf#p2", "acme-invoice.png#p1"]
    )


def test_an_invalid_answer_is_reasked_interactively_only_when_allowed(
    tmp_path: Path, fake: FakeBatchApi
) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"total": {"type": "number"}},
                                  "required": ["total"]}))  # fmt: skip
    fake.answer = lambda cid, body: (
        '{"total": "n/a"}' if cid == "acme-invoice.png#p1" else '{"total": 3}'
    )
    docs, out = documents(tmp_path), tmp_path / "out"
    args = [a if a != "--prompt" else "--schema" for a in run_args(docs, out, fake)]
    args[args.index("Describe the page.")] = str(schema)
    done = batch(*args)
    assert done.returncode == 1, done.stderr
    bad = results(out)[("acme-invoice.png", 1)]
    assert bad["status"] == "failed" and "does not match the schema" in bad["error"]
    assert bad["answer"] == '{"total": "n/a"}' and bad["cost_usd"] is not None
    assert fake.chat_requests == []  # off by default for deferred
    out2 = tmp_path / "out2"
    args[args.index(str(out))] = str(out2)
    done = batch(*args, "--reask", "interactive")
    assert done.returncode == 0, done.stderr
    assert len(fake.chat_requests) == 1
    asked = fake.chat_requests[0]
    assert asked["messages"][1] == {"role": "assistant", "content": '{"total": "n/a"}'}
    assert "not acceptable" in asked["messages"][2]["content"]
    assert asked["metadata"]["job_id"] == "deferred-1"
    record = results(out2)[("acme-invoice.png", 1)]
    assert record["status"] == "ok" and record["output"] == {"total": 1}
    assert record["reasked"] == "interactive"
    first = fake.costs["acme-invoice.png#p1"]
    assert Decimal(record["cost_usd"]) == first + Decimal(fake.chat_cost)


def test_reask_without_deferred_is_a_usage_error(tmp_path: Path) -> None:
    docs = documents(tmp_path)
    done = batch("run", str(docs), "--job-id", "x", "--prompt", "p", "--reask", "interactive",
                 "--out", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 2
    assert "go with --deferred" in done.stderr


def test_collect_cancel_keeps_what_finished_and_the_rerun_submits_the_rest(
    tmp_path: Path, fake: FakeBatchApi
) -> None:
    fake.hold = True
    docs, out = documents(tmp_path), tmp_path / "out"
    assert batch(*run_args(docs, out, fake, "--detach")).returncode == 0
    done = batch("collect", "--out", str(out), "--base-url", fake.base_url, "--cancel",
                 "--wait", "--poll-interval", "0.1")  # fmt: skip
    assert done.returncode == 1, done.stderr  # results written, some pages failed
    assert fake.cancelled == ["batch_1", "batch_2", "batch_3"]
    found = results(out)
    ok = [k for k, r in found.items() if r["status"] == "ok"]
    assert len(ok) == 3  # the first request of each batch had finished
    for record in found.values():
        if record["status"] != "ok":
            assert "no result for this request in deferred batch" in record["error"]
            assert "(cancelled)" in record["error"]
    assert Decimal(summary(out)["cost_total_usd"]) == sum(fake.costs.values(), Decimal(0))
    assert summary(out)["failed"] == 2
    again = batch(*run_args(docs, out, fake, "--detach"))
    assert again.returncode == 0, again.stderr
    pending = summary(out)  # the failed pages are in a batch again: pending, not failed
    assert (pending["failed"], pending["pages_in_batches"], pending["ok"]) == (0, 2, 3)
    fake.hold = False
    again = batch("collect", "--out", str(out), "--base-url", fake.base_url, "--wait",
                  "--poll-interval", "0.1")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert fake.batches_created == 4  # the two cancelled pages, in one new batch
    assert len(sent_lines(fake)) == 7


def test_send_document_sends_each_pdf_as_one_request(tmp_path: Path, fake: FakeBatchApi) -> None:
    docs, out = documents(tmp_path), tmp_path / "out"
    done = batch(*run_args(docs, out, fake, "--send", "document"))
    assert done.returncode == 0, done.stderr
    lines = {line["custom_id"]: line for line in sent_lines(fake)}
    assert "fabrikam-two-pages.pdf#p1-2" in lines
    body = lines["fabrikam-two-pages.pdf#p1-2"]["body"]
    assert body["messages"][0]["content"][1]["type"] == "file"
    assert body["metadata"]["pages"] == [1, 2]
    record = results(out)[("fabrikam-two-pages.pdf", 1)]
    assert record["pages"] == [1, 2] and record["sent"] == "document"
    assert record["status"] == "ok"
    assert summary(out)["ok"] == 5 and summary(out)["requests"] == 4


def test_sigterm_while_waiting_stops_and_the_batches_keep_running(
    tmp_path: Path, fake: FakeBatchApi
) -> None:
    fake.hold = True
    docs, out = documents(tmp_path), tmp_path / "out"
    command = [sys.executable, "-m", "nemorouter.cli", "batch", *run_args(docs, out, fake)]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while fake.batches_created < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # polling
    process.send_signal(signal.SIGTERM)
    _stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM; 3 batch(es) keep running" in stderr
    assert "batch collect --out" in stderr
    shown = batch("status", "--out", str(out), "--base-url", fake.base_url)
    assert "stopped by SIGTERM" in shown.stdout
    fake.hold = False
    done = batch("collect", "--out", str(out), "--base-url", fake.base_url, "--wait",
                 "--poll-interval", "0.1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert fake.batches_created == 3


def test_a_lost_create_answer_is_retried_by_finding_the_batch_not_creating_another(
    tmp_path: Path, fake: FakeBatchApi
) -> None:
    fake.lose_create_answers = 2  # created at the server, the answer lost on the way back
    docs, out = documents(tmp_path), tmp_path / "out"
    done = batch(*run_args(docs, out, fake))
    assert done.returncode == 0, done.stderr
    assert fake.batches_created == 3 and fake.uploads == 3
    assert len([r for r in results(out).values() if r["status"] == "ok"]) == 5


def test_an_interactive_run_refuses_an_out_with_deferred_batches_running(
    tmp_path: Path, fake: FakeBatchApi
) -> None:
    fake.hold = True
    docs, out = documents(tmp_path), tmp_path / "out"
    assert batch(*run_args(docs, out, fake, "--detach")).returncode == 0
    interactive = [a for a in run_args(docs, out, fake) if a != "--deferred"]
    done = batch(*interactive)
    assert done.returncode == 2
    assert "3 deferred batch(es) not yet collected" in done.stderr
    assert fake.chat_requests == []


def test_a_file_the_gateway_finds_too_large_stops_the_run_and_a_smaller_bound_resumes(
    tmp_path: Path, fake: FakeBatchApi
) -> None:
    fake.max_upload_bytes = 100_000  # the 5 pages' lines are about 123 kB
    docs, out = documents(tmp_path), tmp_path / "out"
    args = [*run_args(docs, out, fake), "--deferred-max-lines", "10"]
    done = batch(*args)
    assert done.returncode == 2, done.stderr
    assert "The file is too large.; use a smaller --deferred-max-bytes" in done.stderr
    assert fake.uploads == 0 and fake.batches_created == 0
    again = batch(*args, "--deferred-max-bytes", "90000")
    assert again.returncode == 0, again.stderr
    assert fake.batches_created == fake.uploads >= 2
    ledger = json.loads((out / "deferred.json").read_text())["parts"]
    assert all(p["bytes"] <= 90_000 for p in ledger)  # the unsent part was dropped
    assert sorted(p["number"] for p in ledger) == list(range(1, len(ledger) + 1))
