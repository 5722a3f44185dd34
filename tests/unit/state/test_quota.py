"""The deployment quota gate: non-blocking tries, a FIFO wait, timeouts, no polling.

Waits are real (asyncio sleeps), so the windows here are a fraction of a second long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from nemorouter.state import Decision, MemoryWindows, QuotaGate, Subject


class CountingWindows(MemoryWindows):
    """Counts window checks, to show that waiters do not poll."""

    def __init__(self, window_s: float) -> None:
        super().__init__(window_s=window_s)
        self.checks = 0

    async def acquire(
        self, subjects: Sequence[Subject], requests: int = 1, tokens: int = 0
    ) -> Decision:
        self.checks += 1
        return await super().acquire(subjects, requests, tokens)


def gate(window_s: float, rpm: int | None = 1, tpm: int | None = None) -> QuotaGate:
    return QuotaGate(CountingWindows(window_s), {"d": (rpm, tpm), "free": (None, None)})


async def test_try_acquire_never_waits() -> None:
    quotas = gate(30.0, rpm=2)
    assert (await quotas.try_acquire("d", 10)).allowed
    assert (await quotas.try_acquire("d", 10)).allowed
    start = time.monotonic()
    refused = await quotas.try_acquire("d", 10)
    assert time.monotonic() - start < 0.05
    assert not refused.allowed and 29.0 < refused.retry_after_s <= 30.0
    assert refused.limited_by == "deployment:d"
    free = await quotas.try_acquire("free", 10**9)  # no quota configured: never gated
    assert free.allowed and free.reservation is None
    assert not quotas.gated("free") and quotas.gated("d")


async def test_a_waiter_wakes_when_the_window_frees_without_polling() -> None:
    quotas = gate(0.3)
    windows = quotas._windows
    assert isinstance(windows, CountingWindows)
    start = time.monotonic()
    assert (await quotas.acquire("d", 0, timeout_s=1.0)).allowed
    second = await quotas.acquire("d", 0, timeout_s=2.0)
    elapsed = time.monotonic() - start
    assert second.allowed
    assert 0.29 <= elapsed < 0.45  # when the first left the window, not later
    assert second.waited_s == pytest.approx(elapsed, abs=0.02)
    assert windows.checks == 3  # the first; the second on arrival and once at its wake-up


async def test_waiters_are_served_in_arrival_order() -> None:
    quotas = gate(0.1)
    assert (await quotas.acquire("d", 0, timeout_s=1.0)).allowed
    served: list[int] = []

    async def wait(i: int) -> None:
        decision = await quotas.acquire("d", 0, timeout_s=5.0)
        assert decision.allowed
        served.append(i)

    tasks = []
    for i in range(6):
        tasks.append(asyncio.create_task(wait(i)))
        await asyncio.sleep(0.005)  # arrival order = i
    assert quotas.queued("d") == 6
    # a non-blocking try does not jump the queue, even when the window has room
    await asyncio.sleep(0.1)
    jumper = await quotas.try_acquire("d", 0)
    assert not jumper.allowed and "queued" in (jumper.reason or "")
    await asyncio.gather(*tasks)
    assert served == list(range(6))
    assert quotas.queued("d") == 0


async def test_a_big_request_at_the_head_is_not_overtaken() -> None:
    """Strict FIFO: a small request behind a large one waits its turn."""
    quotas = gate(0.2, rpm=None, tpm=100)
    assert (await quotas.acquire("d", 80, timeout_s=1.0)).allowed
    order: list[str] = []

    async def wait(name: str, tokens: int) -> None:
        assert (await quotas.acquire("d", tokens, timeout_s=2.0)).allowed
        order.append(name)

    big = asyncio.create_task(wait("big", 100))
    await asyncio.sleep(0.01)
    small = asyncio.create_task(wait("small", 10))  # would fit now, but arrived second
    await asyncio.gather(big, small)
    assert order == ["big", "small"]


async def test_timeout_and_the_queue_moves_on() -> None:
    quotas = gate(30.0)
    assert (await quotas.acquire("d", 0, timeout_s=1.0)).allowed
    start = time.monotonic()
    head = asyncio.create_task(quotas.acquire("d", 0, timeout_s=0.2))
    await asyncio.sleep(0.01)
    behind = asyncio.create_task(quotas.acquire("d", 0, timeout_s=0.1))  # times out first
    timed_out_behind = await behind
    timed_out = await head
    elapsed = time.monotonic() - start
    assert not timed_out.allowed and not timed_out.never
    assert 0.19 <= elapsed < 0.35
    assert "within 0.2s" in (timed_out.reason or "")
    assert 29.0 < timed_out.retry_after_s <= 30.0
    assert timed_out.waited_s == pytest.approx(0.2, abs=0.05)
    assert not timed_out_behind.allowed
    assert timed_out_behind.waited_s == pytest.approx(0.1, abs=0.05)
    assert quotas.queued("d") == 0
    assert quotas.stats.timeouts == 2 and quotas.stats.served == 1


async def test_a_request_over_the_quota_is_refused_at_once() -> None:
    quotas = gate(30.0, rpm=None, tpm=100)
    start = time.monotonic()
    decision = await quotas.acquire("d", 101, timeout_s=5.0)
    assert decision.never and time.monotonic() - start < 0.05
    assert quotas.queued("d") == 0


async def test_settle_and_release_wake_the_head_early() -> None:
    quotas = gate(30.0, rpm=None, tpm=100)
    first = await quotas.acquire("d", 100, timeout_s=1.0)  # estimate
    assert first.reservation is not None
    start = time.monotonic()
    waiter = asyncio.create_task(quotas.acquire("d", 50, timeout_s=5.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await quotas.settle(first.reservation, 20)  # the call used less: room for the waiter
    second = await waiter
    assert second.allowed and time.monotonic() - start < 0.2
    assert second.reservation is not None
    waiter = asyncio.create_task(quotas.acquire("d", 80, timeout_s=5.0))
    await asyncio.sleep(0.05)
    await quotas.release(second.reservation)  # never sent: give it back
    assert (await waiter).allowed


async def test_a_cancelled_head_hands_over() -> None:
    quotas = gate(0.2)
    assert (await quotas.acquire("d", 0, timeout_s=1.0)).allowed
    head = asyncio.create_task(quotas.acquire("d", 0, timeout_s=5.0))
    await asyncio.sleep(0.01)
    behind = asyncio.create_task(quotas.acquire("d", 0, timeout_s=5.0))
    await asyncio.sleep(0.01)
    head.cancel()
    decision = await behind
    assert decision.allowed and quotas.queued("d") == 0


async def test_wait_statistics() -> None:
    quotas = gate(0.05, rpm=2)
    for _ in range(6):
        assert (await quotas.acquire("d", 0, timeout_s=1.0)).allowed
    summary = quotas.stats.summary()
    assert summary["served"] == 6 and summary["timeouts"] == 0
    assert summary["p50_s"] >= 0.0 and summary["p99_s"] == summary["max_s"] >= 0.04
    await quotas.settle(None, 0)  # an ungated deployment's decision has no reservation
    await quotas.release(None)
