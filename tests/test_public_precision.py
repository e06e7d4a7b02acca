"""The public view never locates a case more precisely than its rounding, whatever
filters a caller combines: `publicCases` filters compare the rounded location."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from geo.case_filters import PUBLIC_GRID_DEGREES, public_coordinate
from tests.factories import make_case

pytestmark = pytest.mark.usefixtures("reference_data")

# Two cases about 110 m apart whose locations round to the same public point.
GRID_POINT = (-6.238, 106.976)
FIRST = (-6.23834, 106.97562)
SECOND = (-6.23766, 106.97638)

PUBLIC_PAGE = """
query($f: PublicCaseFilterInput) {
  publicCases(filter: $f, first: 100) { edges { node { ticket location { lat lon } } } }
}
"""


@pytest.fixture
def caller() -> None:
    return None


async def _found(graphql: Any, filter_: dict[str, Any]) -> dict[str, dict[str, float]]:
    body = await graphql(PUBLIC_PAGE, {"f": filter_})
    assert "errors" not in body, body
    return {
        e["node"]["ticket"]: e["node"]["location"] for e in body["data"]["publicCases"]["edges"]
    }


def _near(lat: float, lon: float, radius_m: float) -> dict[str, Any]:
    return {"near": {"lat": lat, "lon": lon, "radiusM": radius_m}}


def _box(lat: float, lon: float, half: float) -> dict[str, Any]:
    return {
        "bbox": {"west": lon - half, "south": lat - half, "east": lon + half, "north": lat + half}
    }


def _probes() -> list[dict[str, Any]]:
    """Filters an attacker would narrow a case down with: small circles and boxes
    around guesses anywhere in and around the grid cell, alone and combined."""
    probes: list[dict[str, Any]] = []
    steps = [i * PUBLIC_GRID_DEGREES / 4 for i in range(-3, 4)]
    for dlat in steps:
        for dlon in steps:
            lat, lon = GRID_POINT[0] + dlat, GRID_POINT[1] + dlon
            for radius_m in (1, 20, 60):
                probes.append(_near(lat, lon, radius_m))
            probes.append(_box(lat, lon, PUBLIC_GRID_DEGREES / 8))
            probes.append({**_near(lat, lon, 60), **_box(lat, lon, PUBLIC_GRID_DEGREES / 4)})
    for lat, lon in (FIRST, SECOND):
        probes.append(_near(lat, lon, 0.5))
        probes.append(_box(lat, lon, 0.00001))
    return probes


async def test_filters_cannot_tell_cases_in_one_grid_cell_apart(
    graphql: Any, session: AsyncSession
) -> None:
    first = await make_case(session, lat=FIRST[0], lon=FIRST[1])
    second = await make_case(session, lat=SECOND[0], lon=SECOND[1])
    everything = await _found(graphql, _box(*GRID_POINT, 0.01))
    rounded = {"lat": GRID_POINT[0], "lon": GRID_POINT[1]}
    assert everything[first.ticket] == everything[second.ticket] == rounded

    answers = []
    for probe in _probes():
        found = await _found(graphql, probe)
        # Whatever is asked, the two cases come together or not at all: the answer
        # depends on the public grid point only, which the public reads anyway.
        assert (first.ticket in found) == (second.ticket in found), probe
        answers.append(first.ticket in found)
    # The filters still work: some probes find the cases, some do not.
    assert any(answers) and not all(answers)


async def test_filters_compare_the_location_the_public_reads(
    graphql: Any, session: AsyncSession
) -> None:
    case = await make_case(session, lat=FIRST[0], lon=FIRST[1])
    # Around the exact spot, however small: nothing; around the public point: found.
    assert case.ticket not in await _found(graphql, _near(*FIRST, 1))
    assert case.ticket not in await _found(graphql, _box(*FIRST, 0.00001))
    assert case.ticket in await _found(graphql, _near(*GRID_POINT, 1))
    assert case.ticket in await _found(graphql, _box(*GRID_POINT, 0.00001))


async def test_the_public_grid_is_the_one_postgis_snaps_to(session: AsyncSession) -> None:
    # Halfway values (ties) and their neighbours included.
    values = [106.9765, -6.2385, 106.97649999, 106.97650001, 0.0005, -0.0015, 107.0, -6.2383]
    for value in values:
        snapped = await session.scalar(
            select(func.ST_X(func.ST_SnapToGrid(func.ST_MakePoint(value, 0), PUBLIC_GRID_DEGREES)))
        )
        assert snapped is not None
        assert public_coordinate(value) == round(snapped, 3), value
        assert abs(public_coordinate(value) - value) <= PUBLIC_GRID_DEGREES / 2 + 1e-12
