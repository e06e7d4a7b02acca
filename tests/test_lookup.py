"""Point lookup against the official Bekasi boundaries on PostGIS."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import shapely
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NoActiveBoundarySet, ValidationFailed
from geo.lookup import Located, Outside, locate
from models import BoundarySet, Kelurahan
from tests import bekasi

SNAP_M = 50.0
pytestmark = pytest.mark.usefixtures("bekasi_boundary_set")


async def _code(session: AsyncSession, kelurahan_id: int) -> str:
    kelurahan = await session.get(Kelurahan, kelurahan_id)
    assert kelurahan is not None
    return kelurahan.code


async def test_points_well_inside_each_kelurahan_find_it(
    session: AsyncSession, shared_data_dir: Path
) -> None:
    rng = random.Random(2611)
    shapes = bekasi.kelurahan_shapes(shared_data_dir)
    assert len(shapes) == 56
    wrong: list[str] = []
    checked = 0
    for kel in shapes:
        for point in bekasi.points_inside(kel.utm, margin_m=20, count=5, rng=rng):
            lat, lon = bekasi.to_lat_lon(point)
            result = await locate(session=session, lat=lat, lon=lon, snap_tolerance_m=SNAP_M)
            checked += 1
            if not (isinstance(result, Located) and result.kelurahan_code == kel.code):
                wrong.append(f"{kel.code} at {lat:.6f},{lon:.6f}: {result}")
            elif result.snapped:
                wrong.append(f"{kel.code} at {lat:.6f},{lon:.6f} was snapped")
    assert checked == 280
    assert wrong == []


async def test_gap_slivers_snap_to_a_neighbour_within_15_m(
    session: AsyncSession, shared_data_dir: Path
) -> None:
    points = bekasi.gap_points(shared_data_dir)
    assert len(points) > 100  # the file has about 150 holes
    for point in points:
        lat, lon = bekasi.to_lat_lon(point)
        result = await locate(session=session, lat=lat, lon=lon, snap_tolerance_m=SNAP_M)
        assert isinstance(result, Located), (lat, lon, result)
        assert result.snapped
        assert 0 < result.distance_m <= 15


async def test_overlap_slivers_answer_one_claimant_every_time(
    session: AsyncSession, shared_data_dir: Path
) -> None:
    overlaps = bekasi.overlap_points(shared_data_dir)
    assert len(overlaps) > 50
    for point, claimants in overlaps:
        lat, lon = bekasi.to_lat_lon(point)
        answers = set()
        for _ in range(3):
            result = await locate(session=session, lat=lat, lon=lon, snap_tolerance_m=SNAP_M)
            assert isinstance(result, Located) and not result.snapped
            answers.add(result.kelurahan_code)
        assert len(answers) == 1
        assert answers <= claimants


async def test_a_point_on_a_kelurahan_edge_is_inside(
    session: AsyncSession, shared_data_dir: Path
) -> None:
    kel = bekasi.kelurahan_shapes(shared_data_dir)[0]
    vertex = kel.utm.exterior.coords[5]
    lat, lon = bekasi.to_lat_lon(shapely.Point(vertex))
    results = {
        await locate(session=session, lat=lat, lon=lon, snap_tolerance_m=SNAP_M) for _ in range(3)
    }
    assert len(results) == 1
    (result,) = results
    assert isinstance(result, Located) and not result.snapped


@pytest.mark.parametrize("distance_m", [1_000, 20_000])
async def test_points_far_outside_are_outside_jurisdiction(
    session: AsyncSession, shared_data_dir: Path, distance_m: int
) -> None:
    for point in bekasi.points_outside(shared_data_dir, distance_m=distance_m, count=12):
        lat, lon = bekasi.to_lat_lon(point)
        result = await locate(session=session, lat=lat, lon=lon, snap_tolerance_m=SNAP_M)
        assert isinstance(result, Outside), (lat, lon, result)
        assert result.distance_m == pytest.approx(distance_m, rel=0.02)


async def test_monas_in_jakarta_is_outside(session: AsyncSession) -> None:
    result = await locate(session=session, lat=-6.1754, lon=106.8272, snap_tolerance_m=SNAP_M)
    assert isinstance(result, Outside)
    assert 11_000 < result.distance_m < 14_000
    assert await _code(session, result.nearest_kelurahan_id) == "32.75.08.1007"  # Jaticempaka


async def test_just_outside_within_tolerance_is_snapped(
    session: AsyncSession, shared_data_dir: Path
) -> None:
    for point in bekasi.points_outside(shared_data_dir, distance_m=30, count=8):
        lat, lon = bekasi.to_lat_lon(point)
        result = await locate(session=session, lat=lat, lon=lon, snap_tolerance_m=SNAP_M)
        assert isinstance(result, Located) and result.snapped
        assert result.distance_m == pytest.approx(30, abs=3)


@pytest.mark.parametrize(
    ("lat", "lon", "field", "fragment"),
    [
        (float("nan"), 106.9, "lat", "finite"),
        (-6.2, float("inf"), "lon", "finite"),
        (-91.0, 106.9, "lat", "out of range"),
        (-6.2, 181.0, "lon", "out of range"),
        (106.9721, -6.2383, "lat", "swapped"),
    ],
)
async def test_bad_coordinates_are_refused(
    session: AsyncSession, lat: float, lon: float, field: str, fragment: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await locate(session=session, lat=lat, lon=lon, snap_tolerance_m=SNAP_M)
    assert [p.field for p in refused.value.problems] == [field]
    assert fragment in refused.value.problems[0].message


async def test_swapped_pair_that_is_valid_both_ways_is_refused_as_swapped(
    session: AsyncSession, shared_data_dir: Path
) -> None:
    # No real Bekasi point has |lon| <= 90, so use a set whose kelurahan lies at
    # (lat 10, lon 20): the pair (20, 10) is valid but lands in the sea.
    from geo.areas import AreaInput, BoundarySetInput
    from geo.store import activate_boundary_set, write_boundary_set

    square = shapely.MultiPolygon([shapely.box(19.9, 9.9, 20.1, 10.1)])
    set_id = await write_boundary_set(
        session=session,
        boundary_set=BoundarySetInput(
            source="test",
            accuracy_note="test",
            is_approximate=True,
            kecamatan=[AreaInput("K1", "K", square)],
            kelurahan=[AreaInput("K1.1", "L", square, parent_code="K1")],
        ),
    )
    await activate_boundary_set(session=session, boundary_set_id=set_id)
    with pytest.raises(ValidationFailed, match="swapped"):
        await locate(session=session, lat=20.0, lon=10.0, snap_tolerance_m=SNAP_M)
    assert isinstance(
        await locate(session=session, lat=10.0, lon=20.0, snap_tolerance_m=SNAP_M), Located
    )


async def test_without_an_active_set_lookup_says_so(session: AsyncSession) -> None:
    await session.execute(update(BoundarySet).values(is_active=False))
    with pytest.raises(NoActiveBoundarySet):
        await locate(session=session, lat=-6.25, lon=106.99, snap_tolerance_m=SNAP_M)
