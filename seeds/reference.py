"""Seed steps for the reference data: partners, dinas, categories and holidays.

Each step adds only what is missing (by code, or for holidays by year) and never
touches a row that exists: administrators own the data once it is loaded, and a
later run must not undo their edits. Dinas, categories and holidays go through
the admin API's domain functions, so the seed files obey the same rules.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.reference.categories import DEFAULT_DUPLICATE_RADIUS_M, create_category
from domain.reference.dinas import create_dinas
from domain.reference.holidays import add_holiday, ensure_national_holidays, holiday_years
from models import Category, Dinas, Partner

DATA_DIR = Path(__file__).resolve().parent / "data"
PARTNERS_FILE = DATA_DIR / "partners.csv"
DINAS_FILE = DATA_DIR / "dinas.csv"
CATEGORIES_FILE = DATA_DIR / "categories.csv"
HOLIDAYS_FILE = DATA_DIR / "holidays.csv"


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {key: value.strip() for key, value in row.items()} for row in csv.DictReader(handle)
        ]


def _flag(value: str) -> bool:
    if value not in ("true", "false"):
        raise ValueError(f"expected true or false, got {value!r}")
    return value == "true"


@dataclass(frozen=True)
class CreatedOutcome:
    created: int
    already_present: int

    noun: ClassVar[str]

    @property
    def step(self) -> str:
        return self.noun

    def describe(self) -> str:
        return f"created {self.created}, {self.already_present} already present"


class PartnersOutcome(CreatedOutcome):
    noun = "partners"


class DinasOutcome(CreatedOutcome):
    noun = "dinas"


class CategoriesOutcome(CreatedOutcome):
    noun = "categories"


@dataclass(frozen=True)
class HolidaysOutcome:
    created: int
    years_created: tuple[int, ...]
    years_kept: tuple[int, ...]

    @property
    def step(self) -> str:
        return "holidays"

    def describe(self) -> str:
        text = f"created {self.created}"
        if self.years_created:
            text += f" for {', '.join(map(str, self.years_created))}"
        if self.years_kept:
            kept = ", ".join(map(str, self.years_kept))
            text += f"; {kept} already in the calendar, left as they are"
        return text


async def seed_partners(*, session: AsyncSession) -> PartnersOutcome:
    rows = read_rows(PARTNERS_FILE)
    existing = set((await session.scalars(select(Partner.code))).all())
    missing = [row for row in rows if row["code"] not in existing]
    for row in missing:
        session.add(Partner(code=row["code"], name=row["name"], is_active=True))
    await session.flush()
    return PartnersOutcome(created=len(missing), already_present=len(rows) - len(missing))


async def seed_dinas(*, session: AsyncSession) -> DinasOutcome:
    rows = read_rows(DINAS_FILE)
    existing = set((await session.scalars(select(Dinas.code))).all())
    missing = [row for row in rows if row["code"] not in existing]
    for row in missing:
        await create_dinas(
            session=session,
            code=row["code"],
            name=row["name"],
            short_name=row["short_name"],
            is_kelurahan_office=_flag(row["is_kelurahan_office"]),
        )
    return DinasOutcome(created=len(missing), already_present=len(rows) - len(missing))


async def seed_categories(*, session: AsyncSession) -> CategoriesOutcome:
    rows = read_rows(CATEGORIES_FILE)
    existing = set((await session.scalars(select(Category.code))).all())
    missing = [row for row in rows if row["code"] not in existing]
    # Groups first: a category names its group by code.
    missing.sort(key=lambda row: row["parent_code"] != "")
    for row in missing:
        radius = row["duplicate_radius_m"]
        await create_category(
            session=session,
            code=row["code"],
            name=row["name"],
            accepted_kinds=row["accepted_kinds"].split("|"),
            parent_code=row["parent_code"] or None,
            default_dinas_code=row["default_dinas_code"] or None,
            service_level_days=int(row["service_level_days"])
            if row["service_level_days"]
            else None,
            duplicate_radius_m=int(radius) if radius else DEFAULT_DUPLICATE_RADIUS_M,
        )
    return CategoriesOutcome(created=len(missing), already_present=len(rows) - len(missing))


async def seed_holidays(*, session: AsyncSession) -> HolidaysOutcome:
    """Whole years at a time: a year that already has holidays belongs to the
    administrators (they may have moved or removed a day on purpose), so the seed
    adds nothing to it."""
    rows = [(date.fromisoformat(row["date"]), row["name"]) for row in read_rows(HOLIDAYS_FILE)]
    present = await holiday_years(session=session)
    seed_years = sorted({day.year for day, _ in rows})
    created = 0
    for day, name in rows:
        if day.year not in present:
            await add_holiday(session=session, day=day, name=name)
            created += 1
    return HolidaysOutcome(
        created=created,
        years_created=tuple(y for y in seed_years if y not in present),
        years_kept=tuple(y for y in seed_years if y in present),
    )


@dataclass(frozen=True)
class NationalHolidaysOutcome:
    years_filled: tuple[int, ...]

    @property
    def step(self) -> str:
        return "national holidays"

    def describe(self) -> str:
        if not self.years_filled:
            return "every year around today already has its holidays"
        return "filled " + ", ".join(map(str, self.years_filled)) + " from the national calendar"


# The years around today that must have holidays: due dates run up to a year ahead.
NATIONAL_YEARS_BACK, NATIONAL_YEARS_AHEAD = 1, 2


async def seed_national_holidays(*, session: AsyncSession) -> NationalHolidaysOutcome:
    """Years around today with no holidays yet (after the SKB dates of
    holidays.csv) come from the national calendar."""
    this_year = date.today().year
    years = range(this_year - NATIONAL_YEARS_BACK, this_year + NATIONAL_YEARS_AHEAD + 1)
    filled = await ensure_national_holidays(session=session, years=years)
    return NationalHolidaysOutcome(years_filled=tuple(filled))


# In order: categories name their dinas. The seed loader runs these after the
# boundaries; tests that need only the reference data can run them alone.
REFERENCE_STEPS = (
    seed_partners,
    seed_dinas,
    seed_categories,
    seed_holidays,
    seed_national_holidays,
)
