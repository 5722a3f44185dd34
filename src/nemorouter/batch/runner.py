"""`nemorouter batch run`: every page of every input through the gateway, resumably.

Pages are rendered on one background thread (PDFium is not thread-safe) while up to
`concurrency` requests are in flight, paced by the gateway's answers. Each finished page
is journalled at once; a rerun with the same job id and OUT skips finished pages.

However the job stops (the gateway refuses it, its budget is spent, the gateway cannot be
reached, SIGINT/SIGTERM), it stops sending but waits for the requests already sent: their
answers are paid for and are written. Only a second signal stops at once.

While it runs it holds OUT/run.lock and keeps OUT/run.json (total, start, end and how) and
OUT/sent.jsonl (each send before it goes, each page settled after): `batch status` reads
them to say whether the job is alive and which paid answers a kill lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from nemorouter.batch.client import (
    FatalBatchError,
    GatewayClient,
    GatewayUnreachable,
    JobStopped,
    process_page,
)
from nemorouter.batch.journal import Journal
from nemorouter.batch.pacing import Pacer
from nemorouter.batch.plan import SendPlan
from nemorouter.batch.progress import BatchProgress
from nemorouter.batch.prompts import Task
from nemorouter.batch.runstate import RunLock, now_iso, write_run
from nemorouter.batch.sentlog import LostAnswer, SentLog
from nemorouter.batch.sources import Document, PageError, SourceError, discover
from nemorouter.batch.stopping import StopOnSignal
from nemorouter.batch.summary import (
    covered_pages,
    lost_summary,
    summarize,
    write_errors,
    write_summary,
)
from nemorouter.batch.units import Payload, Unit, build_payload, plan_units


@dataclass(frozen=True)
class BatchOptions:
    inputs: list[Path]
    job_id: str
    task: Task
    out: Path
    base_url: str
    api_key: str | None
    model: str = "auto"
    tags: list[str] = field(default_factory=list)
    concurrency: int = 8
    dpi: int = 150
    no_cache: bool = False
    max_tokens: int | None = None  # None: the task's default (prompts.DEFAULT_MAX_TOKENS)
    max_image_bytes: int = 4_000_000
    request_timeout_s: float = 300.0
    plain_progress: bool | None = None  # None: plain lines unless stdout is a terminal
    plan: SendPlan = field(default_factory=SendPlan)  # --send, --text-layer, --pages-per-request

    def fingerprint(self) -> str:
        """The job's identity in OUT: the task, and a send mode other than the default."""
        extra = self.plan.fingerprint()
        if extra is None:
            return self.task.fingerprint()
        return json.dumps({"task": self.task.fingerprint(), **extra}, sort_keys=True)


# Exit codes of `batch run` (docs/batch.md, `batch run --help`).
EXIT_DONE = 0  # every page of every input answered acceptably
EXIT_INCOMPLETE = 1  # results written, not all: failed pages, unsent pages, unreadable inputs
EXIT_USAGE = 2  # bad usage, no readable document, OUT busy or another job, job refused
EXIT_UNREACHABLE = 3  # nothing answers at the base URL: start the gateway, run again


class NoDocuments(ValueError):
    """The inputs hold no readable document: nothing to do is a usage error, not a success."""


@dataclass
class BatchOutcome:
    summary: dict[str, Any]
    fatal: str | None = None  # why the gateway refused the whole job (key, model, tags)
    budget: FatalBatchError | None = None  # the budget is truly spent (with its numbers)
    interrupted: int | None = None  # the signal that stopped the job
    unreachable: str | None = None  # connections to the gateway kept failing
    lost: list[LostAnswer] = field(default_factory=list)  # paid, answer lost (earlier runs)

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return EXIT_USAGE
        if self.unreachable is not None:
            return EXIT_UNREACHABLE
        if self.interrupted is not None:
            return 128 + self.interrupted  # the shell's convention: 130 for Ctrl-C
        summary = self.summary
        if self.budget is not None or summary["not_sent"] or summary["failed"]:
            return EXIT_INCOMPLETE  # results written; fix the cause, run again to resume
        # An unreadable input is a document not processed: a script that checks only the
        # exit code must not take the job for complete.
        return EXIT_INCOMPLETE if summary["unreadable_inputs"] else EXIT_DONE

    @property
    def ended(self) -> str:
        """How the run ended, in a few words (run.json, `batch status`)."""
        if self.fatal is not None:
            return "stopped: the gateway refused the job"
        if self.unreachable is not None:
            return "stopped: the gateway was unreachable"
        if self.interrupted is not None:
            return f"stopped by {signal.Signals(self.interrupted).name}"
        if self.budget is not None:
            return "stopped: the budget is spent"
        return "completed"


