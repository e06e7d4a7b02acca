from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import shapely
from geoalchemy2 import Geography
from geoalchemy2.shape import from_shape
from shapely import MultiPolygon, Point, Polygon, box
from sqlalchemy import cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from geo.areas import AreaInput, BoundarySetInput
from geo.store import activate_boundary_set, active_boundary_set_id, write_boundary_set
from models import Base, BoundarySet, Kelurahan
from seeds.approximate import (
    OUTLINE_FILE,
    POINTS_FILE,
    build_approximate_boundaries,
    read_city_outline,
    read_kelurahan_facts,
)
from seeds.loader import load_seeds

# Degrees squared; about 1 m² at Bekasi's latitude.
AREA_TOLERANCE = 1e-10


@pytest.fixture(scope="module")
def seed() -> BoundarySetInput:
    return build_approximate_boundaries()


@pytest.fixture(scope="module")
def outline() -> Polygon:
    return read_city_outline()


def _csv_rows() -> list[dict[str, str]]:
    with POINTS_FILE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_shipped_facts_match_the_shared_data(shared_data_dir: Path) -> None:
    facts = shared_data_dir / "facts"
    assert POINTS_FILE.read_bytes() == (facts / "kelurahan_points.csv").read_bytes()
    assert OUTLINE_FILE.read_bytes() == (facts / "city_outline.geojson").read_bytes()
    assert json.loads(OUTLINE_FILE.read_text())["properties"]["code"] == "32.75"


def test_counts_and_codes_follow_the_facts(seed: BoundarySetInput) -> None:
    rows = _csv_rows()
    assert len(seed.kelurahan) == 56
    assert len(seed.kecamatan) == 12
    assert [area.code for area in seed.kelurahan] == [row["code"] for row in rows]
    assert [area.name for area in seed.kelurahan] == [row["name"] for row in rows]
    assert {area.code for area in seed.kecamatan} == {row["kecamatan_code"] for row in rows}
    assert {(area.code, area.name) for area in seed.kecamatan} == {
        (row["kecamatan_code"], row["kecamatan"]) for row in rows
    }
    for area in seed.kelurahan:
        assert area.parent_code == area.code[:8]


def test_geometries_are_valid_multipolygons(seed: BoundarySetInput) -> None:
    for area in [*seed.kecamatan, *seed.kelurahan]:
        assert isinstance(area.geometry, MultiPolygon), area.code
        assert area.geometry.is_valid, area.code
        assert not area.geometry.is_empty, area.code


def test_interior_points_are_inside_the_outline(outline: Polygon) -> None:
    for row in _csv_rows():
        assert outline.contains(Point(float(row["lon"]), float(row["lat"]))), row["code"]


def test_each_interior_point_lies_in_its_own_cell_only(seed: BoundarySetInput) -> None:
    cells = {area.code: area.geometry for area in seed.kelurahan}
    for fact in read_kelurahan_facts():
        owners = [code for code, cell in cells.items() if cell.covers(fact.point)]
        assert owners == [fact.code]


def test_kelurahan_tile_the_outline(seed: BoundarySetInput, outline: Polygon) -> None:
    cells = [area.geometry for area in seed.kelurahan]
    union = shapely.union_all(cells)
    assert isinstance(union, Polygon)
    assert len(union.interiors) == 0
    assert outline.difference(union).area < AREA_TOLERANCE
    # The cells are clipped to the outline grown by about 11 cm, nothing more.
    assert union.difference(outline).area < outline.length * 2e-6
    # No overlaps: the parts add up to the whole.
    assert sum(cell.area for cell in cells) == pytest.approx(union.area, abs=AREA_TOLERANCE)


def test_kecamatan_are_unions_of_their_kelurahan(seed: BoundarySetInput) -> None:
    kelurahan_union = shapely.union_all([area.geometry for area in seed.kelurahan])
    kecamatan_union = shapely.union_all([area.geometry for area in seed.kecamatan])
    assert kecamatan_union.symmetric_difference(kelurahan_union).area < AREA_TOLERANCE
    for kecamatan in seed.kecamatan:
        members = [area.geometry for area in seed.kelurahan if area.parent_code == kecamatan.code]
        union = shapely.union_all(members)
        assert union.symmetric_difference(kecamatan.geometry).area < AREA_TOLERANCE


def test_the_seed_is_marked_approximate_and_stable(seed: BoundarySetInput) -> None:
    assert seed.is_approximate
    assert seed.source.startswith("seed: ")
    assert "python -m geo <kelurahan.geojson>" in seed.accuracy_note
    assert "hundreds of metres" in seed.accuracy_note
    assert build_approximate_boundaries().content_hash == seed.content_hash


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


async def test_load_seeds_twice_creates_once(session: AsyncSession) -> None:
    # Other tests may have committed an active set; start from a city without one.
    await session.execute(update(BoundarySet).values(is_active=False))
    first = await load_seeds(session=session)
    assert first.boundaries.created
    assert first.boundaries.activated
    sets = await _count(session, BoundarySet)
    kelurahan = await _count(session, Kelurahan)

    second = await load_seeds(session=session)
    assert not second.boundaries.created
    assert not second.boundaries.activated
    assert second.boundaries.boundary_set_id == first.boundaries.boundary_set_id
    assert await _count(session, BoundarySet) == sets
    assert await _count(session, Kelurahan) == kelurahan
    assert second.lines()[:1] == [
        f"boundaries: approximate set {first.boundaries.boundary_set_id} already present and active"
    ]

    row = (
        await session.execute(
            select(
                BoundarySet.is_approximate, BoundarySet.is_active, BoundarySet.kelurahan_count
            ).where(BoundarySet.id == first.boundaries.boundary_set_id)
        )
    ).one()
    assert tuple(row) == (True, True, 56)


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
    await session.execute(update(BoundarySet).values(is_active=False))

    again = await load_seeds(session=session)
    assert not again.boundaries.created
    assert again.boundaries.activated
    assert await active_boundary_set_id(session=session) == first.boundaries.boundary_set_id


async def test_postgis_agrees_the_seed_covers_the_city(
    session: AsyncSession, outline: Polygon
) -> None:
    result = await load_seeds(session=session)
    in_set = Kelurahan.boundary_set_id == result.boundaries.boundary_set_id
    city = from_shape(outline, srid=4326)

    covers = await session.scalar(
        select(func.ST_Covers(func.ST_Union(Kelurahan.geom), city)).where(in_set)
    )
    assert covers is True

    seeded_km2 = await session.scalar(select(func.sum(Kelurahan.area_km2)).where(in_set))
    outline_km2 = await session.scalar(select(func.ST_Area(cast(city, Geography)) / 1e6))
    assert seeded_km2 is not None
    assert outline_km2 is not None
    assert seeded_km2 == pytest.approx(outline_km2, rel=0.005)
