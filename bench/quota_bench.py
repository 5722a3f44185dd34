"""Deployment quota benchmark: the gateway holds a deployment to its provider's RPM quota.

Run as `bench/quota` (see `--help`). Processes: the simulated provider
(`python -m nemorouter.testing.simulated_provider --rpm Q --latency-ms L --no-record`, a
sliding 60 s window counted when a request arrives, 429 beyond it), one or two gateways
(`nemorouter serve`, each its own process, all with `rpm: Q` on the one deployment; two
share the quota through Redis), and this process as the client: `--requests` distinct
requests, `--concurrency` at a time, spread round-robin over the gateways.

The quota is a sliding window, so the first Q requests of a run go out as fast as the
provider answers (the window starts empty): a run of Q requests or fewer never meets the
quota, whatever the gateway does. What shows the rate being held is how long the next
windows' worth takes: the sustained rate is k·Q requests over the time from the first
answer to the answer of request k·Q + 1 (k whole windows' worth: the run must be longer
than one window's worth). Pacing exactly at the quota gives Q per 60 s; the gateway's
guard (1 s a window, see `nemorouter.state.factory`) costs 1/61 of it. Provider 429s come
from the provider itself (`/_sim/config` `throttled`), queue waits from each answer's
`x-nemo-queue-ms` header (absent = 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from loadgen import get
from nemorouter.providers.http import HTTPPool
from procs import HOST, Server, free_port, spawn

MASTER_KEY = "sk-bench-quota-master"
TARGET_RATIO = 0.97
MODEL = "gemini-2.5-flash"


@dataclass
class Answer:
    sent: float
    done: float
    status: int
    queue_ms: float
    gateway: int


def gateway_config(
    tmp: Path, provider_port: int, rpm: int, deployment_id: str, redis_url: str | None, n: int
) -> Path:
    config = {
        "settings": {
            "master_key": MASTER_KEY,
            "database_url": f"sqlite:///{tmp}/store-{n}.db",
            "redis_url": redis_url,
            "cache": {"enabled": False},  # every request must reach the provider
            "queue_timeout_s": 120,  # a run is paced, never failed over
        },
        "providers": {
            "sim": {
                "type": "openai-compatible",
                "base_url": f"http://{HOST}:{provider_port}/v1",
                "api_key": "none",
            }
        },
        # A fresh deployment id per run: its quota's Redis keys are unique to the run
        # (nemo:rl:deployment:<id>:*) and deleted at the end.
        "deployments": [{"id": deployment_id, "model": MODEL, "provider": "sim", "rpm": rpm}],
    }
    path = tmp / f"gateway-{n}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def start_provider(args: argparse.Namespace, tmp: Path) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "nemorouter.testing.simulated_provider", "--no-record"]
    argv += ["--host", HOST, "--port", str(port), "--latency-ms", str(args.latency_ms)]
    argv += ["--rpm", str(args.rpm)]
    server = spawn("provider", argv, port, tmp)
    await server.wait_ready("/health", 30.0)
    return server


async def start_gateways(
    args: argparse.Namespace, tmp: Path, provider: Server, instances: int, deployment_id: str
) -> list[Server]:
    nemorouter = Path(sys.executable).parent / "nemorouter"
    redis_url = args.redis_url if instances > 1 else None
    servers: list[Server] = []
    try:
        for n in range(instances):
            path = gateway_config(tmp, provider.port, args.rpm, deployment_id, redis_url, n)
            port = free_port()
            argv = [str(nemorouter), "serve", "--config", str(path), "--host", HOST]
            argv += ["--port", str(port), "--log-level", "warning"]
            servers.append(spawn(f"gateway-{n}", argv, port, tmp))
        for server in servers:
            await server.wait_ready("/health", 60.0)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


async def drive(args: argparse.Namespace, gateways: list[Server]) -> list[Answer]:
    pools = [
        HTTPPool(
            f"http://{HOST}:{g.port}/v1",
            max_connections=args.concurrency,
            connect_timeout=10.0,
        )
        for g in gateways
    ]
    auth = f"Authorization: Bearer {MASTER_KEY}\r\n".encode()
    answers: list[Answer] = []
    todo = iter(range(args.requests))

    async def worker() -> None:
        for i in todo:
            g = i % len(pools)
            body = orjson.dumps(
                {"model": MODEL, "messages": [{"role": "user", "content": f"page {i}"}]}
            )
            sent = time.monotonic()
            response = await pools[g].post("/chat/completions", body, auth, 600.0)
            done = time.monotonic()
            queued = float(response.headers.get("x-nemo-queue-ms", 0.0))
            answers.append(Answer(sent, done, response.status, queued, g))

    try:
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    finally:
        for pool in pools:
            await pool.close()
    return answers


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def analyse(args: argparse.Namespace, answers: list[Answer], throttled: int) -> dict[str, Any]:
    ok = sorted(a.done for a in answers if a.status == 200)
    t0 = min(a.sent for a in answers)
    span = max(a.done for a in answers) - t0
    windows = (len(ok) - 1) // args.rpm  # whole windows' worth after the first answer
    sustained = None
    if windows >= 1:
        sustained = windows * args.rpm / (ok[windows * args.rpm] - ok[0]) * 60.0
    waits = [a.queue_ms for a in answers]
    statuses: dict[str, int] = {}
    for a in answers:
        statuses[str(a.status)] = statuses.get(str(a.status), 0) + 1
    return {
        "requests": args.requests,
        "ok": len(ok),
        "statuses": statuses,
        "span_s": span,
        "overall_rpm": len(ok) / span * 60.0 if span else 0.0,
        "sustained_rpm": sustained,
        "ratio": None if sustained is None else sustained / args.rpm,
        "provider_429s": throttled,
        "queue_p50_ms": percentile(waits, 50),
        "queue_p99_ms": percentile(waits, 99),
        "queue_max_ms": max(waits, default=0.0),
        "queued_share": sum(w > 0 for w in waits) / len(waits) if waits else 0.0,
        "per_gateway": [sum(1 for a in answers if a.gateway == g) for g in range(2)],
    }


async def one_run(args: argparse.Namespace, instances: int, tmp: Path) -> dict[str, Any]:
    deployment_id = f"bench-{uuid.uuid4().hex[:12]}"
    provider = await start_provider(args, tmp)
    gateways: list[Server] = []
    try:
        gateways = await start_gateways(args, tmp, provider, instances, deployment_id)
        answers = await drive(args, gateways)
        status, body = await get(HOST, provider.port, "/_sim/config")
        throttled = json.loads(body)["throttled"] if status == 200 else -1
    finally:
        for server in gateways:
            server.stop()
        provider.stop()
        if instances > 1:
            await delete_keys(args.redis_url, deployment_id)
    result = analyse(args, answers, throttled)
    result["instances"] = instances
    return result


async def delete_keys(url: str, deployment_id: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"nemo:rl:deployment:{deployment_id}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def render(args: argparse.Namespace, results: list[dict[str, Any]]) -> str:
    lines = [
        f"quota {args.rpm} rpm (provider enforces the same, sliding 60 s); "
        f"{args.requests} requests, concurrency {args.concurrency}, "
        f"provider latency {args.latency_ms:g} ms",
        "",
        "| gateways | ok | wall (s) | sustained rpm | sustained / quota | provider 429s "
        "| queue wait p50 (ms) | p99 (ms) | max (ms) | requests queued | verdict |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ratio = r["ratio"]
        if ratio is None:
            shown, verdict = "n/a (one window's worth)", "quota never binds"
        else:
            shown = f"{ratio:.3f}"
            good = ratio >= TARGET_RATIO and r["provider_429s"] == 0
            verdict = "PASS" if good and r["ok"] == r["requests"] else "MISS"
        sustained = "n/a" if r["sustained_rpm"] is None else f"{r['sustained_rpm']:,.0f}"
        lines.append(
            f"| {r['instances']} | {r['ok']}/{r['requests']} | {r['span_s']:.1f} | {sustained} "
            f"| {shown} | {r['provider_429s']} | {r['queue_p50_ms']:,.0f} "
            f"| {r['queue_p99_ms']:,.0f} | {r['queue_max_ms']:,.0f} "
            f"| {r['queued_share']:.0%} | {verdict} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/quota", description=__doc__.split("\n\n")[0])
    p.add_argument("--rpm", type=int, default=6000, help="deployment and provider quota")
    p.add_argument(
        "--requests", type=int, default=9000, help="requests per run (default 9000: 1.5 windows)"
    )
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency-ms", type=float, default=200.0, help="provider latency (200)")
    p.add_argument("--instances", default="1,2", help="gateway counts to run (default 1,2)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--json", type=Path, default=None, help="also write every number here")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="nemorouter-quota-") as name:
        for instances in (int(n) for n in args.instances.split(",")):
            print(f"running with {instances} gateway(s) ...", file=sys.stderr, flush=True)
            try:
                results.append(asyncio.run(one_run(args, instances, Path(name))))
            except (RuntimeError, OSError) as exc:
                print(f"bench/quota: FAILED: {exc!r}", file=sys.stderr)
                return 2
    print(render(args, results))
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": None}, "results": results}))
    missed = [
        r
        for r in results
        if r["provider_429s"] != 0
        or r["ok"] != r["requests"]
        or (r["ratio"] is not None and r["ratio"] < TARGET_RATIO)
    ]
    return 1 if args.check and missed else 0