async def run_batch(options: BatchOptions) -> BatchOutcome:
    """Raises NoDocuments, FileNotFoundError (an input), JobMismatch or RunInProgress (OUT)
    before anything is sent."""
    started = time.monotonic()
    documents, errors = discover(options.inputs)
    if not documents:
        raise NoDocuments(no_documents(options.inputs, errors))
    options.out.mkdir(parents=True, exist_ok=True)
    lock = RunLock(options.out)  # held until the end: `batch status` sees the run alive
    try:
        journal = Journal(options.out, options.job_id, options.fingerprint())
        return await _run(options, documents, errors, journal, started)
    finally:
        lock.close()


async def _run(
    options: BatchOptions,
    documents: list[Document],
    errors: list[SourceError],
    journal: Journal,
    started: float,
) -> BatchOutcome:
    total = sum(d.pages for d in documents)
    run = {"run": f"{now_iso()}/{os.getpid()}", "pid": os.getpid(), "started_at": now_iso(),
           "ended_at": None, "ended": None, "exit_code": None, "pages_total": total,
           "documents": len(documents), "unreadable_inputs": len({e.doc for e in errors})}  # fmt: skip
    write_run(options.out, run)
    sent_log = SentLog(options.out, run["run"])
    earlier_lost = sent_log.compact()  # before this run sends anything: earlier runs' only
    todo = [u for u in plan_units(documents, options.plan) if not _done(journal, u)]
    progress = BatchProgress(
        total, total - sum(len(u.pages) for u in todo), plain=options.plain_progress
    )
    client = GatewayClient(
        options.base_url, options.api_key, options.request_timeout_s, options.concurrency
    )
    pacer = Pacer(options.concurrency)
    renderer = ThreadPoolExecutor(1, thread_name_prefix="render")
    work: Iterator[Unit] = iter(todo)
    refusal: FatalBatchError | None = None
    unreachable: GatewayUnreachable | None = None

    async def worker() -> None:
        nonlocal refusal, unreachable
        loop = asyncio.get_running_loop()
        for unit in work:
            if pacer.stopped:
                return
            document, number = unit.document, unit.page
            record: dict[str, Any] | None
            try:
                page = await loop.run_in_executor(renderer, _payload, unit, options)
            except PageError as exc:
                first, last = unit.pages[0], unit.pages[-1]
                where = f"pages {first}-{last}" if last != first else f"page {first}"
                errors.append(SourceError(document.doc, str(document.path), f"{where}: {exc}"))
                journal.append(_unreadable(document.doc, unit.pages, str(exc)))
                progress.update(journal.records[(document.doc, number)])
                continue
            try:
                record = await process_page(
                    client, pacer, options.task, page, job_id=options.job_id,
                    model=options.model, tags=options.tags, no_cache=options.no_cache,
                    max_tokens=options.max_tokens,
                    on_send=partial(sent_log.sent, document.doc, number),
                )  # fmt: skip
            except FatalBatchError as exc:
                refusal = refusal or exc
                await pacer.stop()  # the other workers finish what they have sent
                record = exc.record
            except GatewayUnreachable as exc:
                unreachable = unreachable or exc
                await pacer.stop()
                record = exc.record
            except JobStopped as exc:
                record = exc.record
            if record is not None:  # an answer received is always written
                journal.append(record)
                progress.update(record)
            sent_log.settled(document.doc, number)  # (not reached if cancelled: answer lost)

    async def guarded() -> None:
        try:
            await worker()
        except Exception:
            await pacer.stop()  # the others finish what they have sent; then it is raised
            raise

    workers = [asyncio.create_task(guarded()) for _ in range(options.concurrency)]
    stop_signals = StopOnSignal(pacer, workers)
    run["ended"] = "crashed"  # until it is known to have ended otherwise
    try:
        outcomes = await asyncio.gather(*workers, return_exceptions=True)
    finally:
        stop_signals.remove()
        progress.close()
        renderer.shutdown(wait=True)
        await client.close()
        journal.compact()
        journal.close()
        lost = sent_log.compact()
        sent_log.close()
        run["ended_at"] = now_iso()
        write_run(options.out, run)
    for result in outcomes:
        if isinstance(result, Exception):
            raise result
    write_errors(options.out, errors)
    found = {(d.doc, n) for d in documents for n in range(1, d.pages + 1)}
    records = list(journal.records.values())
    summary = summarize(
        options.job_id,
        journal.records.values(),
        unreadable=len({e.doc for e in errors}),
        wall_time_s=time.monotonic() - started,
        pages_this_run=progress.done_this_run,
        throttled=pacer.throttled,
    )
    summary["pages_total"] = total
    summary["not_sent"] = len(found - covered_pages(records))
    summary["budget_waits"] = pacer.budget_waits
    summary["paid_answer_lost"] = lost_summary(lost)
    summary["estimate"] = run_estimate(options, documents, records)
    write_summary(options.out, summary)
    budget = refusal if refusal is not None and refusal.budget_spent else None
    fatal = str(refusal) if refusal is not None and budget is None else None
    outcome = BatchOutcome(
        summary, fatal, budget, stop_signals.received,
        unreachable=str(unreachable) if unreachable is not None else None, lost=earlier_lost,
    )  # fmt: skip
    run.update(ended=outcome.ended, exit_code=outcome.exit_code)
    write_run(options.out, run)
    return outcome


