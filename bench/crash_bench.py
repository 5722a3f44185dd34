"""What a hard crash loses: spend records of answered requests, after `kill -9` under load.

Starts `nemorouter serve` (SQLite store) in front of the simulated provider, sends requests
from N client threads for S seconds, kills the gateway with SIGKILL mid-load, and counts
the answered requests (each with its own x-request-id) that have no spend record.
SIGTERM loses none, under load (tests/integration/test_spend_shutdown.py) and with the
store down (the journal: tests/integration/test_spend_journal_sigterm.py); this measures
the crash.
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path

from nemorouter.testing import SimulatedProvider
from nemorouter.testing.processes import send_until_stopped, serve_process

MASTER_KEY = "sk-bench-master-key"


def _run(
    sim: SimulatedProvider, workdir: Path, clients: int, seconds: float
) -> tuple[int, int, float]:
    database = workdir / f"crash-{uuid.uuid4().hex[:6]}.db"
    config = {
        "settings": {"master_key": MASTER_KEY, "database_url": f"sqlite:///{database}", "cache": {"enabled": False}},
        "providers": {"sim": {"type": "openai-compatible", "base_url": sim.base_url}},
        "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"}],
    }  # fmt: skip
    answered: list[str] = []
    stop = threading.Event()
    with serve_process(config, workdir, log_level="error") as (process, url):
        threads = [
            threading.Thread(target=send_until_stopped, args=(url, MASTER_KEY, answered, stop))
            for _ in range(clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        process.send_signal(signal.SIGKILL)
        elapsed = time.monotonic() - started
        process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    with sqlite3.connect(database) as connection:
        recorded = {row[0] for row in connection.execute("SELECT request_id FROM spend")}
    lost = len(set(answered) - recorded)
    return len(answered), lost, len(answered) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"kill -9 after {args.seconds:g} s of load from {args.clients} clients (SQLite store)")
    print("| run | answered | req/s | records lost | lost = ms of traffic |")
    print("|---|---:|---:|---:|---:|")
    with SimulatedProvider(latency_ms=5) as sim, tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            answered, lost, rate = _run(sim, Path(tmp), args.clients, args.seconds)
            print(f"| {run} | {answered} | {rate:,.0f} | {lost} | {lost / rate * 1000:.0f} ms |")
    return 0
