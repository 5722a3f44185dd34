"""Money: exact decimal USD in the API, integer picodollars (1e-12 USD) at rest.

A call's cost is quantized to the picodollar once, when it is computed, so the header a
client sums and the row the store sums are the same number to the last digit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

PICO = Decimal("1e-12")
MILLION_TOKENS = Decimal(1_000_000)  # prices are per million tokens


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(PICO, rounding=ROUND_HALF_EVEN)


def to_pico(amount: Decimal) -> int:
    return int(quantize(amount).scaleb(12))


def from_pico(pico: int | None) -> Decimal:
    return Decimal(pico or 0).scaleb(-12)


def usd(amount: Decimal) -> str:
    """A decimal string in plain notation (no exponent, no trailing zeros)."""
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def pico_usd(pico: int | None) -> str:
    return usd(from_pico(pico))


def per_request(pico: int, requests: int) -> str:
    """Average cost, rounded half-even to the picodollar."""
    if requests <= 0:
        return "0"
    return usd(quantize(from_pico(pico) / requests))


__all__ = [
    "MILLION_TOKENS",
    "PICO",
    "from_pico",
    "per_request",
    "pico_usd",
    "quantize",
    "to_pico",
    "usd",
]
