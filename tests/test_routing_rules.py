"""Routing rules: checking their areas, administering them, and finding the one that applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from shapely import MultiPolygon, box
from shapely.geometry import mapping
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ValidationFailed
from domain.reference.categories import create_category
from domain.reference.dinas import create_dinas, update_dinas
from domain.reference.routing_rules import (
    create_routing_rule,
    deactivate_routing_rule,
    find_routing_rule,
    list_routing_rules,
    update_routing_rule,
)
from geo.coordinates import LatLon
from geo.rules import area_as_geojson, parse_area
from models import Category, RoutingRule

pytestmark = pytest.mark.usefixtures("bekasi_boundary_set")

PONDOKGEDE = "32.75.08"
BEKASI_TIMUR = "32.75.01"
TELUK_PUCUNG = "32.75.03.1004"
PERWIRA = "32.75.03.1002"
SQUARE = box(106.99, -6.26, 107.0, -6.25)
INSIDE_SQUARE = LatLon(lat=-6.255, lon=106.995)
ON_SQUARE_EDGE = LatLon(lat=-6.255, lon=107.0)
OUTSIDE_SQUARE = LatLon(lat=-6.255, lon=107.01)


def _geojson(geometry: Any) -> dict[str, Any]:
    return dict(mapping(geometry))


def _fields(error: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [problem.field for problem in error.value.problems]


# Areas, in pure shapely


def test_a_polygon_becomes_a_multipolygon() -> None:
    area = parse_area(_geojson(SQUARE))
    assert isinstance(area, MultiPolygon)
    assert area.equals(MultiPolygon([SQUARE]))


def test_a_multipolygon_is_kept_and_z_is_dropped() -> None:
    area = parse_area(
        {
            "type": "MultiPolygon",
            "coordinates": [
                [[[107.0, -6.2, 5], [107.01, -6.2, 5], [107.01, -6.21, 5], [107.0, -6.2, 5]]]
            ],
        }
    )
    assert len(area.geoms) == 1
    assert not area.has_z


@pytest.mark.parametrize(
    ("geojson", "message"),
    [
        ({"type": "Point", "coordinates": [107.0, -6.2]}, "Polygon or MultiPolygon"),
        ({"type": "Polygon"}, "no `coordinates`"),
        ({"type": "Polygon", "coordinates": []}, "at least one polygon"),
        ({"type": "Polygon", "coordinates": [[[107.0, -6.2], [107.01, -6.2]]]}, "readable"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            "Self-intersection",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[-6.2, 107.0], [-6.2, 107.01], [-6.21, 107.01], [-6.2, 107.0]]],
            },
            "look swapped",
        ),
        (
            {"type": "Polygon", "coordinates": [[[200, 0], [201, 0], [201, 1], [200, 0]]]},
            "outside longitude -180..180",
        ),
    ],
)
def test_bad_areas_are_refused_with_the_field_named(geojson: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationFailed) as error:
        parse_area(geojson)
    assert _fields(error) == ["area"]
    assert message in error.value.problems[0].message


# Administering rules


@dataclass(frozen=True)
class Reference:
    category: Category
    other_category: Category


@pytest.fixture
async def ref(session: AsyncSession) -> Reference:
    for code in ("DEFAULT_DINAS", "RULE_DINAS", "OTHER_DINAS"):
        await create_dinas(session=session, code=code, name=code, short_name=code)
    await create_category(
        session=session, code="TEST_GROUP", name="Group", accepted_kinds=["LAPORAN"]
    )
    leaves = [
        await create_category(
            session=session,
            code=code,
            name=code,
            accepted_kinds=["LAPORAN"],
            parent_code="TEST_GROUP",
            default_dinas_code="DEFAULT_DINAS",
            service_level_days=5,
        )
        for code in ("TEST_ROADS", "TEST_RUBBISH")
    ]
    return Reference(category=leaves[0], other_category=leaves[1])


async def _rule(
    session: AsyncSession,
    *,
    priority: int = 10,
    dinas: str = "RULE_DINAS",
    category: str = "TEST_ROADS",
    **area: Any,
) -> RoutingRule:
    return await create_routing_rule(
        session=session,
        category_code=category,
        dinas_code=dinas,
        priority=priority,
        description="test rule",
        **area,
    )


async def _find(
    session: AsyncSession,
    category: Category,
    *,
    kecamatan: str | None = None,
    kelurahan: str | None = None,
    point: LatLon | None = None,
) -> RoutingRule | None:
    return await find_routing_rule(
        session=session,
        category_id=category.id,
        kecamatan_code=kecamatan,
        kelurahan_code=kelurahan,
        point=point,
    )


async def test_a_rule_is_stored_with_its_codes_and_area(
    session: AsyncSession, ref: Reference
) -> None:
    rule = await _rule(
        session,
        kecamatan_codes=[f" {PONDOKGEDE}", PONDOKGEDE],
        kelurahan_codes=[TELUK_PUCUNG],
        area=_geojson(SQUARE),
    )
    await session.refresh(rule)
    assert rule.kecamatan_codes == [PONDOKGEDE]
    assert rule.kelurahan_codes == [TELUK_PUCUNG]
    assert rule.area is not None
    stored = area_as_geojson(rule.area)
    assert stored["type"] == "MultiPolygon"
    assert parse_area(stored).equals(MultiPolygon([SQUARE]))
    assert rule.is_active


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"category_code": "TEST_GROUP"}, "categoryCode"),
        ({"category_code": "NO_SUCH"}, "categoryCode"),
        ({"dinas_code": "NO_SUCH"}, "dinasCode"),
        ({"priority": -1}, "priority"),
        ({"priority": 1001}, "priority"),
        ({"description": "  "}, "description"),
        ({"kecamatan_codes": ["32.75.99"]}, "kecamatanCodes"),
        ({"kelurahan_codes": ["32.75.03.1999"]}, "kelurahanCodes"),
        ({"kecamatan_codes": [], "area": {"type": "Point", "coordinates": [107, -6]}}, "area"),
        ({"kecamatan_codes": []}, "area"),
    ],
)
async def test_bad_rules_are_refused_with_the_field_named(
    session: AsyncSession, ref: Reference, changes: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = {
        "category_code": "TEST_ROADS",
        "dinas_code": "RULE_DINAS",
        "priority": 10,
        "description": "test rule",
        "kecamatan_codes": [PONDOKGEDE],
        **changes,
    }
    with pytest.raises(ValidationFailed) as error:
        await create_routing_rule(session=session, **arguments)
    assert _fields(error) == [field]
    assert await list_routing_rules(session=session, category_code="TEST_ROADS") == []


async def test_a_rule_cannot_route_to_an_inactive_dinas(
    session: AsyncSession, ref: Reference
) -> None:
    await update_dinas(session=session, code="OTHER_DINAS", is_active=False)
    with pytest.raises(ValidationFailed) as error:
        await _rule(session, dinas="OTHER_DINAS", kecamatan_codes=[PONDOKGEDE])
    assert _fields(error) == ["dinasCode"]
    assert "inactive" in error.value.problems[0].message


async def test_update_changes_only_what_is_given(session: AsyncSession, ref: Reference) -> None:
    rule = await _rule(session, kecamatan_codes=[PONDOKGEDE], area=_geojson(SQUARE))
    updated = await update_routing_rule(session=session, rule_id=rule.id, priority=50, area=None)
    assert updated.priority == 50
    assert updated.area is None
    assert updated.kecamatan_codes == [PONDOKGEDE]
    assert updated.description == "test rule"


async def test_a_refused_update_changes_nothing(session: AsyncSession, ref: Reference) -> None:
    rule = await _rule(session, kecamatan_codes=[PONDOKGEDE])
    with pytest.raises(ValidationFailed) as error:
        await update_routing_rule(session=session, rule_id=rule.id, priority=99, kecamatan_codes=[])
    assert _fields(error) == ["area"]
    await session.refresh(rule)
    assert (rule.priority, rule.kecamatan_codes) == (10, [PONDOKGEDE])

    with pytest.raises(ValidationFailed) as error:
        await update_routing_rule(session=session, rule_id=rule.id + 1000, priority=1)
    assert _fields(error) == ["id"]


async def test_deactivated_rules_are_listed_only_on_request(
    session: AsyncSession, ref: Reference
) -> None:
    rule = await _rule(session, kecamatan_codes=[PONDOKGEDE])
    deactivated = await deactivate_routing_rule(session=session, rule_id=rule.id)
    assert not deactivated.is_active
    assert await list_routing_rules(session=session, category_code="test_roads") == []
    listed = await list_routing_rules(
        session=session, category_code="TEST_ROADS", include_inactive=True
    )
    assert [r.id for r in listed] == [rule.id]


async def test_a_dinas_that_rules_route_to_stays_active(
    session: AsyncSession, ref: Reference
) -> None:
    rule = await _rule(session, kecamatan_codes=[PONDOKGEDE])
    with pytest.raises(ValidationFailed) as error:
        await update_dinas(session=session, code="RULE_DINAS", is_active=False)
    assert _fields(error) == ["isActive"]
    assert str(rule.id) in error.value.problems[0].message


# Finding the rule that applies


async def test_a_kecamatan_rule_applies_in_that_kecamatan_only(
    session: AsyncSession, ref: Reference
) -> None:
    rule = await _rule(session, kecamatan_codes=[PONDOKGEDE])
    found = await _find(session, ref.category, kecamatan=PONDOKGEDE, kelurahan="32.75.08.1001")
    assert found is not None and found.id == rule.id
    # Elsewhere the category's default dinas applies: no rule.
    assert await _find(session, ref.category, kecamatan=BEKASI_TIMUR) is None
    # Another category's reports in the same kecamatan are not affected.
    assert await _find(session, ref.other_category, kecamatan=PONDOKGEDE) is None


async def test_a_kelurahan_rule_applies_in_that_kelurahan_only(
    session: AsyncSession, ref: Reference
) -> None:
    rule = await _rule(session, kelurahan_codes=[TELUK_PUCUNG])
    found = await _find(session, ref.category, kecamatan="32.75.03", kelurahan=TELUK_PUCUNG)
    assert found is not None and found.id == rule.id
    assert await _find(session, ref.category, kecamatan="32.75.03", kelurahan=PERWIRA) is None


async def test_an_area_rule_covers_points_inside_and_on_its_edge(
    session: AsyncSession, ref: Reference
) -> None:
    rule = await _rule(session, area=_geojson(SQUARE))
    for point in (INSIDE_SQUARE, ON_SQUARE_EDGE):
        found = await _find(session, ref.category, point=point)
        assert found is not None and found.id == rule.id, point
    assert await _find(session, ref.category, point=OUTSIDE_SQUARE) is None
    # Without a point, an area rule cannot apply.
    assert await _find(session, ref.category, kecamatan=PONDOKGEDE) is None


async def test_the_highest_priority_wins_then_the_oldest_rule(
    session: AsyncSession, ref: Reference
) -> None:
    low = await _rule(session, priority=5, kecamatan_codes=[PONDOKGEDE])
    high = await _rule(session, priority=20, dinas="OTHER_DINAS", area=_geojson(SQUARE))
    high_twin = await _rule(session, priority=20, kelurahan_codes=["32.75.08.1001"])
    assert high.id < high_twin.id

    async def winner(**place: Any) -> int | None:
        found = await _find(session, ref.category, **place)
        return found.id if found else None

    assert await winner(kecamatan=PONDOKGEDE) == low.id
    assert await winner(kecamatan=PONDOKGEDE, point=INSIDE_SQUARE) == high.id
    assert await winner(kecamatan=PONDOKGEDE, kelurahan="32.75.08.1001") == high_twin.id
    assert (
        await winner(kecamatan=PONDOKGEDE, kelurahan="32.75.08.1001", point=INSIDE_SQUARE)
        == high.id
    )

    await update_routing_rule(session=session, rule_id=low.id, priority=30)
    assert (
        await winner(kecamatan=PONDOKGEDE, kelurahan="32.75.08.1001", point=INSIDE_SQUARE) == low.id
    )


async def test_inactive_rules_are_ignored(session: AsyncSession, ref: Reference) -> None:
    fallback = await _rule(session, priority=1, kecamatan_codes=[PONDOKGEDE])
    preferred = await _rule(session, priority=50, kecamatan_codes=[PONDOKGEDE])
    found = await _find(session, ref.category, kecamatan=PONDOKGEDE)
    assert found is not None and found.id == preferred.id

    await deactivate_routing_rule(session=session, rule_id=preferred.id)
    found = await _find(session, ref.category, kecamatan=PONDOKGEDE)
    assert found is not None and found.id == fallback.id

    await deactivate_routing_rule(session=session, rule_id=fallback.id)
    assert await _find(session, ref.category, kecamatan=PONDOKGEDE) is None


async def test_nothing_to_match_finds_nothing(session: AsyncSession, ref: Reference) -> None:
    await _rule(session, kecamatan_codes=[PONDOKGEDE])
    assert await _find(session, ref.category) is None
