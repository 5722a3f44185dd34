"""What a hard crash loses: spend records of answered requests, after `kill -9` under load.

Starts `nemorouter serve` (SQLite store) in front of the simulated provider, sends requests
from N client threads for S seconds, kills the gateway with SIGKILL mid-load, and counts
the answered requests (each with its own x-request-id) that have no spend record.
SIGTERM loses none (tests/integration/test_spend_shutdown.py); this measures the crash.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import yaml

from nemorouter.testing import SimulatedProvider

MASTER_KEY = "sk-bench-master-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hammer(url: str, answered: list[str], stop: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            request_id = uuid.uuid4().hex
            try:
                response = client.post(
                    f"{url}/v1/chat/completions",
                    json={
                        "model": "gemini-2.5-flash",
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                    headers={"Authorization": f"Bearer {MASTER_KEY}", "x-request-id": request_id},
                )
            except httpx.TransportError:
                return
            if response.status_code == 200:
                answered.append(request_id)


def _run(
    sim: SimulatedProvider, workdir: Path, clients: int, seconds: float
) -> tuple[int, int, float]:
    database = workdir / f"crash-{uuid.uuid4().hex[:6]}.db"
    config = workdir / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "settings": {
                    "master_key": MASTER_KEY,
                    "database_url": f"sqlite:///{database}",
                    "cache": {"enabled": False},
                },
                "providers": {"sim": {"type": "openai-compatible", "base_url": sim.base_url}},
                "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"}],
            }
        )
    )
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "nemorouter.cli", "serve", "--config", str(config), "--port", str(port), "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/health/ready").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    answered: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_hammer, args=(url, answered, stop)) for _ in range(clients)]
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
