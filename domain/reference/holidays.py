"""Holidays: the days off that service levels skip.

Indonesia's national holidays come from the `holidays` package's calendar (in
Indonesian) for a year that has no holidays yet; from then on the year belongs
to the city's administrators, who add their own days (cuti bersama, local days,
the SKB's dates where the calendar estimated) and remove days: the calendar
never touches a year that has any. A year with no holidays at all is refused
by intake rather than read as a year without any (`HolidayCalendarMissing`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import holidays
from sqlalchemy import extract, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.reference.fields import NAME_MAX, Problems, checked_text, refuse
from models import Holiday


async def list_holidays(*, session: AsyncSession, year: int | None = None) -> Sequence[Holiday]:
    query = select(Holiday).order_by(Holiday.day)
    if year is not None:
        query = query.where(extract("year", Holiday.day) == year)
    return (await session.scalars(query)).all()


async def holiday_years(*, session: AsyncSession) -> set[int]:
    years = await session.scalars(select(func.distinct(extract("year", Holiday.day))))
    return {int(year) for year in years}


def national_holidays(year: int) -> dict[date, str]:
    """Indonesia's national holidays of a year, named in Indonesian (Islamic and
    Chinese dates far ahead are the calendar's estimates, marked "perkiraan")."""
    calendar = holidays.country_holidays("ID", years=year, language="id")
    return {day: str(name) for day, name in sorted(calendar.items())}


async def ensure_national_holidays(*, session: AsyncSession, years: Iterable[int]) -> list[int]:
    """Fills each of these years that has no holidays at all from the national
    calendar; returns the years filled. Idempotent, and safe when several
    processes fill the same year at once (the first one's days stay)."""
    present = await holiday_years(session=session)
    filled = sorted(set(years) - present)
    rows = [
        {"day": day, "name": name, "source": "national"}
        for year in filled
        for day, name in national_holidays(year).items()
    ]
    if rows:
        await session.execute(insert(Holiday).values(rows).on_conflict_do_nothing())
    return filled


async def add_holiday(*, session: AsyncSession, day: date, name: str) -> Holiday:
    """A day off for the service levels: a cuti bersama or local day."""
    problems = Problems()
    name = checked_text(name, field="name", max_length=NAME_MAX, problems=problems)
    existing = await session.get(Holiday, day)
    if existing is not None:
        problems.add("date", f"{day.isoformat()} is already a holiday: {existing.name}")
    problems.raise_if_any()

    holiday = Holiday(day=day, name=name, source="city")
    session.add(holiday)
    await session.flush()
    return holiday


async def remove_holiday(*, session: AsyncSession, day: date) -> Holiday:
    """Returns the removed holiday. Service levels already computed keep their due dates."""
    holiday = await session.get(Holiday, day)
    if holiday is None:
        raise refuse("date", f"{day.isoformat()} is not a holiday")
    await session.delete(holiday)
    await session.flush()
    return holiday
