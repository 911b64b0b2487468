"""Conversions between the clock's integer milliseconds and what people and JSON see."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

__all__ = ["from_dt", "local_date", "month_of", "to_dt"]


def to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def from_dt(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def local_date(ms: int, zone: ZoneInfo) -> date:
    """The calendar day at `ms` in the node's time zone (what "due today" means)."""
    return datetime.fromtimestamp(ms / 1000, zone).date()


def month_of(ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m")
