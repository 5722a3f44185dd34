"""Failover soak: page requests through the gateway against a misbehaving primary.

Run as `bench/soak` (see `--help`); tests/integration/test_soak.py runs a scaled-down copy.
One process: the gateway (served from a thread, as in the tests), a chaos primary and a
healthy secondary (simulated providers, each on its own thread), and an asyncio client
sending `--requests` page requests, `--concurrency` at a time, to the chain
[primary model, secondary model].

The primary answers after `--latency-ms`, except: `--p5xx` of requests get a 503,
`--ptimeout` hang past the gateway's request timeout, every `--burst-every-s` seconds all
requests for `--burst-s` get a 429 with a `retry-after-ms` hint, and from `--outage-at-s`
for `--outage-s` seconds every request is dropped (connection closed, no answer): a full
outage. Counted: every answer's status and x-nemo-fallbacks / x-nemo-attempts, every
fallback log line (the router's structured line), every call the primary received by what
it did with it, and the breaker's open/close log lines: how many outage calls reached the
dead primary before its breaker opened, and how many after (the half-open probes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openai

from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import Fault, SimulatedProvider
from nemorouter.testing import sim_http as http
from nemorouter.testing.sim_http import Deferred, Headers

MASTER_KEY = "sk-bench-soak-master"
# Calls already dispatched when the breaker opened reach the provider a moment later (the
# clocks of the log line and of the provider's arrival also differ by that much).
GRACE_S = 0.05
PRIMARY, SECONDARY = "gemini-2.5-flash", "gemini-2.5-pro"


@dataclass
class Params:
    requests: int = 1000
    concurrency: int = 32
    latency_ms: float = 1000.0
    p5xx: float = 0.05
    ptimeout: float = 0.02
    burst_every_s: float = 10.0
    burst_s: float = 1.0
    burst_retry_after_ms: int = 1000
    outage_at_s: float = 8.0
    outage_s: float = 20.0
    request_timeout_s: float = 2.0
    consecutive_failures: int = 5
    cooldown_s: float = 5.0
    seed: int = 8


class ChaosProvider(SimulatedProvider):
    """The primary: 5xx, hangs, 429 bursts and a full outage, by the clock and a seeded die."""

    def __init__(self, params: Params) -> None:
        super().__init__(latency_ms=params.latency_ms, record=False)
        self.params = params
        self.t0 = time.monotonic()
        self._random = random.Random(params.seed)
        self.calls: list[tuple[float, str]] = []  # (seconds since start, what it did)
        self._lock = threading.Lock()

    def _note(self, what: str) -> None:
        with self._lock:
            self.calls.append((time.monotonic() - self.t0, what))

    def _chat(
        self, path: bytes, headers: Headers, body: bytes, auth: bytes | None
    ) -> bytes | Deferred:
        p = self.params
        now = time.monotonic() - self.t0
        if p.outage_at_s <= now < p.outage_at_s + p.outage_s:
            self._note("outage")
            return Deferred(0.0, None, True)  # drop: connection closed, no answer
        if p.burst_every_s and now % p.burst_every_s < p.burst_s:
            self._note("429")
            return http.render_status_fault(
                Fault.status(429, retry_after_ms=p.burst_retry_after_ms)
            )
        draw = self._random.random()
        if draw < p.p5xx:
            self._note("5xx")
            return http.render_status_fault(Fault.status(503))
        if draw < p.p5xx + p.ptimeout:
            self._note("hang")
            return Deferred(p.request_timeout_s * 2, None, True)
        self._note("ok")
        return super()._chat(path, headers, body, auth)


class Captured(logging.Handler):
    """The router's fallback lines and the breaker's transitions, with their times."""

    def __init__(self, t0: float) -> None:
        super().__init__(logging.INFO)
        self.t0 = t0
        self.fallbacks: list[logging.LogRecord] = []
        self.breaker: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "fallback_from"):
            self.fallbacks.append(record)
        elif record.name == "nemorouter.breaker":
            self.breaker.append((record.created - self.t0, record.getMessage()))


@dataclass
class Result:
    params: dict[str, Any]
    wall_s: float = 0.0
    requests: int = 0
    ok: int = 0
    failed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    fallbacks: int = 0  # sum of x-nemo-fallbacks
    fallback_log_lines: int = 0
    fallback_lines_with_ids: int = 0  # carrying request id and job id
    attempts: int = 0  # sum of x-nemo-attempts
    answered_by: dict[str, int] = field(default_factory=dict)
    primary_calls: dict[str, int] = field(default_factory=dict)
    secondary_calls: int = 0
    outage_calls_before_open: int = 0  # incl. those sent as it opened (GRACE_S)
    outage_calls_while_open: int = 0  # should be the probes only
    outage_probes: int = 0  # half-open probes that failed (each re-opened the breaker)
    breaker_opened_after_s: float | None = None  # from the outage's start
    breaker_events: list[tuple[float, str]] = field(default_factory=list)
    primary_back_after_s: float | None = None  # first good answer after the outage ended


def gateway_config(params: Params, primary: str, secondary: str, store: Path) -> dict[str, Any]:
    return {
        "settings": {
            "master_key": MASTER_KEY,
            "database_url": f"sqlite:///{store}",
            "request_timeout_s": params.request_timeout_s,
            "cache": {"enabled": False},  # every page is its own request anyway
            "breaker": {
                "consecutive_failures": params.consecutive_failures,
                "cooldown_s": params.cooldown_s,
            },
        },
        "providers": {
            "primary": {"type": "openai-compatible", "base_url": primary, "api_key": "none"},
            "secondary": {"type": "openai-compatible", "base_url": secondary, "api_key": "none"},
        },
        "deployments": [
            {"id": "primary", "model": PRIMARY, "provider": "primary"},
            {"id": "secondary", "model": SECONDARY, "provider": "secondary"},
        ],
        "groups": {"pages": [PRIMARY, SECONDARY]},
    }


async def _client(base_url: str, params: Params, result: Result, job_id: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key=MASTER_KEY, max_retries=0, timeout=120)
    pages = iter(range(params.requests))
    statuses: Counter[str] = Counter()
    answered: Counter[str] = Counter()

    async def worker() -> None:
        for page in pages:
            messages = [{"role": "user", "content": f"Extract the fields of page {page}."}]
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model="pages", messages=messages, extra_headers={"x-nemo-job-id": job_id}
                )
            except openai.APIStatusError as exc:
                statuses[str(exc.status_code)] += 1
                continue
            except openai.APIConnectionError:
                statuses["connection"] += 1
                continue
            statuses[str(raw.status_code)] += 1
            result.fallbacks += int(raw.headers["x-nemo-fallbacks"])
            result.attempts += int(raw.headers["x-nemo-attempts"])
            answered[raw.headers["x-nemo-deployment"]] += 1

    await asyncio.gather(*(worker() for _ in range(params.concurrency)))
    await client.close()
    result.statuses, result.answered_by = dict(statuses), dict(answered)
    result.ok = statuses["200"]
    result.requests = sum(statuses.values())
    result.failed = result.requests - result.ok


def run(params: Params) -> Result:
    result = Result(asdict(params))
    job_id = f"soak-{int(time.time())}"
    with (
        ChaosProvider(params) as primary,
        SimulatedProvider(latency_ms=params.latency_ms, record=False) as secondary,
        tempfile.TemporaryDirectory(prefix="nemorouter-soak-") as tmp,
    ):
        raw = gateway_config(params, primary.base_url, secondary.base_url, Path(tmp) / "s.db")
        with BackgroundGateway(parse_config(raw, env={})) as gateway:
            loggers = [
                logging.getLogger("nemorouter.router"),
                logging.getLogger("nemorouter.breaker"),
            ]
            captured = Captured(time.time())
            saved = [(log.level, log.propagate) for log in loggers]
            for log in loggers:  # hundreds of failure lines: counted here, not printed
                log.addHandler(captured)
                log.setLevel(logging.INFO)
                log.propagate = False
            try:
                started = time.monotonic()
                primary.t0, captured.t0 = started, time.time()
                asyncio.run(_client(gateway.base_url, params, result, job_id))
                result.wall_s = time.monotonic() - started
            finally:
                for log, (level, propagate) in zip(loggers, saved, strict=True):
                    log.removeHandler(captured)
                    log.setLevel(level)
                    log.propagate = propagate
        result.secondary_calls = secondary.request_count
    _count(result, primary, captured, params, job_id)
    return result


def _count(
    result: Result, primary: ChaosProvider, captured: Captured, params: Params, job_id: str
) -> None:
    result.fallback_log_lines = len(captured.fallbacks)
    result.fallback_lines_with_ids = sum(
        1
        for r in captured.fallbacks
        if getattr(r, "job_id", None) == job_id and getattr(r, "request_id", None)
    )
    result.primary_calls = dict(Counter(what for _, what in primary.calls))
    result.breaker_events = [(round(t, 3), msg) for t, msg in captured.breaker]
    start, end = params.outage_at_s, params.outage_at_s + params.outage_s
    opened = [t for t, msg in captured.breaker if start <= t < end and " open " in msg]
    first_open = opened[0] if opened else end
    outage = [t for t, what in primary.calls if what == "outage"]
    result.outage_calls_before_open = sum(1 for t in outage if t <= first_open + GRACE_S)
    result.outage_calls_while_open = len(outage) - result.outage_calls_before_open
    result.outage_probes = sum(
        1 for t, msg in captured.breaker if start <= t < end + GRACE_S and "probe failed" in msg
    )
    result.breaker_opened_after_s = round(first_open - start, 3) if opened else None
    back = [t for t, what in primary.calls if what == "ok" and t >= end]
    result.primary_back_after_s = round(back[0] - end, 3) if back else None


def check(result: Result, params: Params) -> list[str]:
    """What the soak promises; an empty list when every promise held."""
    problems = []
    if result.requests != params.requests or result.failed:
        problems.append(f"{result.failed} of {result.requests} requests failed: {result.statuses}")
    if result.fallback_log_lines != result.fallbacks:
        problems.append(
            f"{result.fallbacks} fallbacks but {result.fallback_log_lines} fallback log lines"
        )
    if result.fallback_lines_with_ids != result.fallback_log_lines:
        problems.append("a fallback line lacks its request id or job id")
    if result.breaker_opened_after_s is None:
        problems.append("the breaker never opened during the outage")
    # the calls that reach the dead primary before it opens: the threshold, plus those that
    # were dispatched at the same moment (at most one per concurrent client)
    if result.outage_calls_before_open > params.consecutive_failures + params.concurrency:
        problems.append(f"{result.outage_calls_before_open} outage calls before the breaker opened")
    if result.outage_calls_while_open > result.outage_probes:
        problems.append(
            f"{result.outage_calls_while_open} outage calls while open, "
            f"{result.outage_probes} of them probes"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Params()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--json", type=Path, help="also write every count here")
    args = parser.parse_args(argv)
    params = Params(**{k: getattr(args, k) for k in asdict(defaults)})
    result = run(params)
    problems = check(result, params)
    report = asdict(result)
    for key, value in report.items():
        if key not in ("params", "breaker_events"):
            print(f"{key:28} {value}")
    print("breaker events (s since start):")
    for t, message in result.breaker_events:
        print(f"  {t:8.3f}  {message}")
    if args.json:
        args.json.write_text(json.dumps({**report, "problems": problems}, indent=2))
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0
