"""Batch pacing benchmark: pages per minute against an RPM quota, vs the quota's ceiling.

Run as `bench/pacing` from anywhere (see `--help`). The simulated provider
(`nemorouter.testing.simulated_provider --latency-ms L --rpm R --no-record`) runs as its own
process; its quota is a sliding 60 s window that answers 429 with `retry-after` and the
`x-ratelimit-*-requests` headers beyond it. This process generates N distinct small invoice
pages (PNG) and runs the batch runner (`nemorouter.batch.runner.run_batch`, a free-prompt
task) in-process straight at the provider: no gateway, so what is measured is the client's
pacing (`nemorouter.batch.pacing.Pacer`).

To see *when* things happen, the runner's `Pacer` and `BatchProgress` are replaced for the run
by subclasses that only record timestamps (request sent, answer status and rate-limit headers,
page finished) and then defer to the real classes: the pacing itself is unchanged.

Steady state is the quota-bound part of the run: pages finished in the whole 60 s windows that
follow the first one (the first window is a burst: the quota is full at the start).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadgen import get
from nemorouter.batch import runner
from nemorouter.batch.pacing import Pacer
from nemorouter.batch.progress import BatchProgress
from nemorouter.batch.prompts import free_prompt
from nemorouter.batch.runner import BatchOptions
from nemorouter.demo import invoice_page
from procs import HOST, Server, free_port, spawn

WINDOW_S = 60.0  # the simulated provider's quota window
BUCKET_S = 10.0  # timeline resolution
TARGET_RATIO = 0.90  # steady-state pages/min >= 90 % of the quota
PROMPT = "Transcribe the text of this page."


@dataclass
class Answer:
    t: float
    status: int
    remaining: str | None
    reset: str | None
    retry_after: str | None
    limit: float  # the pacer's concurrency limit after this answer
    in_flight: int


@dataclass
class Recorder:
    sent: list[float] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    finished: list[tuple[float, str]] = field(default_factory=list)


def instrumented(rec: Recorder) -> tuple[type[Pacer], type[BatchProgress]]:
    """Pacer and progress classes that record timestamps, then do exactly what the real ones do."""

    class RecordingPacer(Pacer):
        async def acquire(self) -> bool:
            started = await super().acquire()
            if started:
                rec.sent.append(time.monotonic())
            return started

        async def release(self, status: int, headers: Mapping[str, str]) -> None:
            now = time.monotonic()
            await super().release(status, headers)
            rec.answers.append(
                Answer(
                    now,
                    status,
                    headers.get("x-ratelimit-remaining-requests"),
                    headers.get("x-ratelimit-reset-requests"),
                    headers.get("retry-after"),
                    self.limit,
                    self.in_flight,
                )
            )

    class RecordingProgress(BatchProgress):
        def update(self, record: dict[str, Any]) -> None:
            rec.finished.append((time.monotonic(), record["status"]))
            super().update(record)

    return RecordingPacer, RecordingProgress


def make_pages(folder: Path, count: int) -> float:
    """`count` distinct small invoice pages (414x585 gray PNG, ~3 KB); seconds taken."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        invoice_page(i).reduce(2).save(folder / f"page-{i + 1:05d}.png")
    return time.perf_counter() - started


async def start_provider(args: argparse.Namespace, logdir: Path) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "nemorouter.testing.simulated_provider", "--no-record"]
    argv += ["--host", HOST, "--port", str(port), "--latency-ms", str(args.latency_ms)]
    argv += ["--rpm", str(args.rpm)]
    server = spawn("simulated provider", argv, port, logdir)
    try:
        await server.wait_ready("/health", 30.0)
        status, body = await get(HOST, port, "/_sim/config")
        config = json.loads(body) if status == 200 else {}
        if config.get("rpm") != args.rpm or config.get("latency_ms") != args.latency_ms:
            raise RuntimeError(f"simulated provider runs with {config}, not the asked settings")
    except BaseException:
        server.stop()
        raise
    return server


