from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain.working_days import (
    JAKARTA,
    add_working_days,
    due_at,
    is_working_day,
    working_days_between,
    working_hours_between,
)

NO_HOLIDAYS: frozenset[date] = frozenset()
# Idul Fitri 1446 H fell on Monday 31 March 2025.
IDUL_FITRI_2025 = frozenset({date(2025, 3, 31)})


def wib(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=JAKARTA)


def test_weekends_and_holidays_are_not_working_days() -> None:
    assert is_working_day(date(2025, 3, 7), NO_HOLIDAYS)  # Friday
    assert not is_working_day(date(2025, 3, 8), NO_HOLIDAYS)  # Saturday
    assert not is_working_day(date(2025, 3, 9), NO_HOLIDAYS)  # Sunday
    assert not is_working_day(date(2025, 3, 31), IDUL_FITRI_2025)  # Monday, a holiday


def test_add_working_days_never_counts_the_start_day() -> None:
    assert add_working_days(date(2025, 3, 5), 1, NO_HOLIDAYS) == date(2025, 3, 6)
    assert add_working_days(date(2025, 3, 7), 1, NO_HOLIDAYS) == date(2025, 3, 10)
    assert add_working_days(date(2025, 3, 7), 5, NO_HOLIDAYS) == date(2025, 3, 14)


def test_friday_plus_one_is_due_at_the_end_of_monday() -> None:
    due = due_at(wib(2025, 3, 7, 10, 0), 1, NO_HOLIDAYS)

    assert due == wib(2025, 3, 11, 0, 0)
    assert due == datetime(2025, 3, 10, 17, 0, tzinfo=UTC)
    assert due.utcoffset() == timedelta(0)


def test_friday_plus_three_across_a_monday_holiday_is_due_at_the_end_of_thursday() -> None:
    due = due_at(wib(2025, 3, 28, 9, 0), 3, IDUL_FITRI_2025)

    assert due.astimezone(JAKARTA) == wib(2025, 4, 4, 0, 0)  # end of Thursday 3 April


def test_a_report_on_saturday_plus_one_is_due_at_the_end_of_monday() -> None:
    assert due_at(wib(2025, 3, 8, 15, 0), 1, NO_HOLIDAYS) == wib(2025, 3, 11, 0, 0)


def test_the_local_day_counts_not_the_utc_day() -> None:
    # Thursday 18:30 UTC is already Friday 01:30 in Jakarta.
    created = datetime(2025, 3, 6, 18, 30, tzinfo=UTC)

    due = due_at(created, 1, NO_HOLIDAYS)

    assert due == wib(2025, 3, 11, 0, 0)  # end of Monday, not of Friday


def test_any_moment_of_the_day_gives_the_same_due_date() -> None:
    earliest = due_at(wib(2025, 3, 5, 0, 0), 2, NO_HOLIDAYS)
    latest = due_at(wib(2025, 3, 5, 23, 59, 59), 2, NO_HOLIDAYS)

    assert earliest == latest == wib(2025, 3, 8, 0, 0)  # end of Friday


def test_year_end_skips_new_year_day() -> None:
    holidays = frozenset({date(2025, 12, 25), date(2025, 12, 26), date(2026, 1, 1)})

    # Wednesday 31 December + 1: Thursday 1 January is a holiday.
    assert due_at(wib(2025, 12, 31, 20, 0), 1, holidays) == wib(2026, 1, 3, 0, 0)
    # Wednesday 24 December + 3: Christmas, cuti bersama, a weekend, then 29, 30, 31.
    assert due_at(wib(2025, 12, 24, 8, 0), 3, holidays) == wib(2026, 1, 1, 0, 0)


@pytest.mark.parametrize("days", [0, -1])
def test_a_service_level_below_one_day_is_refused(days: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        due_at(wib(2025, 3, 7, 10, 0), days, NO_HOLIDAYS)
    with pytest.raises(ValueError, match="at least 1"):
        add_working_days(date(2025, 3, 7), days, NO_HOLIDAYS)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_at(datetime(2025, 3, 7, 10, 0), 1, NO_HOLIDAYS)
    with pytest.raises(ValueError, match="timezone-aware"):
        working_hours_between(datetime(2025, 3, 7), wib(2025, 3, 8), NO_HOLIDAYS)
    with pytest.raises(ValueError, match="timezone-aware"):
        working_days_between(wib(2025, 3, 7), datetime(2025, 3, 8), NO_HOLIDAYS)


def test_working_hours_across_a_weekend_count_only_friday_and_monday() -> None:
    hours = working_hours_between(wib(2025, 3, 7, 12, 0), wib(2025, 3, 10, 12, 0), NO_HOLIDAYS)
    days = working_days_between(wib(2025, 3, 7, 12, 0), wib(2025, 3, 10, 12, 0), NO_HOLIDAYS)

    assert hours == pytest.approx(24.0)
    assert days == pytest.approx(1.0)


def test_working_time_across_a_weekend_and_a_monday_holiday() -> None:
    # Friday 18:00 to Tuesday 06:00: 6 hours of Friday, 6 of Tuesday.
    start = datetime(2025, 3, 28, 11, 0, tzinfo=UTC)  # 18:00 WIB
    end = datetime(2025, 3, 31, 23, 0, tzinfo=UTC)  # Tuesday 06:00 WIB

    assert working_hours_between(start, end, IDUL_FITRI_2025) == pytest.approx(12.0)
    assert working_days_between(start, end, IDUL_FITRI_2025) == pytest.approx(0.5)
    assert working_hours_between(start, end, NO_HOLIDAYS) == pytest.approx(36.0)


def test_working_time_within_one_day_and_within_a_weekend() -> None:
    assert working_hours_between(
        wib(2025, 3, 10, 9, 0), wib(2025, 3, 10, 17, 30), NO_HOLIDAYS
    ) == pytest.approx(8.5)
    assert working_hours_between(
        wib(2025, 3, 8, 9, 0), wib(2025, 3, 9, 17, 0), NO_HOLIDAYS
    ) == pytest.approx(0.0)
    assert working_hours_between(
        wib(2025, 3, 10, 9, 0), wib(2025, 3, 10, 9, 0), NO_HOLIDAYS
    ) == pytest.approx(0.0)


def test_working_time_with_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before start"):
        working_days_between(wib(2025, 3, 10), wib(2025, 3, 7), NO_HOLIDAYS)
