"""Latency of a cache hit through the gateway, against a miss and the provider directly.

One `nemorouter serve` process (SQLite store, in-process cache) in front of a simulated
provider answering in 50 ms; one client sends the same request N times, one at a time:
the first is a miss, the rest are hits. Text and a ~300 KB page image.
"""

from __future__ import annotations

import argparse
import base64
import io
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from nemorouter.testing import SimulatedProvider
from nemorouter.testing.processes import serve_process

MASTER_KEY = "sk-bench-master-key"


def _image_url() -> str:
    rng = random.Random(3)
    image = Image.new("L", (700, 500))
    image.putdata([rng.randrange(256) for _ in range(700 * 500)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _bodies() -> dict[str, dict[str, Any]]:
    text = {"role": "user", "content": "What is the invoice total?"}
    image = {"role": "user", "content": [
        {"type": "text", "text": "Extract the invoice fields."},
        {"type": "image_url", "image_url": {"url": _image_url()}},
    ]}  # fmt: skip
    return {
        "text": {"model": "gemini-2.5-flash", "messages": [text]},
        "image ~300 KB": {"model": "gemini-2.5-flash", "messages": [image]},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    config = {
        "settings": {"master_key": MASTER_KEY, "database_url": "sqlite:///./s.db"},
        "providers": {"sim": {"type": "openai-compatible", "base_url": ""}},
        "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"}],
    }
    with SimulatedProvider(latency_ms=50) as sim, tempfile.TemporaryDirectory() as tmp:
        config["providers"]["sim"]["base_url"] = sim.base_url
        with serve_process(config, Path(tmp), log_level="error") as (_, url):
            print(f"{args.requests} identical requests, one at a time; provider latency 50 ms")
            print("| request | miss (ms) | hit p50 (ms) | hit p99 (ms) | hit max (ms) |")
            print("|---|---:|---:|---:|---:|")
            headers = {"Authorization": f"Bearer {MASTER_KEY}"}
            with httpx.Client(timeout=30) as client:
                for name, body in _bodies().items():
                    times, statuses = [], []
                    for _ in range(args.requests):
                        started = time.perf_counter()
                        response = client.post(
                            f"{url}/v1/chat/completions", json=body, headers=headers
                        )
                        times.append((time.perf_counter() - started) * 1000)
                        statuses.append(response.headers["x-nemo-cache"])
                    assert statuses[0] == "MISS", statuses[:3]
                    assert set(statuses[1:]) == {"HIT"}, statuses[:3]
                    hits = sorted(times[1:])
                    p99 = hits[int(len(hits) * 0.99) - 1]
                    print(
                        f"| {name} | {times[0]:.1f} | {statistics.median(hits):.2f} | {p99:.2f} | {hits[-1]:.2f} |"
                    )
    return 0