async def run(args: argparse.Namespace, tmp: Path, rec: Recorder) -> dict[str, Any] | None:
    server = await start_provider(args, tmp)
    options = BatchOptions(
        inputs=[tmp / "pages"],
        job_id="pacing-bench",
        task=free_prompt(PROMPT),
        out=tmp / "results",
        base_url=f"http://{HOST}:{server.port}/v1",
        api_key=None,
        model="sim-small",
        concurrency=args.concurrency,
        plain_progress=True,
    )
    pacer_cls, progress_cls = instrumented(rec)
    saved = runner.Pacer, runner.BatchProgress
    runner.Pacer, runner.BatchProgress = pacer_cls, progress_cls  # type: ignore[misc]
    try:
        outcome = await asyncio.wait_for(runner.run_batch(options), args.limit_s)
    except TimeoutError:
        print(f"bench/pacing: batch not done after {args.limit_s:g} s, stopped", file=sys.stderr)
        return None
    finally:
        runner.Pacer, runner.BatchProgress = saved  # type: ignore[misc]
        server.stop()
    stopped = outcome.fatal or outcome.budget or outcome.unreachable
    if stopped:
        raise RuntimeError(f"the batch stopped: {stopped}")
    return outcome.summary


def analyse(args: argparse.Namespace, rec: Recorder, summary: dict[str, Any] | None) -> dict:
    t0 = rec.sent[0] if rec.sent else time.monotonic()
    finished = [(t - t0, status) for t, status in rec.finished]
    span = max((t for t, _ in finished), default=0.0)
    wall = summary["wall_time_s"] if summary else span
    ok = sum(1 for _, s in finished if s == "ok")
    statuses: dict[str, int] = {}
    for a in rec.answers:
        statuses[str(a.status)] = statuses.get(str(a.status), 0) + 1
    throttled = summary["throttled"] if summary else statuses.get("429", 0)

    # Steady state: whole quota windows after the first; a partial one if that is all there is.
    full = math.floor((span - WINDOW_S) / WINDOW_S) if span > WINDOW_S else 0
    steady: float | None = None
    steady_from, steady_to = WINDOW_S, WINDOW_S + WINDOW_S * full
    if full >= 1:
        n = sum(1 for t, s in finished if s == "ok" and steady_from <= t < steady_to)
        steady = n / full
    elif span > WINDOW_S:
        steady_to = span
        n = sum(1 for t, s in finished if s == "ok" and t >= steady_from)
        steady = n / (span - steady_from) * 60.0

    windows = max(1, math.ceil(span / WINDOW_S))
    max_429 = args.concurrency * windows
    checks = {
        # None: the quota never bound (too few pages to outlast the first window)
        "steady_state": None if steady is None else steady >= TARGET_RATIO * args.rpm,
        "throttled": throttled <= max_429,
        "all_ok": bool(summary) and summary["ok"] == args.pages and summary["failed"] == 0,
    }

    buckets = []
    for b in range(math.ceil(max(span, 1e-9) / BUCKET_S)):
        lo, hi = b * BUCKET_S, (b + 1) * BUCKET_S

        def within(t: float, lo: float = lo, hi: float = hi) -> bool:
            return lo <= t - t0 < hi

        answers = [a for a in rec.answers if within(a.t)]
        buckets.append(
            {
                "from_s": lo,
                "sent": sum(1 for t in rec.sent if within(t)),
                "ok_200": sum(1 for a in answers if a.status == 200),
                "throttled_429": sum(1 for a in answers if a.status == 429),
                "pages_done": sum(1 for t, _ in finished if lo <= t < hi),
                "limit_min": min((a.limit for a in answers), default=None),
                "retry_after": sorted({a.retry_after for a in answers if a.retry_after}),
            }
        )
    first_429 = [round(a.t - t0, 2) for a in rec.answers if a.status == 429][:10]
    return {
        "t0_monotonic": t0,
        "rpm": args.rpm,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "pages": args.pages,
        "pages_ok": summary["ok"] if summary else ok,
        "pages_failed": summary["failed"] if summary else args.pages - ok,
        "wall_time_s": wall,
        "span_s": round(span, 2),
        "ppm_overall": (summary["pages_this_run"] if summary else ok) / wall * 60 if wall else 0,
        "ppm_steady": steady,
        "steady_window_s": [steady_from, round(steady_to, 2)] if steady is not None else None,
        "ceiling_ppm": args.rpm,
        "ratio": steady / args.rpm if steady is not None else None,
        "throttled": throttled,
        "max_429": max_429,
        "windows": windows,
        "requests": len(rec.sent),
        "statuses": statuses,
        "first_429_at_s": first_429,
        "checks": checks,
        "passed": all(v is not False for v in checks.values()),
        "timeline": buckets,
        "summary": summary,
    }


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "PASS" if ok else "MISS"


