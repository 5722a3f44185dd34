"""Two OS processes share one Redis budget and never exceed it together."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from tests.state_redis.conftest import REDIS_URL

WORKER = Path(__file__).with_name("worker.py")


def run_two(
    prefix: str, window_s: float, rpm: str, tpm: str, tokens: int, duration_s: float
) -> list[list[float]]:
    args = [REDIS_URL, prefix, str(window_s), rpm, tpm, str(tokens), str(duration_s)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:  # both connected before either starts
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=30)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert all(proc.returncode == 0 for proc in procs)
    return [json.loads(out) for out in outputs]


async def test_two_processes_share_one_budget(redis_client: Redis, prefix: str) -> None:
    # 1000 rpm, 29,000 tpm, 30 tokens each: the tokens allow 966 in the minute, no more
    grants = run_two(prefix, 60.0, "1000", "29000", 30, 1.5)
    assert len(grants[0]) + len(grants[1]) == 966
    assert grants[0] and grants[1]  # both really competed for it


async def test_two_processes_never_exceed_a_sliding_window(
    redis_client: Redis, prefix: str
) -> None:
    grants = run_two(prefix, 1.0, "20", "-", 0, 3.0)
    times = sorted(grants[0] + grants[1])
    for i, start in enumerate(times):  # every 1 s span starting at a grant
        in_span = sum(1 for t in times[i:] if t < start + 1.0)
        assert in_span <= 20
    assert len(times) >= 50  # ~3 windows of 20, shared by both
    assert grants[0] and grants[1]
