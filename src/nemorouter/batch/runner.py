"""`nemorouter batch run`: every page of every input through the gateway, resumably.

Pages are rendered on one background thread (PDFium is not thread-safe) while up to
`concurrency` requests are in flight, paced by the gateway's answers. Each finished page
is journalled at once; a rerun with the same job id and OUT skips finished pages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemorouter.batch.client import FatalBatchError, GatewayClient, process_page
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
    max_image_bytes: int = 4_000_000
    request_timeout_s: float = 300.0
    plain_progress: bool | None = None  # None: plain lines unless stdout is a terminal


@dataclass
class BatchOutcome:
    summary: dict[str, Any]
    fatal: str | None = None  # why the gateway refused the whole job

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return 2
        return 0 if self.summary["failed"] == 0 and self.summary["unreadable_inputs"] == 0 else 1


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
    fatal: str | None = None

    async def worker() -> None:
        loop = asyncio.get_running_loop()
        for document, number in work:
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
                record = await process_page(
                    client, pacer, options.task, page, job_id=options.job_id,
                    model=options.model, tags=options.tags, no_cache=options.no_cache,
                )  # fmt: skip
            journal.append(record)
            progress.update(record)

    workers = [asyncio.create_task(worker()) for _ in range(options.concurrency)]
    try:
        await asyncio.gather(*workers)
    except FatalBatchError as exc:
        fatal = str(exc)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    finally:
        progress.close()
        renderer.shutdown(wait=True)
        await client.close()
        journal.compact()
        journal.close()
    write_errors(options.out, errors)
    summary = summarize(
        options.job_id,
        journal.records.values(),
        unreadable=len({e.doc for e in errors}),
        wall_time_s=time.monotonic() - started,
        pages_this_run=progress.done_this_run,
        throttled=pacer.throttled,
    )
    write_summary(options.out, summary)
    return BatchOutcome(summary, fatal)


def _render(document: Document, number: int, dpi: int, max_bytes: int) -> Any:
    return render_page(document, number, dpi=dpi, max_bytes=max_bytes)


def _unreadable(doc: str, page: int, reason: str) -> dict[str, Any]:
    return {"doc": doc, "page": page, "status": "failed", "output": None, "model": None,
            "cost_usd": None, "cache": None, "fallbacks": None, "latency_ms": None,
            "error": f"page could not be rendered: {reason}"}  # fmt: skip
