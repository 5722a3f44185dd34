"""Money: exact decimal USD in the API, integer picodollars (1e-12 USD) at rest.

A call's cost is quantized to the picodollar once, when it is computed, so the header a
client sums and the row the store sums are the same number to the last digit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

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
    return average(from_pico(pico), requests)


CENTS_FROM = Decimal("0.1")  # shown in cents from $0.10 up; below, significant digits
SIGNIFICANT = 3


def display_usd(amount: Decimal | str) -> str:
    """The one human money format (CLI, and the dashboard's format.js `Fmt.money`):
    `$1,234.57` from $0.10 up; below, three significant digits with trailing zeros dropped
    (`$0.0123`, `$0.0012`, `$0.000000123`), down to the picodollar, so an amount that is not
    zero never shows as $0.00. Half-up (ties away from zero); the exact figure is in the JSON."""
    value = quantize(Decimal(amount))
    size = abs(value)
    decimals = 2
    if 0 < size < CENTS_FROM:
        decimals = min(12, max(2, SIGNIFICANT - 1 - size.adjusted()))
        if size.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP) >= CENTS_FROM:
            decimals = 2  # 0.09996 rounds to 0.1000: shown as $0.10
    shown = size.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    text = f"{shown:,.{decimals}f}"
    if decimals > 2:
        text = text.rstrip("0")
    return f"{'-' if value < 0 else ''}${text}"


def average(total: Decimal, count: int) -> str:
    """An exact average (per page, per request) as JSON carries it: half-even to the
    picodollar, plain notation."""
    return "0" if count <= 0 else usd(quantize(total / count))


__all__ = [
    "MILLION_TOKENS",
    "PICO",
    "average",
    "display_usd",
    "from_pico",
    "per_request",
    "pico_usd",
    "quantize",
    "to_pico",
    "usd",
]
