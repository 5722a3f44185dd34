"""Single flight: one execution per key at a time; errors shared; a cancelled leader hands over."""

from __future__ import annotations

import asyncio

import pytest

from nemorouter.state.single_flight import SingleFlight


class Upstream:
    """A provider call that counts its executions and finishes when told."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self) -> bytes:
        self.calls += 1
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return b"answer-%d" % self.calls


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_twenty_concurrent_identical_requests_make_one_call() -> None:
    flight: SingleFlight[bytes] = SingleFlight()
    upstream = Upstream()
    tasks = [asyncio.create_task(flight.run_shared("k", upstream)) for _ in range(20)]
    await settle()
    assert upstream.calls == 1 and flight.in_flight("k")
    upstream.release.set()
    results = await asyncio.gather(*tasks)
    assert upstream.calls == 1
    assert {r for r, _ in results} == {b"answer-1"}
    assert sorted(shared for _, shared in results) == [False] + [True] * 19
    assert not flight.in_flight("k")


async def test_different_keys_run_separately_and_later_calls_run_again() -> None:
    flight: SingleFlight[bytes] = SingleFlight()
    upstream = Upstream()
    upstream.release.set()
    assert await asyncio.gather(flight.run("a", upstream), flight.run("b", upstream)) == [
        b"answer-1",
        b"answer-2",
    ]
    assert await flight.run("a", upstream) == b"answer-3"  # nothing in flight: runs anew


async def test_the_leaders_error_reaches_every_waiter() -> None:
    flight: SingleFlight[bytes] = SingleFlight()
    upstream = Upstream()
    upstream.fail = RuntimeError("all deployments failed")
    tasks = [asyncio.create_task(flight.run("k", upstream)) for _ in range(5)]
    await settle()
    upstream.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert upstream.calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)
    assert not flight.in_flight("k")


async def test_an_error_with_no_waiters_is_not_reported_as_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flight: SingleFlight[bytes] = SingleFlight()
    upstream = Upstream()
    upstream.fail = RuntimeError("boom")
    upstream.release.set()
    with pytest.raises(RuntimeError):
        await flight.run("k", upstream)
    import gc

    gc.collect()
    await settle()
    assert "never retrieved" not in caplog.text


async def test_a_cancelled_leader_hands_over_to_a_waiter() -> None:
    flight: SingleFlight[bytes] = SingleFlight()
    upstream = Upstream()
    leader = asyncio.create_task(flight.run("k", upstream))
    await settle()
    waiters = [asyncio.create_task(flight.run_shared("k", upstream)) for _ in range(5)]
    await settle()
    leader.cancel()
    await settle()
    assert leader.cancelled()
    assert upstream.calls == 2  # one waiter took over; the other four wait for it
    upstream.release.set()
    results = await asyncio.gather(*waiters)
    assert {r for r, _ in results} == {b"answer-2"}
    assert sorted(shared for _, shared in results) == [False] + [True] * 4
    assert upstream.calls == 2


async def test_a_cancelled_waiter_does_not_disturb_the_others() -> None:
    flight: SingleFlight[bytes] = SingleFlight()
    upstream = Upstream()
    leader = asyncio.create_task(flight.run("k", upstream))
    await settle()
    gone = asyncio.create_task(flight.run("k", upstream))
    stays = asyncio.create_task(flight.run("k", upstream))
    await settle()
    gone.cancel()
    await settle()
    upstream.release.set()
    assert await leader == b"answer-1" and await stays == b"answer-1"
    assert gone.cancelled() and upstream.calls == 1


async def test_leader_cancelled_with_no_waiters_leaves_nothing_behind() -> None:
    flight: SingleFlight[bytes] = SingleFlight()
    upstream = Upstream()
    leader = asyncio.create_task(flight.run("k", upstream))
    await settle()
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert not flight.in_flight("k")
