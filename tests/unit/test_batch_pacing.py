"""The pacer honours retry-after and the rate-limit window instead of hammering."""

from __future__ import annotations

import asyncio
import time

from nemorouter.batch.pacing import Pacer, parse_duration


def test_parse_duration() -> None:
    assert parse_duration("2") == 2.0
    assert parse_duration("1.5") == 1.5
    assert parse_duration("20ms") == 0.02
    assert parse_duration("8.64s") == 8.64
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("1h2m") == 3720.0
    assert parse_duration("soon") is None
    assert parse_duration("") is None


async def test_429_pauses_everyone_and_halves_concurrency() -> None:
    pacer = Pacer(8)
    await pacer.acquire()
    await pacer.release(429, {"retry-after": "0.3"})
    assert pacer.limit == 4
    assert pacer.throttled == 1
    started = time.monotonic()
    await pacer.acquire()
    assert time.monotonic() - started >= 0.28


async def test_exhausted_window_waits_for_its_reset() -> None:
    pacer = Pacer(4)
    await pacer.acquire()
    await pacer.release(
        200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "300ms"}
    )
    started = time.monotonic()
    await pacer.acquire()
    assert time.monotonic() - started >= 0.28
    assert pacer.throttled == 0


async def test_concurrency_is_capped_and_grows_back() -> None:
    pacer = Pacer(2)
    await pacer.acquire()
    await pacer.acquire()
    third = asyncio.ensure_future(pacer.acquire())
    await asyncio.sleep(0.05)
    assert not third.done()
    await pacer.release(200, {})
    await asyncio.wait_for(third, 1)
    pacer.limit = 1.0
    await pacer.release(200, {})
    assert 1.0 < pacer.limit <= 2.0


async def test_a_burst_of_429s_halves_concurrency_once() -> None:
    pacer = Pacer(32)
    for _ in range(32):
        await pacer.acquire()
    for _ in range(32):
        await pacer.release(429, {"retry-after": "0.2"})
    assert pacer.limit == 16
    assert pacer.throttled == 32


async def test_budget_held_by_calls_in_flight_slows_down_like_a_429() -> None:
    pacer = Pacer(8)
    await pacer.acquire()
    await pacer.acquire()
    await pacer.release(402, {"retry-after": "0.3"})  # reservations in flight hold the budget
    assert pacer.limit == 4 and pacer.budget_waits == 1 and pacer.throttled == 0
    started = time.monotonic()
    assert await pacer.acquire()
    assert time.monotonic() - started >= 0.28
    await pacer.release(402, {})  # a spent budget: no pause, the caller stops the job
    assert pacer.limit == 4 and pacer.budget_waits == 1


async def test_stop_wakes_every_waiting_worker_and_nothing_starts_after_it() -> None:
    pacer = Pacer(1)
    assert await pacer.acquire()
    waiting = asyncio.ensure_future(pacer.acquire())  # no slot: waits for a release
    backing_off = asyncio.ensure_future(pacer.backoff(30.0))
    await asyncio.sleep(0.05)
    assert not waiting.done() and not backing_off.done()
    await pacer.stop()
    assert await asyncio.wait_for(waiting, 1) is False
    await asyncio.wait_for(backing_off, 1)  # cut short, not 30 s
    assert await pacer.acquire() is False
    assert pacer.in_flight == 1  # only the request already sent
