"""Gateway overhead benchmark: gateway vs direct-to-provider, one table.

Run as `bench/overhead` from the repository root (see `--help`). Layout on a 2-core machine:
the gateway is pinned to core 0; this process (the load generator) and the provider share
core 1. For each of a small text request and a ~300 KB image request it measures
(a) throughput at concurrency 64 with a 0 ms provider and (b) p50/p99 latency at concurrency
16 with a 50 ms provider, straight to the provider and through the gateway; plus the
gateway's ready time, resident memory and CPU time per request.

The upstream is the project's simulated provider (`nemorouter.testing.simulated_provider
--no-record`): ~20 us of CPU per small request and ~0.1 ms per image request, so the provider
is not what limits the gateway runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec
import uvloop
import yaml

from loadgen import LoadResult, build_request, request, run_load
from procs import (
    HOST,
    Server,
    cpu_seconds,
    cpu_times,
    free_port,
    pin_self,
    pinned,
    rss_mib,
    spawn,
    spawn_provider,
)
from report import Check, render

MODEL = "gemini-2.5-flash"
MASTER_KEY = "sk-bench-master-key"
CHAT_PATH = "/v1/chat/completions"
PAYLOADS = ("text", "image")

# The targets.
TARGET_RPS = {"text": 2500.0, "image": 1000.0}
TARGET_ADDED_P50_MS = 1.0
TARGET_ADDED_P99_MS = 5.0
TARGET_CPU_MS = 0.4
TARGET_RSS_READY_MIB = 100.0
TARGET_RSS_AFTER_MIB = 150.0
TARGET_READY_S = 1.5


def text_body() -> bytes:
    return msgspec.json.encode(
        {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "You are a careful document clerk."},
                {
                    "role": "user",
                    "content": "Classify this invoice line: 'Widget, 3 pcs, EUR 12.50'. "
                    "Answer with one word.",
                },
            ],
            "max_tokens": 64,
        }
    )


def image_body() -> bytes:
    """~300 KB: a data URL of ~225 KB of incompressible bytes labelled image/jpeg."""
    raw = b"\xff\xd8\xff\xe0" + random.Random(1234).randbytes(225 * 1024 - 4)
    url = "data:image/jpeg;base64," + base64.b64encode(raw).decode()
    return msgspec.json.encode(
        {
            "model": MODEL,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Extract the invoice number and the total."},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ],
            "max_tokens": 64,
        }
    )


@dataclass
class RunSummary:
    """One measured window, as reported."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    target_cpu_ms_per_request: float | None = None  # CPU of the process under test
    target_core_pct: float | None = None  # its CPU use over the window, % of one core
    target_kernel_pct: float | None = None  # share of its CPU time spent in the kernel
    loadgen_core_pct: float | None = None  # this process, % of one core
    provider_core_pct: float | None = None  # the simulated provider, % of one core


