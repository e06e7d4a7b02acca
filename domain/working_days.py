"""Working-day arithmetic for service levels, in Jakarta time (WIB).

Saturdays, Sundays and the given public holidays are not working days. The
holiday calendar is data: callers load it and pass it in as a set of dates.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

JAKARTA = ZoneInfo("Asia/Jakarta")

_SECONDS_PER_DAY = 24 * 60 * 60


def is_working_day(day: date, holidays: Collection[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_working_days(start: date, days: int, holidays: Collection[date]) -> date:
    """The date of the `days`-th working day after `start` (`start` itself never counts)."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    day = start
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day, holidays):
            remaining -= 1
    return day


def due_at(created_at: datetime, service_level_days: int, holidays: Collection[date]) -> datetime:
    """When a report must be finished, as an aware UTC datetime.

    The rule, as told to a citizen: "selesai paling lambat hari kerja ke-N
    setelah laporan masuk". A report received at any moment of local day D
    (Jakarta time) is due at the end of the N-th working day after D, that is
    at 00:00 WIB of the calendar day that follows it. Day D itself never
    counts, whether it is a working day or not and whatever the hour: a report
    received on Friday at 08:00 or at 23:59, or on Saturday, with N = 1, is due
    at the end of Monday (Tuesday 00:00 WIB) when Monday is a working day.
    """
    _require_aware(created_at, "created_at")
    received_on = created_at.astimezone(JAKARTA).date()
    last_day = add_working_days(received_on, service_level_days, holidays)
    return _local_midnight(last_day + timedelta(days=1)).astimezone(UTC)


def working_days_between(start: datetime, end: datetime, holidays: Collection[date]) -> float:
    """Time elapsed from `start` to `end`, in working days, counting working days only.

    Each working day of the Jakarta calendar counts for its whole 24 hours,
    00:00 to 24:00 WIB; weekends and holidays count for nothing. So from Friday
    12:00 to Monday 12:00 is exactly 1.0: half of Friday and half of Monday.
    """
    return _working_seconds(start, end, holidays) / _SECONDS_PER_DAY


def working_hours_between(start: datetime, end: datetime, holidays: Collection[date]) -> float:
    """Like `working_days_between`, in hours: every working day counts for 24."""
    return _working_seconds(start, end, holidays) / 3600


def _working_seconds(start: datetime, end: datetime, holidays: Collection[date]) -> float:
    _require_aware(start, "start")
    _require_aware(end, "end")
    if end < start:
        raise ValueError(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    total = 0.0
    day = start.astimezone(JAKARTA).date()
    last = end.astimezone(JAKARTA).date()
    while day <= last:
        if is_working_day(day, holidays):
            day_start = _local_midnight(day).astimezone(UTC)
            day_end = _local_midnight(day + timedelta(days=1)).astimezone(UTC)
            overlap = min(end_utc, day_end) - max(start_utc, day_start)
            total += overlap.total_seconds()
        day += timedelta(days=1)
    return total


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=JAKARTA)


def _require_aware(moment: datetime, name: str) -> None:
    # A naive datetime could be UTC or WIB: seven hours that move a due date.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
