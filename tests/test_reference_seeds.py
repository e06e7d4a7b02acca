"""The reference seed files, and loading them: once, and never over an admin's edits."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ValidationFailed
from domain.reference.categories import category_by_code, list_categories, update_category
from domain.reference.dinas import dinas_by_code, update_dinas
from domain.reference.holidays import add_holiday, list_holidays, remove_holiday
from models import (
    KELURAHAN_OFFICE_CODE,
    Base,
    Category,
    Dinas,
    Holiday,
    Partner,
    PartnerKey,
    ReportKind,
    RoutingRule,
)
from seeds.loader import StepOutcome, load_seeds
from seeds.reference import (
    CATEGORIES_FILE,
    DINAS_FILE,
    HOLIDAYS_FILE,
    PARTNERS_FILE,
    REFERENCE_STEPS,
    read_rows,
    seed_categories,
    seed_holidays,
)

SEED_YEARS = (2026, 2027)
# Each year's calendar names every one of these (SKB 3 Menteri wording).
HOLIDAY_NAMES = (
    "Tahun Baru",
    "Isra Mikraj",
    "Tahun Baru Imlek",
    "Nyepi",
    "Idul Fitri",
    "Cuti Bersama Idul Fitri",
    "Wafat Yesus Kristus",
    "Hari Buruh",
    "Kenaikan Yesus Kristus",
    "Waisak",
    "Hari Lahir Pancasila",
    "Idul Adha",
    "Tahun Baru Islam",
    "Proklamasi Kemerdekaan",
    "Maulid Nabi",
    "Natal",
)
REQUIRED_CATEGORIES = {
    "JALAN_RUSAK": "DBMSDA",
    "SALURAN_TERSUMBAT": "DBMSDA",
    "BANJIR": "BPBD",
    "SAMPAH": "DLH",
    "PJU_MATI": "DISPERKIMTAN",
    "TAMAN": "DISPERKIMTAN",
    "POHON_TUMBANG": "DISPERKIMTAN",
    "LAMPU_LALU_LINTAS": "DISHUB",
    "PARKIR_LIAR": "DISHUB",
    "KEMACETAN": "DISHUB",
    "PKL": "SATPOLPP",
    "BANGUNAN_LIAR": "SATPOLPP",
    "REKLAME_LIAR": "SATPOLPP",
    "KEBAKARAN": "DAMKAR",
    "DBD": "DINKES",
    "ODGJ_TERLANTAR": "DINSOS",
    "GELANDANGAN": "DINSOS",
    "SEKOLAH": "DISDIK",
    "KTP_KK": "DISDUKCAPIL",
    "AIR_PDAM": "PDAM",
    "PASAR": "DISDAGPERIN",
    "RENCANA_TATA_RUANG": "DISTARU",
    "KEBERSIHAN_LINGKUNGAN": KELURAHAN_OFFICE_CODE,
    "FASILITAS_RT_RW": KELURAHAN_OFFICE_CODE,
}


# The files


def test_dinas_file() -> None:
    rows = read_rows(DINAS_FILE)
    codes = [row["code"] for row in rows]
    assert len(rows) == 16
    assert len(set(codes)) == 16
    assert {row["code"] for row in rows if row["is_kelurahan_office"] == "true"} == {
        KELURAHAN_OFFICE_CODE
    }
    assert all(row["is_kelurahan_office"] in ("true", "false") for row in rows)
    assert all(row["name"] and row["short_name"] for row in rows)
    assert "Tirta Patriot" in next(row["name"] for row in rows if row["code"] == "PDAM")


def test_categories_file() -> None:
    rows = read_rows(CATEGORIES_FILE)
    dinas = {row["code"] for row in read_rows(DINAS_FILE)}
    by_code = {row["code"]: row for row in rows}
    assert len(by_code) == len(rows)
    groups = {row["code"] for row in rows if not row["parent_code"]}
    leaves = [row for row in rows if row["parent_code"]]
    assert len(leaves) >= 25
    kinds = {k.value for k in ReportKind}
    for row in leaves:
        assert row["parent_code"] in groups, row["code"]
        assert row["default_dinas_code"] in dinas, row["code"]
        assert 1 <= int(row["service_level_days"]) <= 10, row["code"]
        assert 1 <= int(row["duplicate_radius_m"]) <= 5000, row["code"]
    for row in rows:
        assert row["accepted_kinds"] and set(row["accepted_kinds"].split("|")) <= kinds
    for group in groups:
        row = by_code[group]
        assert not (row["default_dinas_code"] or row["service_level_days"]), group
        # A group accepts exactly what its categories accept, so filtering by kind
        # never shows an empty group.
        children = {
            k for r in leaves if r["parent_code"] == group for k in r["accepted_kinds"].split("|")
        }
        assert set(row["accepted_kinds"].split("|")) == children, group
    assert {code: by_code[code]["default_dinas_code"] for code in REQUIRED_CATEGORIES} == (
        REQUIRED_CATEGORIES
    )
    assert by_code["RENCANA_TATA_RUANG"]["accepted_kinds"] == "ASPIRASI|INFORMASI"
    for emergency in ("KEBAKARAN", "BANJIR"):
        assert by_code[emergency]["service_level_days"] == "1"
    assert int(by_code["BANJIR"]["duplicate_radius_m"]) > int(
        by_code["SAMPAH"]["duplicate_radius_m"]
    )


def test_holidays_file() -> None:
    rows = read_rows(HOLIDAYS_FILE)
    days = [date.fromisoformat(row["date"]) for row in rows]
    assert days == sorted(set(days))
    assert {day.year for day in days} == set(SEED_YEARS)
    for year in SEED_YEARS:
        names = [row["name"] for row, day in zip(rows, days, strict=True) if day.year == year]
        for wanted in HOLIDAY_NAMES:
            assert any(wanted in name for name in names), (year, wanted)
        for fixed in ((1, 1), (5, 1), (6, 1), (8, 17), (12, 25)):
            assert date(year, *fixed) in days, (year, fixed)


def test_partners_file() -> None:
    assert {row["code"]: row["name"] for row in read_rows(PARTNERS_FILE)} == {
        "POT": "Pelaporan Online Terpadu",
        "SOROT": "Smart Online Reporting and Observation Tools",
    }


# Loading


async def _count(session: AsyncSession, model: type[Base]) -> int:
    count = await session.scalar(select(func.count()).select_from(model))
    assert count is not None
    return count


@pytest.fixture
async def empty(session: AsyncSession) -> None:
    """A database without reference data, whatever other tests committed (the
    `reference_data` fixture seeds once per run); rolled back with the test."""
    await session.execute(delete(RoutingRule))
    await session.execute(delete(PartnerKey))
    await session.execute(delete(Category).where(Category.parent_id.is_not(None)))
    for model in (Category, Dinas, Holiday, Partner):
        await session.execute(delete(model))


async def _seed_reference(session: AsyncSession) -> list[str]:
    outcomes: list[StepOutcome] = [await step(session=session) for step in REFERENCE_STEPS]
    return [f"{o.step}: {o.describe()}" for o in outcomes]


@pytest.mark.usefixtures("empty")
async def test_load_seeds_loads_the_reference_data(session: AsyncSession) -> None:
    result = await load_seeds(session=session)
    categories = len(read_rows(CATEGORIES_FILE))
    holidays = len(read_rows(HOLIDAYS_FILE))
    assert (result.partners.created, result.dinas.created) == (2, 16)
    assert (result.categories.created, result.holidays.created) == (categories, holidays)
    assert result.holidays.years_created == SEED_YEARS
    assert [line.split(":")[0] for line in result.lines()] == [
        "boundaries",
        "partners",
        "dinas",
        "categories",
        "holidays",
        "national holidays",
    ]

    assert await _count(session, Dinas) == 16
    assert await _count(session, Partner) == 2
    office = await dinas_by_code(session=session, code=KELURAHAN_OFFICE_CODE)
    assert office is not None and office.is_kelurahan_office and office.is_active

    leaves = await list_categories(session=session)
    assert len(leaves) >= 25
    for leaf in leaves:
        assert leaf.parent_id is not None
        assert leaf.default_dinas_id is not None, leaf.code
        assert leaf.service_level_days and leaf.service_level_days > 0, leaf.code
    everything = await list_categories(session=session, include_groups=True)
    assert len(everything) == categories

    years = Counter(h.day.year for h in await list_holidays(session=session))
    # The SKB dates of the seed, and the national calendar for the other years
    # around today.
    around_today = set(range(date.today().year - 1, date.today().year + 3))
    assert set(years) == set(SEED_YEARS) | around_today
    assert all(years[year] >= 17 for year in SEED_YEARS)
    assert all(years[year] >= 12 for year in around_today)


@pytest.mark.usefixtures("empty")
async def test_a_second_run_creates_nothing_and_keeps_admin_edits(session: AsyncSession) -> None:
    await _seed_reference(session)
    counts = [await _count(session, model) for model in (Partner, Dinas, Category, Holiday)]

    # An administrator's edits since the first run.
    await update_dinas(session=session, code="DLH", name="Dinas Lingkungan Hidup Kota")
    await update_category(
        session=session, code="SAMPAH", service_level_days=2, duplicate_radius_m=80
    )
    await update_category(session=session, code="PEMAKAMAN", is_active=False)
    nyepi = date(2027, 3, 8)
    await remove_holiday(session=session, day=nyepi)

    lines = await _seed_reference(session)
    assert lines == [
        "partners: created 0, 2 already present",
        "dinas: created 0, 16 already present",
        f"categories: created 0, {counts[2]} already present",
        "holidays: created 0; 2026, 2027 already in the calendar, left as they are",
        "national holidays: every year around today already has its holidays",
    ]
    assert [await _count(session, model) for model in (Partner, Dinas, Category)] == counts[:3]
    assert await _count(session, Holiday) == counts[3] - 1

    dlh = await dinas_by_code(session=session, code="DLH")
    assert dlh is not None and dlh.name == "Dinas Lingkungan Hidup Kota"
    sampah = await category_by_code(session=session, code="SAMPAH")
    assert sampah is not None
    assert (sampah.service_level_days, sampah.duplicate_radius_m) == (2, 80)
    pemakaman = await category_by_code(session=session, code="PEMAKAMAN")
    assert pemakaman is not None and not pemakaman.is_active
    assert await session.get(Holiday, nyepi) is None


@pytest.mark.usefixtures("empty")
async def test_holidays_are_seeded_a_year_at_a_time(session: AsyncSession) -> None:
    # 2027 already has a holiday an administrator entered: the year is theirs.
    await add_holiday(session=session, day=date(2027, 1, 1), name="Tahun Baru")
    outcome = await seed_holidays(session=session)
    assert outcome.years_created == (2026,)
    assert outcome.years_kept == (2027,)
    assert outcome.created == sum(1 for r in read_rows(HOLIDAYS_FILE) if r["date"] < "2027")
    assert [h.name for h in await list_holidays(session=session, year=2027)] == ["Tahun Baru"]


@pytest.mark.usefixtures("empty")
async def test_categories_without_their_dinas_fail_loudly(session: AsyncSession) -> None:
    # The seed goes through the admin rules: nothing half-routed is ever stored.
    with pytest.raises(ValidationFailed) as error:
        await seed_categories(session=session)
    assert {p.field for p in error.value.problems} == {"defaultDinasCode"}
