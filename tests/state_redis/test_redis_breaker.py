"""Two OS processes share circuit breakers through Redis: a trip in one stops the other's
calls, the half-open probe goes to exactly one of them, and its result reaches both."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.state_redis.conftest import REDIS_URL

WORKER = Path(__file__).with_name("breaker_worker.py")
COOLDOWN_S = 0.6


class Worker:
    def __init__(self, prefix: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), REDIS_URL, prefix, str(COOLDOWN_S)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.readline() == "ready"

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        return dict(json.loads(self.readline()))

    def ask(self, command: str) -> dict[str, Any]:
        self.send(command)
        return self.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def workers(redis_client: Redis, prefix: str) -> Iterator[tuple[Worker, Worker]]:
    a, b = Worker(prefix), Worker(prefix)
    yield a, b
    a.stop()
    b.stop()


async def test_trip_in_one_process_stops_the_other(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    assert a.ask("fail 2") == {"answer": None, "open": False, "available": True}
    assert b.ask("state")["available"]
    assert a.ask("fail 1")["open"]  # third consecutive failure: open, published
    await asyncio.sleep(0.2)  # a few background refreshes (every 50 ms) of the other process
    assert b.ask("peek") == {"answer": None, "open": True, "available": False}
    assert b.ask("claim")["answer"] is False  # still cooling down: no call


async def test_exactly_one_process_gets_the_probe_and_its_success_closes_both(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    for _ in range(5):  # several rounds: the race for the probe is real each time
        assert a.ask("fail 3")["open"]
        assert b.ask("state")["open"]
        await asyncio.sleep(COOLDOWN_S + 0.05)
        a.send("claim")
        b.send("claim")
        answers = [a.read()["answer"], b.read()["answer"]]
        assert sorted(answers) == [False, True]
        winner, loser = (a, b) if answers[0] else (b, a)
        assert not winner.ask("peek")["available"]  # its probe is out
        assert winner.ask("success") == {"answer": None, "open": False, "available": True}
        assert loser.ask("state") == {"answer": None, "open": False, "available": True}
        assert loser.ask("claim")["answer"] is True  # closed: calls go through again


async def test_a_failed_probe_reopens_for_both(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    assert a.ask("fail 3")["open"]
    await asyncio.sleep(COOLDOWN_S + 0.05)
    assert a.ask("claim")["answer"] is True
    assert a.ask("fail 1")["open"]  # the probe failed: a new cooldown
    view = b.ask("state")
    assert view["open"] and not view["available"]
    assert b.ask("claim")["answer"] is False
    await asyncio.sleep(COOLDOWN_S + 0.05)
    assert b.ask("claim")["answer"] is True  # the next probe, after the new cooldown
