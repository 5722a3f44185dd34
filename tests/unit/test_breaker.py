"""Circuit breaker state transitions, on a fake clock."""

from __future__ import annotations

from nemorouter.core.breaker import Breakers


def test_transitions() -> None:
    now = [100.0]
    breakers = Breakers(3, 10.0, clock=lambda: now[0])
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
    now[0] += 9.9
    assert not breakers.available("d")
    now[0] += 0.2  # half-open: exactly one probe
    assert breakers.available("d")
    breakers.attempt("d")
    assert not breakers.available("d")
    breakers.failure("d")  # the probe failed: open again, for a new cooldown
    assert not breakers.available("d")
    now[0] += 10.1
    breakers.attempt("d")
    breakers.success("d")  # the probe succeeded: closed
    assert breakers.available("d")
    assert not breakers.is_open("d")
    assert breakers.available("other")
