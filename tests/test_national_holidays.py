"""Holidays from Indonesia's national calendar for any year, merged with the
city's own: a year that has holidays belongs to the administrators, a year with
none is filled from the calendar, and a year nobody filled is refused loudly."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import delete, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.reference.holidays import ensure_national_holidays, national_holidays
from models import Case, Holiday
from tests.factories import SUBMIT, report_input

pytestmark = pytest.mark.usefixtures("reference_data")


def test_the_national_calendar_knows_any_year_in_indonesian() -> None:
    for year in (2026, 2028, 2035):
        days = national_holidays(year)
        assert date(year, 8, 17) in days and date(year, 1, 1) in days
        assert days[date(year, 8, 17)] == "Hari Kemerdekaan Republik Indonesia"
        assert len(days) >= 12


async def _year(session: AsyncSession, year: int) -> list[Holiday]:
    return list(
        await session.scalars(
            select(Holiday).where(extract("year", Holiday.day) == year).order_by(Holiday.day)
        )
    )


async def test_an_empty_year_is_filled_once_and_a_curated_one_is_left_alone(
    session: AsyncSession,
) -> None:
    curated = await _year(session, 2026)
    assert curated and {h.source for h in curated} == {"city"}  # the SKB dates of the seed

    assert await ensure_national_holidays(session=session, years=[2026, 2031]) == [2031]
    filled = await _year(session, 2031)
    assert {(h.day, h.name) for h in filled} == set(national_holidays(2031).items())
    assert {h.source for h in filled} == {"national"}
    assert await _year(session, 2026) == curated
    # Again: nothing more.
    assert await ensure_national_holidays(session=session, years=[2026, 2031]) == []
    assert len(await _year(session, 2031)) == len(filled)


async def test_the_years_around_today_have_holidays_after_seeding(graphql: Any) -> None:
    next_year = date.today().year + 1
    body = await graphql(
        "query($y: Int) { holidays(year: $y) { date name source } }", {"y": next_year}
    )
    assert "errors" not in body, body
    days = body["data"]["holidays"]
    assert any(d["date"] == f"{next_year}-08-17" for d in days), days
    assert {d["source"] for d in days} <= {"NATIONAL", "CITY"}


async def test_the_sweeper_fills_the_coming_year(app: Any, session: AsyncSession) -> None:
    await session.execute(delete(Holiday).where(extract("year", Holiday.day) == 2030))
    await app.state.sweeper.sweep_once(now=datetime(2029, 12, 31, 12, tzinfo=UTC))
    assert {h.day for h in await _year(session, 2030)} == set(national_holidays(2030))


async def test_a_year_without_holidays_is_refused_loudly(
    graphql: Any, session: AsyncSession
) -> None:
    this_year = datetime.now(UTC).year
    await session.execute(delete(Holiday).where(extract("year", Holiday.day) == this_year))
    before = await session.scalar(select(func.count()).select_from(Case))
    body = await graphql(SUBMIT, {"input": report_input()}, as_="partner:POT")
    assert body["errors"][0]["extensions"]["code"] == "HOLIDAY_CALENDAR_MISSING", body
    assert str(this_year) in body["errors"][0]["message"]
    assert await session.scalar(select(func.count()).select_from(Case)) == before
