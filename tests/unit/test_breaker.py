"""Circuit breaker state transitions, on a fake clock."""

from __future__ import annotations

from nemorouter.state.breaker_memory import Breakers, FailureCounter


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_consecutive_failures_open_then_one_probe_decides() -> None:
    clock = Clock()
    breakers = Breakers(3, 10.0, clock=clock)
    for _ in range(2):
        breakers.failure("d")
    assert breakers.available("d")
    breakers.success("d")  # a success resets the count
    for _ in range(2):
        breakers.failure("d")
    assert breakers.available("d")
    breakers.failure("d")  # third consecutive: open
    assert breakers.is_open("d")
    assert not breakers.available("d")
    assert not await breakers.attempt("d")
    clock.now += 9.9
    assert not breakers.available("d")
    clock.now += 0.2  # half-open: exactly one probe
    assert breakers.available("d")
    assert await breakers.attempt("d")
    assert not breakers.available("d")
    assert not await breakers.attempt("d")  # a second caller does not get one
    breakers.failure("d")  # the probe failed: open again, for a new cooldown
    assert not breakers.available("d")
    clock.now += 5
    assert not breakers.available("d")
    clock.now += 5.1
    assert await breakers.attempt("d")
    breakers.success("d")  # the probe succeeded: closed
    assert breakers.available("d")
    assert not breakers.is_open("d")
    assert breakers.available("other")
    breakers.failure("d")  # counting starts afresh after closing
    breakers.failure("d")
    assert not breakers.is_open("d")


async def test_failure_rate_opens_once_there_were_min_calls() -> None:
    clock = Clock()
    breakers = Breakers(100, 10.0, clock=clock, failure_rate=0.5, window_s=10.0, min_calls=10)
    for _ in range(4):  # 4 of 4 failed, but fewer calls than min_calls
        breakers.success("d")
        breakers.failure("d")
    assert not breakers.is_open("d")
    breakers.success("d")
    breakers.failure("d")  # 5 of 10: the rate is reached
    assert breakers.is_open("d")


async def test_failure_rate_below_the_threshold_stays_closed() -> None:
    clock = Clock()
    breakers = Breakers(100, 10.0, clock=clock, failure_rate=0.5, window_s=10.0, min_calls=10)
    for _ in range(50):
        breakers.success("d")
        breakers.success("d")
        breakers.failure("d")  # a third fail
        clock.now += 0.1
    assert not breakers.is_open("d")


async def test_old_failures_leave_the_window() -> None:
    clock = Clock()
    counter = FailureCounter(100, failure_rate=0.5, window_s=10.0, min_calls=6, clock=clock)
    for _ in range(5):  # fewer calls than min_calls
        assert counter.failed("d") is None
    clock.now += 11  # those five failures are out of the window
    for _ in range(3):
        counter.ok("d")
    assert counter.failed("d") is None  # 1 of 4 (with the old ones it would be 6 of 9)
    assert counter.failed("d") is None  # 2 of 5
    assert counter.failed("d") == "3 of 6 calls failed in 10s"


async def test_answers_from_before_the_breaker_opened_change_nothing() -> None:
    clock = Clock()
    breakers = Breakers(2, 10.0, clock=clock)
    breakers.failure("d")
    breakers.failure("d")
    assert breakers.is_open("d")
    breakers.success("d")  # a call that started earlier answered late: still open
    assert breakers.is_open("d")
    clock.now += 10
    assert await breakers.attempt("d")
    breakers.failure("d")  # stale or not, the probe's failure re-opens it
    clock.now += 5
    breakers.failure("d")  # a late failure does not extend the cooldown
    clock.now += 5
    assert breakers.available("d")


async def test_a_probe_without_a_verdict_is_released() -> None:
    clock = Clock()
    breakers = Breakers(1, 10.0, clock=clock)
    breakers.failure("d")
    clock.now += 10
    assert await breakers.attempt("d")
    assert not breakers.available("d")
    breakers.release("d")  # e.g. the client went away mid-probe
    assert breakers.available("d")
    assert await breakers.attempt("d")


async def test_late_successes_of_older_calls_do_not_end_a_run_of_failures() -> None:
    clock = Clock()
    breakers = Breakers(3, 10.0, clock=clock)
    before = clock()  # calls in flight when the deployment died
    clock.now += 1
    for _ in range(2):
        breakers.failure("d", clock())  # new calls fail...
        breakers.success("d", before)  # ...while older ones still come back fine
    breakers.failure("d", clock())
    assert breakers.is_open("d")
    breakers = Breakers(3, 10.0, clock=clock)
    breakers.failure("d", clock())
    breakers.failure("d", clock())
    clock.now += 1
    breakers.success("d", clock())  # a call started after the failures: it is up
    breakers.failure("d", clock())
    assert not breakers.is_open("d")
