"""`nemorouter batch run`: every page of every input through the gateway, resumably.

Pages are rendered on one background thread (PDFium is not thread-safe) while up to
`concurrency` requests are in flight, paced by the gateway's answers. Each finished page
is journalled at once; a rerun with the same job id and OUT skips finished pages.

However the job stops (the gateway refuses it, its budget is spent, SIGINT/SIGTERM), it
stops sending but waits for the requests already sent: their answers are paid for and
are written. Only a second signal stops at once.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemorouter.batch.client import FatalBatchError, GatewayClient, JobStopped, process_page
from nemorouter.batch.journal import Journal
from nemorouter.batch.pacing import Pacer
from nemorouter.batch.progress import BatchProgress
from nemorouter.batch.prompts import Task
from nemorouter.batch.sources import Document, PageError, SourceError, discover, render_page
from nemorouter.batch.summary import summarize, write_errors, write_summary


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


@dataclass
class BatchOutcome:
    summary: dict[str, Any]
    fatal: str | None = None  # why the gateway refused the whole job (key, model, tags)
    budget: FatalBatchError | None = None  # the budget is truly spent (with its numbers)
    interrupted: int | None = None  # the signal that stopped the job

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return 2
        if self.interrupted is not None:
            return 128 + self.interrupted  # the shell's convention: 130 for Ctrl-C
        summary = self.summary
        if self.budget is not None or summary["not_sent"] or summary["failed"]:
            return 1  # results written; raise the budget or fix the cause, run again to resume
        return 0 if summary["unreadable_inputs"] == 0 else 1


async def run_batch(options: BatchOptions) -> BatchOutcome:
    started = time.monotonic()
    documents, errors = discover(options.inputs)
    journal = Journal(options.out, options.job_id, options.task.fingerprint())
    total = sum(d.pages for d in documents)
    todo = [(d, n) for d in documents for n in range(1, d.pages + 1) if not journal.done(d.doc, n)]
    progress = BatchProgress(total, total - len(todo), plain=options.plain_progress)
    client = GatewayClient(
        options.base_url, options.api_key, options.request_timeout_s, options.concurrency
    )
    pacer = Pacer(options.concurrency)
    renderer = ThreadPoolExecutor(1, thread_name_prefix="render")
    work: Iterator[tuple[Document, int]] = iter(todo)
    refusal: FatalBatchError | None = None

    async def worker() -> None:
        nonlocal refusal
        loop = asyncio.get_running_loop()
        for document, number in work:
            if pacer.stopped:
                return
            record: dict[str, Any] | None
            try:
                page = await loop.run_in_executor(
                    renderer, _render, document, number, options.dpi, options.max_image_bytes
                )
            except PageError as exc:
                errors.append(
                    SourceError(document.doc, str(document.path), f"page {number}: {exc}")
                )
                record = _unreadable(document.doc, number, str(exc))
            else:
                try:
                    record = await process_page(
                        client, pacer, options.task, page, job_id=options.job_id,
                        model=options.model, tags=options.tags, no_cache=options.no_cache,
                        max_tokens=options.max_tokens,
                    )  # fmt: skip
                except FatalBatchError as exc:
                    refusal = refusal or exc
                    await pacer.stop()  # the other workers finish what they have sent
                    record = exc.record
                except JobStopped as exc:
                    record = exc.record
            if record is not None:  # an answer received is always written
                journal.append(record)
                progress.update(record)

    async def guarded() -> None:
        try:
            await worker()
        except Exception:
            await pacer.stop()  # the others finish what they have sent; then it is raised
            raise

    workers = [asyncio.create_task(guarded()) for _ in range(options.concurrency)]
    stop_signals = _StopOnSignal(pacer, workers)
    try:
        outcomes = await asyncio.gather(*workers, return_exceptions=True)
    finally:
        stop_signals.remove()
        progress.close()
        renderer.shutdown(wait=True)
        await client.close()
        journal.compact()
        journal.close()
    for result in outcomes:
        if isinstance(result, Exception):
            raise result
    write_errors(options.out, errors)
    found = {(d.doc, n) for d in documents for n in range(1, d.pages + 1)}
    summary = summarize(
        options.job_id,
        journal.records.values(),
        unreadable=len({e.doc for e in errors}),
        wall_time_s=time.monotonic() - started,
        pages_this_run=progress.done_this_run,
        throttled=pacer.throttled,
    )
    summary["not_sent"] = len(found - journal.records.keys())
    summary["budget_waits"] = pacer.budget_waits
    write_summary(options.out, summary)
    budget = refusal if refusal is not None and refusal.budget_spent else None
    fatal = str(refusal) if refusal is not None and budget is None else None
    return BatchOutcome(summary, fatal, budget, stop_signals.received)


class _StopOnSignal:
    """SIGINT/SIGTERM: stop sending, let the requests in flight finish and be written.
    A second signal cancels them too (their answers, if any, are then lost)."""

    def __init__(self, pacer: Pacer, workers: list[asyncio.Task[None]]) -> None:
        self.received: int | None = None
        self._pacer = pacer
        self._workers = workers
        self._stopping: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._installed: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread (or not a POSIX loop): default handling
            self._installed.append(signum)

    def _on_signal(self, signum: int) -> None:
        if self.received is not None:
            for task in self._workers:
                task.cancel()
            return
        self.received = signum
        waiting = self._pacer.in_flight
        print(
            f"\nnemorouter batch: stopping: waiting for {waiting} request(s) in flight (their "
            "answers are paid for and will be written); signal again to quit at once",
            file=sys.stderr,
            flush=True,
        )
        self._stopping = self._loop.create_task(self._pacer.stop())

    def remove(self) -> None:
        for signum in self._installed:
            self._loop.remove_signal_handler(signum)


def _render(document: Document, number: int, dpi: int, max_bytes: int) -> Any:
    return render_page(document, number, dpi=dpi, max_bytes=max_bytes)


def _unreadable(doc: str, page: int, reason: str) -> dict[str, Any]:
    return {"doc": doc, "page": page, "status": "failed", "output": None, "model": None,
            "cost_usd": None, "cache": None, "fallbacks": None, "latency_ms": None,
            "error": f"page could not be rendered: {reason}"}  # fmt: skip