@dataclass
class TargetResult:
    """Everything measured for one target (direct, nemorouter, litellm)."""

    name: str
    version: str = ""
    ready_s: float | None = None
    rss_ready_mib: float | None = None
    rss_after_mib: float | None = None
    throughput: dict[str, RunSummary] | None = None
    latency: dict[str, RunSummary] | None = None


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.gateway_core: int | None = 0
        self.load_core: int | None = 1
        if (os.cpu_count() or 1) < 2 or args.no_pin:
            self.gateway_core = self.load_core = None
        self.sim: Server | None = None
        self.bodies = {"text": text_body(), "image": image_body()}

    # ---- plumbing ---------------------------------------------------------------------------

    async def set_latency(self, ms: float) -> None:
        assert self.sim is not None
        body = json.dumps({"latency_ms": ms}).encode()
        status, answer = await request(HOST, self.sim.port, "PUT", "/_sim/config", body)
        if status != 200:
            raise RuntimeError(f"simulated provider refused its config: {status} {answer!r}")

    def payload(self, kind: str, port: int, auth: bool) -> bytes:
        headers = {"Authorization": f"Bearer {MASTER_KEY}"} if auth else {}
        return build_request(HOST, port, CHAT_PATH, self.bodies[kind], headers)

    async def measure(
        self,
        label: str,
        port: int,
        kind: str,
        concurrency: int,
        target: Server | None,
        stagger: float = 0.0,
    ) -> RunSummary:
        """One load run; with `target`, also the CPU time it and the load side used."""
        assert self.sim is not None
        sim_pid = self.sim.pid
        pids = target.pids() if target is not None else []
        marks: dict[str, float] = {}

        def sample(prefix: str) -> None:
            marks[prefix + "wall"] = time.perf_counter()
            user, system = cpu_times(pids) if pids else (0.0, 0.0)
            marks[prefix + "target"] = user + system
            marks[prefix + "target_sys"] = system
            marks[prefix + "loadgen"] = cpu_seconds([os.getpid()])
            marks[prefix + "sim"] = cpu_seconds([sim_pid])

        result: LoadResult = await run_load(
            HOST,
            port,
            self.payload(kind, port, auth=target is not None),
            concurrency,
            self.args.duration,
            self.args.warmup,
            stagger,
            on_start=lambda: sample("a_"),
            on_stop=lambda: sample("b_"),
        )
        if result.errors:
            raise RuntimeError(
                f"{label}: {result.errors} requests failed; first: {result.error_sample}"
            )
        if not result.requests:
            raise RuntimeError(f"{label}: no request completed in the window")
        wall = marks["b_wall"] - marks["a_wall"]
        summary = RunSummary(
            result.requests,
            round(result.seconds, 3),
            round(result.rps, 1),
            round(result.percentile(50), 3),
            round(result.percentile(99), 3),
            round(result.max_ms, 3),
            result.errors,
        )
        loadgen = marks["b_loadgen"] - marks["a_loadgen"]
        sim = marks["b_sim"] - marks["a_sim"]
        summary.loadgen_core_pct = round(100.0 * loadgen / wall, 1)
        summary.provider_core_pct = round(100.0 * sim / wall, 1)
        if target is not None:
            used = marks["b_target"] - marks["a_target"]
            summary.target_cpu_ms_per_request = round(1000.0 * used / result.requests, 4)
            summary.target_core_pct = round(100.0 * used / wall, 1)
            if used > 0:
                system = marks["b_target_sys"] - marks["a_target_sys"]
                summary.target_kernel_pct = round(100.0 * system / used, 1)
        print(
            f"  {label:<34} {summary.rps:>9.1f} req/s  p50 {summary.p50_ms:7.2f} ms  "
            f"p99 {summary.p99_ms:7.2f} ms  max {summary.max_ms:7.2f} ms"
            + (f"  target core {summary.target_core_pct:5.1f}%" if target else "")
            + f"  loadgen {summary.loadgen_core_pct:5.1f}%  provider {summary.provider_core_pct:5.1f}%",
            file=sys.stderr,
            flush=True,
        )
        return summary

    async def runs(self, result: TargetResult, port: int, target: Server | None) -> None:
        """Throughput runs (0 ms provider), then latency runs (50 ms provider)."""
        await self.set_latency(0.0)
        result.throughput = {}
        for kind in PAYLOADS:
            result.throughput[kind] = await self.measure(
                f"{result.name} throughput {kind} c{self.args.concurrency}",
                port,
                kind,
                self.args.concurrency,
                target,
            )
        if target is not None:
            result.rss_after_mib = round(rss_mib(target.pids()), 1)
        await self.set_latency(self.args.latency_ms)
        result.latency = {}
        for kind in PAYLOADS:
            result.latency[kind] = await self.measure(
                f"{result.name} latency {kind} c{self.args.latency_concurrency}",
                port,
                kind,
                self.args.latency_concurrency,
                target,
                stagger=self.args.latency_ms / 1000.0,  # no lock-step bursts
            )

    async def gateway(self, name: str, server: Server, ready_path: str) -> TargetResult:
        result = TargetResult(name)
        try:
            result.ready_s = round(await server.wait_ready(ready_path, limit_s=120.0), 3)
            await asyncio.sleep(0.2)  # let start-up settle before reading the memory
            result.rss_ready_mib = round(rss_mib(server.pids()), 1)
            print(
                f"{name}: ready in {result.ready_s:.3f} s, RSS {result.rss_ready_mib:.1f} MiB",
                file=sys.stderr,
                flush=True,
            )
            await self.runs(result, server.port, server)
        except Exception:
            print(f"--- {name} log (tail) ---\n{server.log_tail()}", file=sys.stderr)
            raise
        finally:
            server.stop()
        return result

    def spawn_nemorouter(self, sim_port: int) -> Server:
        config = {
            "settings": {
                "master_key": MASTER_KEY,
                "database_url": f"sqlite:///{self.workdir}/nemorouter.db",
                # The load repeats one body: with the cache on, every request after the
                # first would be a hit, and this benchmark measures routing.
                "cache": {"enabled": False},
            },
            "providers": {
                "sim": {
                    "type": "openai-compatible",
                    "base_url": f"http://{HOST}:{sim_port}/v1",
                    "api_key": "none",
                }
            },
            "deployments": [{"id": "flash-sim", "model": MODEL, "provider": "sim"}],
        }
        path = self.workdir / "nemorouter.yaml"
        path.write_text(yaml.safe_dump(config))
        port = free_port()
        argv = [sys.executable, "-m", "nemorouter.cli", "serve", "--config", str(path)]
        argv += ["--host", HOST, "--port", str(port), "--log-level", "warning"]
        return spawn("nemorouter", pinned(argv, self.gateway_core), port, self.workdir)

    # ---- the whole benchmark ----------------------------------------------------------------

    async def run(self) -> dict[str, TargetResult]:
        pin_self(self.load_core)
        self.sim = spawn_provider(self.load_core, self.workdir)
        results: dict[str, TargetResult] = {}
        try:
            direct = TargetResult("direct")
            await self.runs(direct, self.sim.port, None)
            results["direct"] = direct
            nemo = self.spawn_nemorouter(self.sim.port)
            results["nemorouter"] = await self.gateway("nemorouter", nemo, "/health/ready")
            from importlib.metadata import version

            results["nemorouter"].version = version("nemorouter")
            if self.args.compare == "litellm":
                import litellm_compare

                server = litellm_compare.spawn_litellm(
                    self.sim.port, MODEL, MASTER_KEY, self.gateway_core, self.workdir
                )
                lite = await self.gateway("litellm", server, litellm_compare.READY_PATH)
                lite.version = litellm_compare.litellm_version()
                results["litellm"] = lite
        finally:
            self.sim.stop()
        return results


