"""The window contract, as cases run against every backend on a fake clock.

tests/unit/state/test_windows.py runs them on the memory backend, tests/state_redis on
Redis (its `now` taken from the fake clock instead of the server's TIME).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nemorouter.state import Subject, WindowStore, key_subject, team_subject
from tests.unit.state.fakes import FakeClock

Case = Callable[[WindowStore, FakeClock], Awaitable[None]]
CASES: list[Case] = []


def case(fn: Case) -> Case:
    CASES.append(fn)
    return fn


async def allowed(store: WindowStore, subjects: list[Subject], tokens: int = 0) -> bool:
    return (await store.acquire(subjects, tokens=tokens)).allowed


@case
async def rpm_limit_and_retry_after(store: WindowStore, clock: FakeClock) -> None:
    key = [key_subject("k", 3, None)]
    for _ in range(3):
        assert await allowed(store, key)
        clock.advance(5)
    refused = await store.acquire(key)  # t=15; the first request left at t=0
    assert not refused.allowed and not refused.never
    assert refused.retry_after_s == 45.0
    assert refused.limited_by == "key:k"
    assert "3 requests per minute" in (refused.reason or "")
    clock.advance(45 - 0.001)
    assert not await allowed(store, key)
    clock.advance(0.001)
    assert await allowed(store, key)
    assert not await allowed(store, key)  # the second one (t=5) is still counted


@case
async def no_double_burst_at_window_edge(store: WindowStore, clock: FakeClock) -> None:
    """A fixed window would allow 10 at 0:59.9 and 10 more at 1:00.0; a sliding one does not."""
    key = [key_subject("k", 10, None)]
    clock.advance(59.9)
    for _ in range(10):
        assert await allowed(store, key)
    clock.advance(0.1)  # a minute boundary
    refused = await store.acquire(key)
    assert not refused.allowed
    assert refused.retry_after_s == 59.9
    clock.advance(59.8)
    assert not await allowed(store, key)
    clock.advance(0.1)  # 60 s after the burst: the whole budget again
    for _ in range(10):
        assert await allowed(store, key)
    assert not await allowed(store, key)


@case
async def tpm_retry_after_frees_enough_tokens(store: WindowStore, clock: FakeClock) -> None:
    key = [key_subject("k", None, 1000)]
    assert await allowed(store, key, 400)  # t=0
    clock.advance(10)
    assert await allowed(store, key, 400)  # t=10
    clock.advance(10)
    assert await allowed(store, key, 150)  # t=20
    clock.advance(10)
    # t=30: 950 counted; 700 more needs 650 to leave: the t=0 and t=10 entries (800)
    refused = await store.acquire(key, tokens=700)
    assert not refused.allowed
    assert refused.retry_after_s == 40.0
    assert "1000 tokens per minute" in (refused.reason or "")
    # a smaller request fits as soon as the first entry leaves
    assert (await store.acquire(key, tokens=300)).retry_after_s == 30.0
    clock.advance(39.999)
    assert not await allowed(store, key, 700)
    clock.advance(0.001)
    assert await allowed(store, key, 700)


@case
async def every_subject_must_have_room(store: WindowStore, clock: FakeClock) -> None:
    key = key_subject("k", 5, None)
    team = team_subject("t", 3, None)
    other = key_subject("k2", 5, None)
    for _ in range(3):
        assert await allowed(store, [key, team])
    refused = await store.acquire([key, team])
    assert not refused.allowed and refused.limited_by == "team:t"
    # the refused request reserved nothing in the key's window
    assert refused.requests is not None and refused.requests.remaining == 2
    assert not await allowed(store, [other, team])  # the team is full for its other keys too
    assert await allowed(store, [other])  # a key outside that team is not


@case
async def retry_after_is_the_longest_wait(store: WindowStore, clock: FakeClock) -> None:
    key = key_subject("k", 2, None)
    team = team_subject("t", None, 100)
    assert await allowed(store, [key, team], 90)  # t=0
    clock.advance(20)
    assert await allowed(store, [key], 0)  # t=20: only the key
    clock.advance(10)
    # t=30: the key frees a request at t=60, the team's tokens at t=60 too; key 2nd at t=80
    decision = await store.acquire([key, team], tokens=50)
    assert not decision.allowed and decision.retry_after_s == 30.0
    clock.advance(30)
    assert await allowed(store, [key, team], 50)
    decision = await store.acquire([key, team], tokens=10)  # key full until t=80
    assert not decision.allowed
    assert decision.retry_after_s == 20.0 and decision.limited_by == "key:k"


@case
async def header_values(store: WindowStore, clock: FakeClock) -> None:
    key = key_subject("k", 60, 10_000)
    first = await store.acquire([key, team_subject("t", 1000, None)], tokens=1500)
    assert first.allowed
    assert first.requests is not None and first.tokens is not None
    assert (first.requests.limit, first.requests.remaining) == (60, 59)
    assert (first.tokens.limit, first.tokens.remaining) == (10_000, 8500)
    assert first.requests.reset_s == 60.0
    clock.advance(24)
    second = await store.acquire([key], tokens=500)
    assert second.requests is not None and second.tokens is not None
    assert second.requests.remaining == 58 and second.tokens.remaining == 8000
    assert second.requests.reset_s == 36.0  # the oldest usage leaves at t=60
    assert second.headers() == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "58",
        "x-ratelimit-reset-requests": "36s",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "8000",
        "x-ratelimit-reset-tokens": "36s",
    }
    refused = await store.acquire([key], tokens=8001)
    assert refused.headers()["retry-after"] == "36"
    assert refused.headers()["x-ratelimit-remaining-tokens"] == "8000"


@case
async def settle_corrects_the_estimate(store: WindowStore, clock: FakeClock) -> None:
    key = [key_subject("k", None, 1500)]
    first = await store.acquire(key, tokens=1000)  # estimate
    assert first.reservation is not None
    assert not await allowed(store, key, 600)
    await store.settle(first.reservation, 200)  # the call used fewer
    second = await store.acquire(key, tokens=1300)
    assert second.allowed and second.tokens is not None and second.tokens.remaining == 0
    assert second.reservation is not None
    await store.settle(second.reservation, 1400)  # and more: over the limit, counted as used
    decision = await store.acquire(key, tokens=1)
    assert not decision.allowed and decision.tokens is not None
    assert decision.tokens.remaining == 0
    clock.advance(60)  # both left the window: settling now changes nothing
    await store.settle(first.reservation, 5000)
    assert await allowed(store, key, 1500)


@case
async def release_gives_everything_back(store: WindowStore, clock: FakeClock) -> None:
    key = [key_subject("k", 1, 100)]
    first = await store.acquire(key, tokens=100)
    assert first.reservation is not None
    assert not await allowed(store, key)
    await store.release(first.reservation)
    decision = await store.acquire(key, tokens=100)
    assert decision.allowed and decision.requests is not None
    assert decision.requests.remaining == 0


@case
async def a_request_that_can_never_fit(store: WindowStore, clock: FakeClock) -> None:
    decision = await store.acquire(
        [key_subject("k", 100, None), team_subject("t", 10, 500)], tokens=501
    )
    assert not decision.allowed and decision.never
    assert decision.limited_by == "team:t"
    assert "501 tokens exceeds team:t's limit of 500 tokens per minute" in (decision.reason or "")
    assert "retry-after" not in decision.headers()
    zero = await store.acquire([key_subject("z", 0, None)])
    assert zero.never
    # nothing was counted for the key
    ok = await store.acquire([key_subject("k", 100, None)])
    assert ok.requests is not None and ok.requests.remaining == 99


@case
async def unlimited_subjects_are_not_tracked(store: WindowStore, clock: FakeClock) -> None:
    decision = await store.acquire([key_subject("k", None, None)], tokens=10**9)
    assert decision.allowed and decision.reservation is None and decision.headers() == {}
    # an unlimited key in a limited team: no key headers, the team still counts
    key, team = key_subject("k", None, None), team_subject("t", 1, None)
    decision = await store.acquire([key, team])
    assert decision.allowed and decision.requests is None
    assert decision.reservation is not None and decision.reservation.subjects == ("team:t",)
    assert not await allowed(store, [key, team])
