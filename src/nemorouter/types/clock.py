"""The gateway's clock: naive UTC datetimes (as stored) and budget-period boundaries."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def period_start(period: str | None, now: datetime) -> datetime | None:
    """Start of the current budget period (UTC); None for a lifetime budget."""
    if period == "daily":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "monthly":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return None
