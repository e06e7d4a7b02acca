"""The shipped boundary seed: the official Kota Bekasi kelurahan, loaded once and
activated only where no set is active."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import shapely
from geoalchemy2 import Geography
from shapely import MultiPolygon, box
from sqlalchemy import cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from geo.areas import AreaInput, BoundarySetInput
from geo.coordinates import LatLon
from geo.importer import ImportPlan
from geo.lookup import Located, locate_point
from geo.store import activate_boundary_set, active_boundary_set_id, write_boundary_set
from models import Base, BoundarySet, Kecamatan, Kelurahan
from seeds.loader import KECAMATAN_FILE, KELURAHAN_FILE, load_seeds, plan_seed_boundaries

# Kelurahan per kecamatan in the Kemendagri list; the numbers within a
# kecamatan have gaps, so only the counts and the codes themselves are checked.
KELURAHAN_PER_KECAMATAN = {
    "32.75.01": 4,
    "32.75.02": 5,
    "32.75.03": 6,
    "32.75.04": 5,
    "32.75.05": 4,
    "32.75.06": 4,
    "32.75.07": 4,
    "32.75.08": 5,
    "32.75.09": 6,
    "32.75.10": 5,
    "32.75.11": 4,
    "32.75.12": 4,
}
BANTARGEBANG_KELURAHAN = ["32.75.07.1003", "32.75.07.1004", "32.75.07.1007", "32.75.07.1008"]
# Official area of Kota Bekasi (BIG, 2024); the union of the simplified
# kelurahan is 0.02 % larger.
CITY_AREA_KM2 = 213.036
# Bounding box of the kelurahan file (min lon, min lat, max lon, max lat).
CITY_BOUNDS = (106.897783, -6.398524, 107.042390, -6.172188)
# Degrees squared; about 1 m² at Bekasi's latitude.
AREA_TOLERANCE = 1e-10


@pytest.fixture(scope="module")
def plan() -> ImportPlan:
    return plan_seed_boundaries()


@pytest.fixture(scope="module")
def seed(plan: ImportPlan) -> BoundarySetInput:
    assert plan.ok, plan.summary()
    assert plan.boundary_set is not None
    return plan.boundary_set


def test_shipped_files_are_the_shared_data(shared_data_dir: Path) -> None:
    if shared_data_dir.resolve() == KELURAHAN_FILE.parent.resolve():
        pytest.skip("no shared Bekasi data to compare with: the tests use the shipped copy")
    for shipped in (KELURAHAN_FILE, KECAMATAN_FILE):
        assert shipped.read_bytes() == (shared_data_dir / shipped.name).read_bytes(), shipped.name


def test_the_importer_takes_the_files_as_they_are(plan: ImportPlan) -> None:
    assert plan.ok, plan.summary()
    assert plan.repairs == []


def test_counts_and_codes(seed: BoundarySetInput) -> None:
    kelurahan = [area.code for area in seed.kelurahan]
    assert len(kelurahan) == len(set(kelurahan)) == 56
    assert [area.code for area in seed.kecamatan] == sorted(KELURAHAN_PER_KECAMATAN)
    assert Counter(area.parent_code for area in seed.kelurahan) == KELURAHAN_PER_KECAMATAN
    for area in seed.kelurahan:
        assert area.code.startswith(f"{area.parent_code}."), area.code
    assert [code for code in kelurahan if code.startswith("32.75.07.")] == BANTARGEBANG_KELURAHAN


def test_kecamatan_names_agree_between_the_files(seed: BoundarySetInput) -> None:
    features = json.loads(KELURAHAN_FILE.read_text(encoding="utf-8"))["features"]
    named = {(f["properties"]["kecamatan_code"], f["properties"]["kecamatan"]) for f in features}
    assert {(area.code, area.name) for area in seed.kecamatan} == named


def test_geometries_are_valid_multipolygons(seed: BoundarySetInput) -> None:
    for area in [*seed.kecamatan, *seed.kelurahan]:
        assert isinstance(area.geometry, MultiPolygon), area.code
        assert area.geometry.is_valid, area.code
        assert not area.geometry.is_empty, area.code


def test_kecamatan_are_the_union_of_their_kelurahan(seed: BoundarySetInput) -> None:
    for kecamatan in seed.kecamatan:
        members = [area.geometry for area in seed.kelurahan if area.parent_code == kecamatan.code]
        difference = shapely.union_all(members).symmetric_difference(kecamatan.geometry)
        assert difference.area < AREA_TOLERANCE, kecamatan.code


def test_the_set_names_its_source_and_is_not_approximate(seed: BoundarySetInput) -> None:
    assert not seed.is_approximate
    assert "github.com/cahyadsn/wilayah_boundaries" in seed.source
    assert "3c5a7960f4d227a38489094d84252bdbb3f978a5" in seed.source
    assert "simplified" in seed.accuracy_note
    assert "11 m" in seed.accuracy_note
    assert plan_seed_boundaries().boundary_set == seed


def _square_set() -> BoundarySetInput:
    square = MultiPolygon([box(106.99, -6.26, 107.0, -6.25)])
    return BoundarySetInput(
        source="test: one square",
        accuracy_note="test only",
        is_approximate=False,
        kecamatan=[AreaInput(code="32.75.99", name="Kotak", geometry=square)],
        kelurahan=[
            AreaInput(code="32.75.99.1001", name="Kotak", geometry=square, parent_code="32.75.99")
        ],
    )


async def _count(session: AsyncSession, model: type[Base]) -> int:
    count = await session.scalar(select(func.count()).select_from(model))
    assert count is not None
    return count


async def _without_an_active_set(session: AsyncSession) -> None:
    # Other tests may have committed an active set; this test's transaction hides it.
    await session.execute(update(BoundarySet).values(is_active=False))


async def test_load_seeds_twice_creates_once(session: AsyncSession) -> None:
    await _without_an_active_set(session)
    first = await load_seeds(session=session)
    assert first.boundaries.created
    assert first.boundaries.activated
    sets = await _count(session, BoundarySet)
    kelurahan = await _count(session, Kelurahan)
    kecamatan = await _count(session, Kecamatan)

    second = await load_seeds(session=session)
    assert not second.boundaries.created
    assert not second.boundaries.activated
    assert second.boundaries.boundary_set_id == first.boundaries.boundary_set_id
    assert await _count(session, BoundarySet) == sets
    assert await _count(session, Kelurahan) == kelurahan
    assert await _count(session, Kecamatan) == kecamatan
    set_id = first.boundaries.boundary_set_id
    assert second.lines()[:1] == [
        f"boundaries: boundary set {set_id} (official, from seeds/data) already present and active"
    ]

    row = (
        await session.execute(
            select(
                BoundarySet.is_approximate,
                BoundarySet.is_active,
                BoundarySet.kecamatan_count,
                BoundarySet.kelurahan_count,
            ).where(BoundarySet.id == set_id)
        )
    ).one()
    assert tuple(row) == (False, True, 12, 56)


async def test_load_seeds_never_replaces_an_active_set(session: AsyncSession) -> None:
    other_id = await write_boundary_set(session=session, boundary_set=_square_set())
    await activate_boundary_set(session=session, boundary_set_id=other_id)

    for _ in range(2):
        result = await load_seeds(session=session)
        assert not result.boundaries.activated
        assert result.boundaries.active_boundary_set_id == other_id
        assert await active_boundary_set_id(session=session) == other_id

    seed_active = await session.scalar(
        select(BoundarySet.is_active).where(BoundarySet.id == result.boundaries.boundary_set_id)
    )
    assert seed_active is False


async def test_load_seeds_activates_a_present_seed_when_none_is_active(
    session: AsyncSession,
) -> None:
    first = await load_seeds(session=session)
    await _without_an_active_set(session)

    again = await load_seeds(session=session)
    assert not again.boundaries.created
    assert again.boundaries.activated
    assert await active_boundary_set_id(session=session) == first.boundaries.boundary_set_id


async def test_postgis_agrees_the_seed_covers_the_city(session: AsyncSession) -> None:
    await _without_an_active_set(session)
    set_id = (await load_seeds(session=session)).boundaries.boundary_set_id
    in_set = Kelurahan.boundary_set_id == set_id
    city = select(func.ST_Union(Kelurahan.geom)).where(in_set).scalar_subquery()

    city_km2 = await session.scalar(select(func.ST_Area(cast(city, Geography)) / 1e6))
    assert city_km2 == pytest.approx(CITY_AREA_KM2, rel=1e-3)
    bounds = (
        await session.execute(
            select(func.ST_XMin(city), func.ST_YMin(city), func.ST_XMax(city), func.ST_YMax(city))
        )
    ).one()
    assert tuple(bounds) == pytest.approx(CITY_BOUNDS, abs=1e-6)

    # The kecamatan cover the same city, sliver for sliver.
    kecamatan = (
        select(func.ST_Union(Kecamatan.geom))
        .where(Kecamatan.boundary_set_id == set_id)
        .scalar_subquery()
    )
    apart = await session.scalar(select(func.ST_Area(func.ST_SymDifference(city, kecamatan))))
    assert apart is not None
    assert apart < AREA_TOLERANCE


async def test_a_first_run_routes_each_kelurahan_to_itself(
    session: AsyncSession, seed: BoundarySetInput
) -> None:
    await _without_an_active_set(session)
    await load_seeds(session=session)
    wrong: list[str] = []
    for area in seed.kelurahan:
        # Inside this kelurahan only, as the data's own survey of its slivers found.
        inside = area.geometry.representative_point()
        result = await locate_point(
            session=session, point=LatLon(lat=inside.y, lon=inside.x), snap_tolerance_m=50.0
        )
        if not (isinstance(result, Located) and result.kelurahan_code == area.code):
            wrong.append(f"{area.code}: {result}")
        elif result.snapped:
            wrong.append(f"{area.code} was snapped")
    assert wrong == []