# ---- the table ----------------------------------------------------------------------------------


def _checks(results: dict[str, TargetResult], args: argparse.Namespace) -> list[Check]:
    direct = results["direct"]
    assert direct.throughput is not None
    assert direct.latency is not None
    gateways = [r for n, r in results.items() if n != "direct"]
    c, lc, ms = args.concurrency, args.latency_concurrency, args.latency_ms
    checks: list[Check] = []
    for kind in PAYLOADS:
        d = direct.throughput[kind]
        checks.append(
            Check(
                f"throughput {kind}, c{c}, 0 ms provider (req/s)",
                d.rps,
                {g.name: g.throughput[kind].rps for g in gateways if g.throughput},
                "ratio",
                ">=",
                TARGET_RPS[kind],
            )
        )
    for kind in PAYLOADS:
        d = direct.latency[kind]
        for q, target in (("p50", TARGET_ADDED_P50_MS), ("p99", TARGET_ADDED_P99_MS)):
            key = f"{q}_ms"
            checks.append(
                Check(
                    f"latency {kind} {q}, c{lc}, {ms:g} ms provider (ms)",
                    getattr(d, key),
                    {g.name: getattr(g.latency[kind], key) for g in gateways if g.latency},
                    "added",
                    "<=",
                    target,
                )
            )
    for kind in PAYLOADS:
        checks.append(
            Check(
                f"gateway CPU per request, {kind} (ms)",
                None,
                {
                    g.name: g.throughput[kind].target_cpu_ms_per_request
                    for g in gateways
                    if g.throughput
                },
                "",
                "<=",
                TARGET_CPU_MS if kind == "text" else None,
            )
        )
    for label, attr, target in (
        ("resident memory when ready (MiB)", "rss_ready_mib", TARGET_RSS_READY_MIB),
        ("resident memory after throughput runs (MiB)", "rss_after_mib", TARGET_RSS_AFTER_MIB),
        ("ready to serve after start (s)", "ready_s", TARGET_READY_S),
    ):
        checks.append(
            Check(label, None, {g.name: getattr(g, attr) for g in gateways}, "", "<=", target)
        )
    # information: stalls (GC pauses show up here) and whether the load side kept up
    for kind in PAYLOADS:
        checks.append(
            Check(
                f"max latency in throughput run, {kind} (ms)",
                direct.throughput[kind].max_ms,
                {g.name: g.throughput[kind].max_ms for g in gateways if g.throughput},
                "",
                None,
                None,
            )
        )
    for kind in PAYLOADS:
        checks.append(
            Check(
                f"gateway core busy, throughput {kind} (%)",
                None,
                {g.name: g.throughput[kind].target_core_pct for g in gateways if g.throughput},
                "",
                None,
                None,
            )
        )
        checks.append(
            Check(
                f"gateway CPU in kernel, throughput {kind} (%)",
                None,
                {g.name: g.throughput[kind].target_kernel_pct for g in gateways if g.throughput},
                "",
                None,
                None,
            )
        )
        for attr, who in (
            ("loadgen_core_pct", "load generator"),
            ("provider_core_pct", "provider"),
        ):
            checks.append(
                Check(
                    f"{who} core use, throughput {kind} (%)",
                    getattr(direct.throughput[kind], attr),
                    {g.name: getattr(g.throughput[kind], attr) for g in gateways if g.throughput},
                    "",
                    None,
                    None,
                )
            )
    return checks


