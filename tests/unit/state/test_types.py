"""Header formatting: OpenAI's Go-style durations and the retry-after of a refusal."""

from __future__ import annotations

import pytest

from nemorouter.batch.pacing import parse_duration
from nemorouter.state import NEVER, Decision, WindowUsage, format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (-1.0, "0s"),
        (0.02, "20ms"),
        (0.0004, "1ms"),  # rounded up: a client waiting that long is never early
        (0.999, "999ms"),
        (1.0, "1s"),
        (8.64, "8.64s"),
        (36.0, "36s"),
        (59.9991, "1m0s"),
        (60.0, "1m0s"),
        (90.5, "1m30.5s"),
        (360.0, "6m0s"),
        (3600.0, "1h0m0s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.001, 0.5, 1.25, 36.0, 59.999, 60.0, 90.5])
def test_the_batch_client_reads_it_back(seconds: float) -> None:
    parsed = parse_duration(format_duration(seconds))
    assert parsed == pytest.approx(seconds, abs=0.001)


def test_retry_after_header_rounds_up() -> None:
    usage = WindowUsage(10, 0, 0.2)
    assert Decision(False, 0.2, requests=usage).headers()["retry-after"] == "1"
    assert Decision(False, 36.001).headers()["retry-after"] == "37"
    assert "retry-after" not in Decision(False, NEVER).headers()
    assert "retry-after" not in Decision(True).headers()
