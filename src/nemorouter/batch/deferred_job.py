"""A deferred job in progress: its batches polled and collected into results.jsonl, its
summary and outcome, and how a signal stops it (`batch run --deferred`, `batch collect`)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from nemorouter.batch.deferred_api import ENDED, BatchApi, DeferredApiError, DeferredUnreachable
from nemorouter.batch.deferred_collect import part_records
from nemorouter.batch.deferred_ledger import Ledger, Part, part_view
from nemorouter.batch.journal import Journal
from nemorouter.batch.progress import BatchProgress
from nemorouter.batch.prompts import Task
from nemorouter.batch.runstate import now_iso
from nemorouter.batch.summary import covered_pages, lost_summary, summarize

T = TypeVar("T")

# OpenAI: "The file can contain up to 50,000 requests, and can be up to 200 MB in size"
# (openai-python types/batch_create_params.py, input_file_id). The defaults are lower: a
# smaller batch ends sooner and a failed one loses less, and the gateway takes files up to
# its `settings.deferred.max_file_mb` (100 MiB by default).
DEFAULT_MAX_LINES = 10_000
DEFAULT_MAX_BYTES = 100_000_000
DEFAULT_POLL_S = 30.0
SUBMIT_TRIES = 5  # an upload or a batch creation, tried again after 1, 2, 4, 8 s
POLL_FAILURES_MAX = 5  # polls in a row that cannot reach the gateway before the run stops
EXIT_RUNNING = 4  # `batch collect`: batches still running, nothing wrong: collect later


@dataclass(frozen=True)
class DeferredOptions:
    detach: bool = False
    max_lines: int = DEFAULT_MAX_LINES
    max_bytes: int = DEFAULT_MAX_BYTES
    poll_s: float = DEFAULT_POLL_S
    reask: bool = False  # `--reask interactive`: an unacceptable answer is asked once more


@dataclass
class DeferredOutcome:
    summary: dict[str, Any]
    exit_code: int
    message: str | None = None  # why it stopped, or what to do next (stderr)
    running: list[str] = field(default_factory=list)  # batch ids not yet ended


class Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class DeferredJob:
    def __init__(
        self, out: Path, job_id: str, task: Task, api: BatchApi, journal: Journal,
        ledger: Ledger, deferred: DeferredOptions,
    ) -> None:  # fmt: skip
        self.out, self.job_id, self.task, self.api = out, job_id, task, api
        self.journal, self.ledger, self.deferred = journal, ledger, deferred
        self.stopped: list[int] = []
        self.collected_pages = 0
        self._last_line = ""

    def check(self) -> None:
        if self.stopped:
            raise Stopped(self.stopped[0])

    def create(self, part: Part) -> None:
        """The part's batch, found (a run killed after creating it) or created; recorded."""
        file_id = part.input_file_id
        assert file_id is not None
        meta = {"job_id": self.job_id, "part": str(part.number)}

        def find_or_create() -> dict[str, Any]:  # a retry after a lost answer finds it
            return self.api.find(file_id) or self.api.create(file_id, meta)

        batch = self.retry(find_or_create)
        part.batch_id = str(batch["id"])
        part.submitted_at = now_iso()
        update_part(part, batch)
        self.ledger.save()
        print(f"deferred: submitted batch {part.batch_id} (part {part.number}: {part.lines} "
              f"requests, {part.bytes / 1e6:.1f} MB)", flush=True)  # fmt: skip

    def retry(self, call: Callable[[], T]) -> T:
        """`call`, tried again after a pause when the gateway is briefly away or answers a
        429/5xx (a restart); the last failure is raised."""
        for attempt in range(SUBMIT_TRIES):
            try:
                return call()
            except (DeferredUnreachable, DeferredApiError) as exc:
                transient = (
                    not isinstance(exc, DeferredApiError)
                    or exc.status in (408, 429)
                    or exc.status >= 500
                )
                if not transient or attempt == SUBMIT_TRIES - 1:
                    raise
                self._sleep(min(2.0**attempt, 30.0))
        raise AssertionError("unreachable")

    def cancel(self) -> None:
        """Ask every batch not yet ended to stop (POST /batches/{id}/cancel)."""
        for part in self.ledger.parts:
            if part.live and part.batch_id and part.status not in ENDED:
                update_part(part, self.api.cancel(part.batch_id))
                self.ledger.save()
                print(f"deferred: cancelling batch {part.batch_id}", flush=True)

    def collect(self, *, wait: bool) -> None:
        """Poll every live part; collect each that ended (until all have, with `wait`)."""
        live = [p for p in self.ledger.parts if p.live]
        pages = sum(len(u[1]) for p in live for u in p.units.values())
        progress = BatchProgress(pages, 0, plain=True)
        failures = 0
        while True:
            self.check()
            try:
                self._poll(progress)
                failures = 0
            except DeferredUnreachable:
                failures += 1
                if not wait or failures >= POLL_FAILURES_MAX:
                    raise
            except DeferredApiError as exc:
                if exc.status < 500 or not wait:
                    raise
            if not wait or not any(p.live for p in self.ledger.parts):
                return
            self._sleep(self.deferred.poll_s)

    def _poll(self, progress: BatchProgress) -> None:
        for part in self.ledger.parts:
            self.check()
            if not part.live:
                continue
            if part.batch_id is None:
                self.create(part)
            assert part.batch_id is not None
            update_part(part, self.api.retrieve(part.batch_id))
            self.ledger.save()
            if part.status in ENDED:
                records = part_records(self.api, self.out, part, self.task,
                                       reask=self.deferred.reask)  # fmt: skip
                for record in records:  # written before the part is marked collected
                    self.journal.append(record)
                    progress.update(record)
                    self.collected_pages += len(record["pages"])
                part.collected = True
                self.ledger.save()
        line = "deferred: " + ", ".join(
            f"{p.batch_id} {p.status}" + (f" {_counts(p)}" if p.request_counts else "")
            for p in self.ledger.parts if p.batch_id and (p.live or p.collected)
        )  # fmt: skip
        if line != self._last_line:
            self._last_line = line
            print(line, flush=True)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check()
            time.sleep(min(0.1, max(end - time.monotonic(), 0)))

    def summary(self, total: int, unreadable: int, started: float) -> dict[str, Any]:
        live = [p for p in self.ledger.parts if p.live]
        in_batches = {(u[0], n) for p in live for u in p.units.values() for n in u[1]}
        records = list(self.journal.records.values())
        in_batches -= covered_pages(r for r in records if r["status"] == "ok")
        # A page that failed earlier and is in a batch now is pending, not failed.
        records = [r for r in records if r["status"] == "ok" or not covered_pages([r]) & in_batches]
        elapsed = time.monotonic() - started
        summary = summarize(self.job_id, records, unreadable=unreadable, wall_time_s=elapsed,
                            pages_this_run=self.collected_pages, throttled=0)  # fmt: skip
        covered = covered_pages(records)
        summary["pages_total"] = total
        summary["pages_in_batches"] = len(in_batches)
        summary["not_sent"] = max(total - len(covered) - len(in_batches), 0)
        summary["budget_waits"] = 0
        summary["paid_answer_lost"] = lost_summary([])
        summary["deferred"] = {
            "batches": [part_view(p) for p in self.ledger.parts],
            "running": [p.batch_id for p in live],
        }
        return summary

    def outcome(
        self, summary: dict[str, Any], message: str | None, code: int | None, *, detached: bool
    ) -> DeferredOutcome:
        running = [str(p.batch_id) for p in self.ledger.parts if p.live]
        if code is not None:
            if running:
                message = f"{message}; {len(running)} batch(es) keep running: {later(self.out)}"
            return DeferredOutcome(summary, code, message, running)
        if running:
            then = later(self.out)
            if detached:
                return DeferredOutcome(summary, 0, f"submitted, detached: {then}", running)
            return DeferredOutcome(summary, EXIT_RUNNING, f"{len(running)} batch(es) still "
                                   f"running: {then}", running)  # fmt: skip
        incomplete = summary["failed"] or summary["not_sent"] or summary["unreadable_inputs"]
        return DeferredOutcome(summary, 1 if incomplete else 0)


def update_part(part: Part, batch: dict[str, Any]) -> None:
    part.status = str(batch.get("status") or part.status)
    counts = batch.get("request_counts")
    if isinstance(counts, dict):
        part.request_counts = {k: int(v) for k, v in counts.items() if isinstance(v, int)}
    part.output_file_id = batch.get("output_file_id") or part.output_file_id
    part.error_file_id = batch.get("error_file_id") or part.error_file_id
    errors = (
        (batch.get("errors") or {}).get("data") if isinstance(batch.get("errors"), dict) else None
    )
    if errors:
        part.errors = [
            f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict)
        ]


def _counts(part: Part) -> str:
    c = part.request_counts
    done, failed = c.get("completed", 0) + c.get("failed", 0), c.get("failed", 0)
    return f"{done}/{c.get('total', part.lines)} requests ({failed} failed)"


def later(out: Path) -> str:
    return f"`nemorouter batch collect --out {out}` fetches the results (`batch status` shows them)"


@contextmanager
def stop_signals() -> Iterator[list[int]]:
    """SIGINT/SIGTERM stop the run at the next step (the batches keep running at the
    gateway; their ids are recorded); a second signal stops at once."""
    received: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