def _notes(results: dict[str, TargetResult]) -> list[str]:
    """Warnings about runs whose throughput is not the gateway's own limit."""
    notes = []
    for name, result in results.items():
        for kind, run in (result.throughput or {}).items():
            load = (run.loadgen_core_pct or 0.0) + (run.provider_core_pct or 0.0)
            if name != "direct" and load > 90.0:
                notes.append(
                    f"{name} throughput {kind}: the load core was {load:.0f}% busy, so the "
                    "load side may have limited it (the number is a lower bound)"
                )
            if run.target_core_pct is not None and run.target_core_pct < 90.0:
                notes.append(
                    f"{name} throughput {kind}: the gateway core was only "
                    f"{run.target_core_pct:.0f}% busy; something other than its CPU limited it"
                )
    return notes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/overhead",
        description="Gateway overhead: gateway vs direct-to-provider, one table.",
    )
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each run")
    p.add_argument("--concurrency", type=int, default=64, help="throughput runs")
    p.add_argument("--latency-concurrency", type=int, default=16, help="latency runs")
    p.add_argument("--latency-ms", type=float, default=50.0, help="provider latency, latency runs")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    p.add_argument(
        "--compare",
        choices=["litellm"],
        help="also run the LiteLLM proxy (installed into a throw-away venv) through the table",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nemorouter-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        print(
            f"gateway on core {bench.gateway_core}; load generator + simulated provider on "
            f"core {bench.load_core}; {args.warmup:g} s warm-up + {args.duration:g} s per run",
            file=sys.stderr,
        )
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results = runner.run(bench.run())
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"bench/overhead: FAILED: {exc!r}", file=sys.stderr)
            return 2
    checks = _checks(results, args)
    names = [n for n in results if n != "direct"]
    versions = ", ".join(f"{n} {results[n].version}" for n in names)
    print(f"\nGateway overhead ({versions}; python {sys.version.split()[0]})\n")
    table, passed = render(checks, names)
    print(table)
    for note in _notes(results):
        print(f"\nnote: {note}")
    if args.json:
        payload: dict[str, Any] = {
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "results": {n: asdict(r) for n, r in results.items()},
            "targets_met": passed,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if args.check and not passed else 0
