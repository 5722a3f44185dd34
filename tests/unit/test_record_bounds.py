"""A spend row always fits its columns, whatever a provider reports."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from nemorouter.core.auth import Caller
from nemorouter.core.record import MAX_INT16, MAX_INT32, CallRecord
from nemorouter.types.money import to_pico


def test_counts_beyond_the_columns_are_bounded_money_kept_exact(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = CallRecord(Caller(), "req_1")
    record.usage({"prompt_tokens": 10**13, "completion_tokens": 2**31, "prompt_tokens_details": {"cached_tokens": 10**20}})  # fmt: skip
    record.cost = Decimal(10**13) * Decimal("1.25") / 10**6  # 10^13 tokens at $1.25/Mtok
    record.saved = Decimal("1e12")
    record.attempts = record.fallbacks = 10**6
    record.error_code = "x" * 100
    with caplog.at_level(logging.WARNING, "nemorouter.record"):
        row = record.row()
    assert row["prompt_tokens"] == row["completion_tokens"] == row["cached_tokens"] == MAX_INT32
    # Money is never clamped: the store refuses it and dead-letters the exact row.
    assert row["cost_pico"] == to_pico(record.cost) > 2**63
    assert row["saved_pico"] == to_pico(record.saved)
    assert row["attempts"] == row["fallbacks"] == MAX_INT16
    assert len(row["error_code"]) == 64
    assert "does not fit the spend row" in caplog.text


def test_ordinary_values_are_kept_exactly() -> None:
    record = CallRecord(Caller(), "req_2")
    record.usage({"prompt_tokens": 1200, "completion_tokens": 80})
    record.cost = Decimal("0.000123456789012")
    row = record.row()
    assert (row["prompt_tokens"], row["completion_tokens"]) == (1200, 80)
    assert row["cost_pico"] == 123_456_789  # 0.000123456789012 USD, to the picodollar