def render(r: dict[str, Any]) -> str:
    def fmt(v: float | None, places: int = 0) -> str:
        return "n/a" if v is None else f"{v:,.{places}f}"

    c = r["checks"]
    window = r["steady_window_s"]
    where = f"{window[0]:g}-{window[1]:g} s" if window else "quota never bound"
    rows = [
        ("quota (rpm)", f"{r['rpm']}", "", ""),
        ("simulated latency (ms)", f"{r['latency_ms']:g}", "", ""),
        ("concurrency", f"{r['concurrency']}", "", ""),
        ("pages", f"{r['pages']}", "", ""),
        ("wall time (s)", fmt(r["wall_time_s"], 1), "", ""),
        ("pages/min overall", fmt(r["ppm_overall"]), "", ""),
        (
            f"pages/min steady state ({where})",
            fmt(r["ppm_steady"]),
            f">= {TARGET_RATIO * r['rpm']:g}",
            _verdict(c["steady_state"]),
        ),
        ("ceiling (pages/min = rpm)", f"{r['ceiling_ppm']}", "", ""),
        (
            "achieved / ceiling (steady)",
            fmt(r["ratio"], 3),
            f">= {TARGET_RATIO:.2f}",
            _verdict(c["steady_state"]),
        ),
        (
            "429s received",
            f"{r['throttled']}",
            f"<= {r['max_429']} ({r['concurrency']} x {r['windows']} windows)",
            _verdict(c["throttled"]),
        ),
        (
            "every page succeeded",
            f"{'yes' if c['all_ok'] else 'no'} ({r['pages_ok']}/{r['pages']})",
            "yes",
            _verdict(c["all_ok"]),
        ),
    ]
    lines = ["| metric | value | target | verdict |", "|---|---:|---|---|"]
    lines += [f"| {m} | {v} | {t} | {k} |" for m, v, t, k in rows]
    return "\n".join(lines)


def render_timeline(r: dict[str, Any]) -> str:
    lines = [
        "| t (s) | sent | 200 | 429 | pages done | min pacer limit | retry-after seen |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for b in r["timeline"]:
        limit = "" if b["limit_min"] is None else f"{b['limit_min']:.1f}"
        retry = ",".join(b["retry_after"])
        lines.append(
            f"| {b['from_s']:g}-{b['from_s'] + BUCKET_S:g} | {b['sent']} | {b['ok_200']} | "
            f"{b['throttled_429']} | {b['pages_done']} | {limit} | {retry} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/pacing",
        description="Batch runner pages/min against a simulated provider's RPM quota.",
    )
    p.add_argument("--rpm", type=int, default=600, help="the provider's quota (default 600)")
    p.add_argument("--latency-ms", type=float, default=200.0, help="provider latency (200)")
    p.add_argument("--concurrency", type=int, default=32, help="batch concurrency (32)")
    p.add_argument("--pages", type=int, default=None, help="pages (default rpm x 2.5)")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    p.add_argument(
        "--limit-s", type=float, default=None, help="stop the batch after this (default 3x ideal)"
    )
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    if args.rpm < 1 or args.concurrency < 1:
        p.error("--rpm and --concurrency must be positive")
    if args.pages is None:
        args.pages = max(1, round(args.rpm * 2.5))
    if args.limit_s is None:
        args.limit_s = max(120.0, 3 * args.pages / args.rpm * 60)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rec = Recorder()
    with tempfile.TemporaryDirectory(prefix="nemorouter-pacing-") as name:
        tmp = Path(name)
        print(f"generating {args.pages} pages ...", file=sys.stderr, flush=True)
        took = make_pages(tmp / "pages", args.pages)
        print(
            f"  {took:.1f} s; batch: {args.pages} pages, concurrency {args.concurrency}, "
            f"provider {args.rpm} rpm / {args.latency_ms:g} ms",
            file=sys.stderr,
            flush=True,
        )
        try:
            summary = asyncio.run(run(args, tmp, rec))
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"bench/pacing: FAILED: {exc!r}", file=sys.stderr)
            return 2
    result = analyse(args, rec, summary)
    print(f"\nBatch pacing vs an RPM quota (python {sys.version.split()[0]})\n")
    print(render(result))
    print(f"\nTimeline ({BUCKET_S:g} s buckets from the first request)\n")
    print(render_timeline(result))
    print(
        f"\nanswers by status: {result['statuses']}; first 429s at (s): {result['first_429_at_s']}"
    )
    if args.json:
        payload = {
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "result": result,
            "answers": [
                {**asdict(a), "t": round(a.t - result["t0_monotonic"], 4)} for a in rec.answers
            ],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if args.check and not result["passed"] else 0