def no_documents(inputs: list[Path], errors: list[SourceError]) -> str:
    names = ", ".join(str(p) for p in inputs)
    if not errors:
        return (
            f"no document found in {names} (looked for PDF, PNG, JPEG, TIFF, WebP files; "
            "hidden files and folders are skipped)"
        )
    shown = "; ".join(f"{e.doc}: {e.reason}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return (
        f"no readable document in {names}: {len(errors)} file(s) could not be read: {shown}{more}"
    )


def run_estimate(
    options: BatchOptions, documents: list[Document], records: list[dict[str, Any]]
) -> dict[str, Any]:
    """The catalog estimate of the whole job, beside its actual cost: for --model if it is a
    catalog model, else for the model that answered most (auto, a group)."""
    from nemorouter.batch.estimate import job_estimate, run_mode, scan_documents
    from nemorouter.catalog import load_catalog

    catalog = load_catalog()
    answered = Counter(r["model"] for r in records if r.get("model") in catalog)
    model = options.model if options.model in catalog else None
    model = model or (answered.most_common(1)[0][0] if answered else options.model)
    plan = options.plan
    mode = run_mode(plan.send, plan.text_layer)
    try:
        scanned = scan_documents(
            documents, [], options.dpi, with_text=mode in ("pages+text", "text")
        )
        return job_estimate(scanned, model, mode, options.task, options.max_tokens,
                            plan.pages_per_request)  # fmt: skip
    except Exception as exc:  # an estimate never costs the run its summary
        return {"model": model, "send": mode, "unavailable": f"{type(exc).__name__}: {exc}"}


def _done(journal: Journal, unit: Unit) -> bool:
    """The unit was answered acceptably (by a request that covered exactly its pages)."""
    record = journal.records.get((unit.document.doc, unit.page))
    if record is None or record["status"] != "ok":
        return False
    return tuple(record.get("pages") or (record["page"],)) == unit.pages


def _payload(unit: Unit, options: BatchOptions) -> Payload:
    return build_payload(
        unit, options.plan, dpi=options.dpi, max_image_bytes=options.max_image_bytes
    )


def _unreadable(doc: str, pages: tuple[int, ...], reason: str) -> dict[str, Any]:
    what = "page could not be rendered" if len(pages) == 1 else "pages could not be sent"
    return {"doc": doc, "page": pages[0], "pages": list(pages), "sent": None,
            "status": "failed", "output": None, "model": None, "cost_usd": None,
            "cache": None, "fallbacks": None, "latency_ms": None,
            "error": f"{what}: {reason}"}  # fmt: skip
