"""`nemorouter batch run --deferred`: the job's pages as deferred batches (OpenAI Batch API
through the gateway), at the providers' batch price.

Each unit (a page, or a PDF chunk with `--send document`) is rendered as today and written as
one request line `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`
with the same body the interactive runner sends (`metadata.job_id` attributes the spend);
`custom_id` is the unit's stable id (its document and pages). Lines go to OUT/deferred/
part-N.jsonl, at most `max_lines` requests and `max_bytes` a part; each part is uploaded and
its batch created, and the ids are recorded in OUT/deferred.json (`deferred_ledger`) before
anything waits on them. Then the batches are polled until they end and their lines are
written to results.jsonl (`deferred_collect`), or, with `--detach`, the run returns once
everything is submitted and `batch collect` fetches the results later.

A rerun with the same job and OUT submits only units in no recorded batch and collects the
recorded ones: nothing submitted is submitted again.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from nemorouter.batch.deferred_api import BatchApi, DeferredApiError, DeferredUnreachable
from nemorouter.batch.deferred_job import (
    DeferredJob,
    DeferredOptions,
    DeferredOutcome,
    Stopped,
    stop_signals,
)
from nemorouter.batch.deferred_ledger import Ledger
from nemorouter.batch.deferred_submit import submit_pending
from nemorouter.batch.journal import JOB_FILE, Journal
from nemorouter.batch.prompts import Task
from nemorouter.batch.runner import BatchOptions, NoDocuments, no_documents, run_estimate
from nemorouter.batch.runstate import RunLock, now_iso, read_run, write_run
from nemorouter.batch.sources import discover
from nemorouter.batch.summary import covered_pages, write_errors
from nemorouter.batch.summary import write_summary as save_summary


def run_deferred(options: BatchOptions, deferred: DeferredOptions) -> DeferredOutcome:
    """Raises NoDocuments, JobMismatch or RunInProgress before anything is sent."""
    started = time.monotonic()
    documents, errors = discover(options.inputs)
    if not documents:
        raise NoDocuments(no_documents(options.inputs, errors))
    options.out.mkdir(parents=True, exist_ok=True)
    lock = RunLock(options.out)
    journal = None
    try:
        journal = Journal(options.out, options.job_id, options.fingerprint())
        total = sum(d.pages for d in documents)
        run = {"run": f"{now_iso()}/{os.getpid()}", "pid": os.getpid(), "started_at": now_iso(),
               "ended_at": None, "ended": "crashed", "exit_code": None, "pages_total": total,
               "documents": len(documents), "unreadable_inputs": len({e.doc for e in errors}),
               "deferred": True}  # fmt: skip
        write_run(options.out, run)
        ledger = Ledger(options.out)
        ledger.drop_unsent()
        api = BatchApi(options.base_url, options.api_key)
        job = DeferredJob(options.out, options.job_id, options.task, api, journal, ledger, deferred)
        message, code = None, None
        with stop_signals() as stopped:
            job.stopped = stopped
            try:
                submit_pending(job, options, documents, errors)
                if not deferred.detach:
                    job.collect(wait=True)
            except DeferredApiError as exc:
                message, code = f"stopped, the gateway refused the job: {exc}", 2
            except DeferredUnreachable as exc:
                message, code = _unreachable(exc), 3
            except Stopped as exc:
                message, code = f"stopped by {exc}", 128 + exc.signum
        write_errors(options.out, errors)
        summary = job.summary(total, len({e.doc for e in errors}), started)
        summary["estimate"] = run_estimate(options, documents, list(journal.records.values()))
        save_summary(options.out, summary)
        outcome = job.outcome(summary, message, code, detached=deferred.detach)
        run.update(ended_at=now_iso(), ended=_ended(outcome), exit_code=outcome.exit_code)
        write_run(options.out, run)
        return outcome
    finally:
        if journal is not None:
            journal.compact()
            journal.close()
        lock.close()


def collect_deferred(
    out: Path,
    base_url: str,
    api_key: str | None,
    *,
    wait: bool,
    poll_s: float,
    reask: bool,
    cancel: bool = False,
) -> DeferredOutcome:
    """`batch collect`: fetch what the job's deferred batches have finished, after asking the
    running ones to stop with `cancel` (their finished lines still come back). Raises
    FileNotFoundError when OUT holds no deferred batch, RunInProgress while a run holds OUT)."""
    started = time.monotonic()
    if not (out / JOB_FILE).exists() or not Ledger(out).parts:
        raise FileNotFoundError(f"no deferred batch in {out} (no {JOB_FILE} or deferred.json)")
    saved = json.loads((out / JOB_FILE).read_text(encoding="utf-8"))
    lock = RunLock(out)
    journal = Journal(out, saved["job_id"], saved["task"])
    try:
        ledger = Ledger(out)
        deferred = DeferredOptions(poll_s=poll_s, reask=reask)
        job = DeferredJob(out, saved["job_id"], task_of(saved["task"]), BatchApi(base_url, api_key),
                   journal, ledger, deferred)  # fmt: skip
        message, code = None, None
        with stop_signals() as stopped:
            job.stopped = stopped
            try:
                if cancel:
                    job.cancel()
                job.collect(wait=wait)
            except DeferredApiError as exc:
                message, code = f"stopped, the gateway refused: {exc}", 2
            except DeferredUnreachable as exc:
                message, code = _unreachable(exc), 3
            except Stopped as exc:
                message, code = f"stopped by {exc}", 128 + exc.signum
        run = read_run(out) or {}
        total = run.get("pages_total") or len(covered_pages(journal.records.values()))
        summary = job.summary(total, int(run.get("unreadable_inputs") or 0), started)
        # The estimate of the run that submitted the job, kept beside the actual cost.
        with contextlib.suppress(OSError, ValueError, KeyError):
            summary["estimate"] = json.loads((out / "summary.json").read_text())["estimate"]
        save_summary(out, summary)
        return job.outcome(summary, message, code, detached=False)
    finally:
        journal.compact()
        journal.close()
        lock.close()


def task_of(fingerprint: str) -> Task:
    """The task a job was run with, from job.json (what `Task.fingerprint` wrote)."""
    found = json.loads(fingerprint)
    if isinstance(found.get("task"), str):  # a send mode other than pages wraps it
        found = json.loads(found["task"])
    return Task(found["mode"], found["instruction"], found.get("schema"),
                tuple(found.get("labels") or ()))  # fmt: skip


def _unreachable(exc: DeferredUnreachable) -> str:
    return (f"stopped: {exc}. Is `nemorouter serve` running there? Check --base-url / "
            "NEMOROUTER_BASE_URL")  # fmt: skip


def _ended(outcome: DeferredOutcome) -> str:
    if outcome.message and outcome.message.startswith("stopped"):
        return outcome.message.split(";")[0]
    if outcome.running:
        return "submitted: deferred batches running"
    return "completed"
