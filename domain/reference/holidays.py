"""Holidays: the days off that service levels skip."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import extract, func, select
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


async def add_holiday(*, session: AsyncSession, day: date, name: str) -> Holiday:
    """A day off for the service levels: a national holiday or a cuti bersama day."""
    problems = Problems()
    name = checked_text(name, field="name", max_length=NAME_MAX, problems=problems)
    existing = await session.get(Holiday, day)
    if existing is not None:
        problems.add("date", f"{day.isoformat()} is already a holiday: {existing.name}")
    problems.raise_if_any()

    holiday = Holiday(day=day, name=name)
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
