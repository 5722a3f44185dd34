"""The memory backend against the window contract, plus properties over random traffic."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nemorouter.state import MemoryWindows, key_subject, team_subject
from tests.unit.state.fakes import FakeClock
from tests.unit.state.window_cases import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
async def test_memory_backend(case: Case) -> None:
    clock = FakeClock()
    await case(MemoryWindows(clock=clock), clock)


# (gap before the request in ms, tokens, which of two keys of one team)
_traffic = st.lists(
    st.tuples(st.integers(0, 20_000), st.integers(0, 400), st.booleans()), max_size=120
)


@settings(max_examples=60, deadline=None)
@given(_traffic)
def test_no_sixty_second_span_exceeds_a_limit(traffic: list[tuple[int, int, bool]]) -> None:
    clock = FakeClock(0.0)
    store = MemoryWindows(clock=clock)
    team = team_subject("t", 7, 1000)
    keys = [key_subject("a", 5, None), key_subject("b", None, 600)]
    granted: list[tuple[int, int, bool]] = []  # (ms, tokens, key)
    now_ms = 0
    for gap, tokens, which in traffic:
        now_ms += gap
        clock.now = now_ms / 1000
        if store.acquire_now([keys[which], team], tokens=tokens).allowed:
            granted.append((now_ms, tokens, which))
    for start, _, _ in granted:  # every span of 60 s that starts at a granted request
        span = [g for g in granted if start <= g[0] < start + 60_000]
        assert len(span) <= 7 and sum(g[1] for g in span) <= 1000
        assert sum(1 for g in span if not g[2]) <= 5
        assert sum(g[1] for g in span if g[2]) <= 600


@settings(max_examples=60, deadline=None)
@given(_traffic, st.integers(1, 1000))
def test_retry_after_is_exact(traffic: list[tuple[int, int, bool]], tokens: int) -> None:
    """A refused request fits at retry_after (no other traffic) and not 1 ms before."""
    clock = FakeClock(0.0)
    store = MemoryWindows(clock=clock)
    subjects = [key_subject("k", 6, 1000), team_subject("t", 8, 1500)]
    now_ms = 0
    for gap, size, _ in traffic:
        now_ms += gap
        clock.now = now_ms / 1000
        store.acquire_now(subjects, tokens=size)
    refused = store.acquire_now(subjects, tokens=tokens)
    if refused.allowed:
        return
    assert 0 < refused.retry_after_s <= 60
    start = clock.now
    clock.now = start + refused.retry_after_s - 0.001
    assert not store.acquire_now(subjects, tokens=tokens).allowed
    clock.now = start + refused.retry_after_s
    assert store.acquire_now(subjects, tokens=tokens).allowed


def test_async_acquire_never_suspends() -> None:
    """Check-and-reserve must be atomic on the event loop: the coroutine finishes in one step."""
    coro = MemoryWindows().acquire([key_subject("k", 1, None)])
    with pytest.raises(StopIteration):
        coro.send(None)


async def test_concurrent_tasks_never_overbook() -> None:
    store = MemoryWindows()
    key = [key_subject("k", 50, None)]
    results = await asyncio.gather(*(store.acquire(key) for _ in range(200)))
    assert sum(d.allowed for d in results) == 50
