"""Intake decides with reference data kept in memory: it must never decide
differently from the database, also right after a change."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from geoalchemy2.shape import to_shape
from shapely import box
from shapely.geometry import mapping
from sqlalchemy import Float, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import UnknownCategory
from domain.case_record import Place
from domain.intake import Submitted, route_report, submit_report
from domain.reference.categories import create_category, update_category
from domain.reference.routing_rules import create_routing_rule, find_routing_rule
from domain.reference_cache import ReferenceCache, load_reference_data
from domain.report_input import ReportInput
from geo import rules
from geo.coordinates import LatLon
from geo.lookup import active_set_id
from models import Category, Dinas, Kelurahan
from tests import bekasi
from tests.factories import domain_report

pytestmark = pytest.mark.usefixtures("reference_data")

PONDOKGEDE_KELURAHAN = "32.75.08.1002"
SQUARE = box(106.99, -6.26, 107.0, -6.25)


def _report(lat: float, lon: float, key: str, **overrides: Any) -> ReportInput:
    report: ReportInput = domain_report(lat=lat, lon=lon, idempotency_key=key, **overrides)
    return report


@pytest.fixture
def pondokgede(shared_data_dir: Path) -> tuple[float, float]:
    return bekasi.interior_lat_lon(shared_data_dir, PONDOKGEDE_KELURAHAN)


async def _submit(
    session: AsyncSession, cache: ReferenceCache, at: tuple[float, float], key: str, **kw: Any
) -> Submitted:
    return await submit_report(
        session=session,
        report=_report(*at, key, **kw),
        now=datetime.now(UTC),
        snap_tolerance_m=50,
        reference=cache,
    )


async def _dinas_code(session: AsyncSession, submitted: Submitted) -> str | None:
    return await session.scalar(select(Dinas.code).where(Dinas.id == submitted.case.dinas_id))


async def test_a_rule_made_after_the_cache_was_filled_routes_the_next_report(
    session: AsyncSession, pondokgede: tuple[float, float]
) -> None:
    cache = ReferenceCache()
    before = await _submit(session, cache, pondokgede, "ref-rule-1")
    assert await _dinas_code(session, before) == "DBMSDA"

    rule = await create_routing_rule(
        session=session,
        category_code="JALAN_RUSAK",
        dinas_code="DLH",
        priority=10,
        description="Pondokgede roads go to DLH",
        kecamatan_codes=[PONDOKGEDE_KELURAHAN[:8]],
    )
    after = await _submit(session, cache, pondokgede, "ref-rule-2")
    assert await _dinas_code(session, after) == "DLH"
    assert after.case.routing_rule_id == rule.id
    assert after.dinas is not None and after.dinas.code == "DLH"


async def test_a_rolled_back_change_is_never_used(
    session: AsyncSession, pondokgede: tuple[float, float]
) -> None:
    cache = ReferenceCache()
    async with session.begin_nested() as attempt:
        await create_routing_rule(
            session=session,
            category_code="JALAN_RUSAK",
            dinas_code="DLH",
            priority=10,
            description="never committed",
            kecamatan_codes=[PONDOKGEDE_KELURAHAN[:8]],
        )
        inside = await _submit(session, cache, pondokgede, "ref-rollback-1")
        assert await _dinas_code(session, inside) == "DLH"
        await attempt.rollback()
    after = await _submit(session, cache, pondokgede, "ref-rollback-2")
    assert await _dinas_code(session, after) == "DBMSDA"


async def test_a_category_made_inactive_after_the_cache_was_filled_is_refused(
    session: AsyncSession, pondokgede: tuple[float, float]
) -> None:
    cache = ReferenceCache()
    first = await _submit(session, cache, pondokgede, "ref-category-1")
    await update_category(session=session, code="JALAN_RUSAK", is_active=False)
    with pytest.raises(UnknownCategory):
        await _submit(session, cache, pondokgede, "ref-category-2")
    # A retry of the report taken before still gets its case back.
    retry = await _submit(session, cache, pondokgede, "ref-category-1")
    assert not retry.created and retry.case.id == first.case.id


async def test_a_category_made_after_the_cache_was_filled_is_accepted(
    session: AsyncSession, pondokgede: tuple[float, float]
) -> None:
    cache = ReferenceCache()
    await _submit(session, cache, pondokgede, "ref-new-category-1")
    group = await session.scalar(
        select(Category.code).where(Category.parent_id.is_(None)).order_by(Category.code)
    )
    assert group is not None
    await create_category(
        session=session,
        code="LUBANG_BARU",
        name="Lubang baru",
        accepted_kinds=["LAPORAN"],
        parent_code=group,
        default_dinas_code="DISHUB",
        service_level_days=3,
    )
    submitted = await _submit(
        session, cache, pondokgede, "ref-new-category-2", category_code="LUBANG_BARU"
    )
    assert await _dinas_code(session, submitted) == "DISHUB"


async def test_routing_from_memory_agrees_with_postgis(session: AsyncSession) -> None:
    category = await session.scalar(select(Category).where(Category.code == "JALAN_RUSAK"))
    assert category is not None
    await create_routing_rule(
        session=session,
        category_code="JALAN_RUSAK",
        dinas_code="DISHUB",
        priority=20,
        description="a drawn square",
        area=dict(mapping(SQUARE)),
    )
    await create_routing_rule(
        session=session,
        category_code="JALAN_RUSAK",
        dinas_code="DLH",
        priority=10,
        description="one kecamatan",
        kecamatan_codes=[PONDOKGEDE_KELURAHAN[:8]],
    )
    data = await load_reference_data(session=session)
    set_id = await active_set_id(session=session)
    kelurahan = await session.scalar(
        select(Kelurahan).where(
            Kelurahan.boundary_set_id == set_id, Kelurahan.code == PONDOKGEDE_KELURAHAN
        )
    )
    assert kelurahan is not None
    place = Place(
        kelurahan_id=kelurahan.id,
        kelurahan_code=kelurahan.code,
        kecamatan_id=kelurahan.kecamatan_id,
        boundary_set_id=set_id,
        snapped=False,
        distance_m=0.0,
    )
    west, south, east, north = SQUARE.bounds
    # The corners, points on every edge, and a grid across and around the square.
    steps = [i / 8 for i in range(-2, 11)]
    points = [
        LatLon(lat=south + (north - south) * y, lon=west + (east - west) * x)
        for x in steps
        for y in steps
    ]
    for point in points:
        for at in (place, None):
            expected = await find_routing_rule(
                session=session,
                category_id=category.id,
                kecamatan_code=at.kecamatan_code if at else None,
                kelurahan_code=at.kelurahan_code if at else None,
                point=point,
            )
            chosen = await route_report(
                session=session, data=data, category=category, place=at, point=point
            )
            assert (chosen.rule.id if chosen.rule else None) == (
                expected.id if expected else None
            ), (point, at)


async def test_areas_in_memory_agree_with_postgis_on_thousands_of_points(
    session: AsyncSession,
) -> None:
    set_id = await active_set_id(session=session)
    kelurahan = await session.scalar(
        select(Kelurahan).where(
            Kelurahan.boundary_set_id == set_id, Kelurahan.code == PONDOKGEDE_KELURAHAN
        )
    )
    assert kelurahan is not None
    geometry = kelurahan.geom
    area_shape = to_shape(geometry)
    area = rules.area_in_memory(geometry)
    west, south, east, north = area_shape.bounds
    rng = random.Random(7)
    points = [(rng.uniform(west, east), rng.uniform(south, north)) for _ in range(3000)]
    # And the hard ones: every vertex, and the middle of every edge.
    rings = [p.exterior for p in getattr(area_shape, "geoms", [area_shape])]
    for ring in rings:
        coords = list(ring.coords)
        points += coords
        points += [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in itertools.pairwise(coords)]

    covered = (
        (
            await session.execute(
                text(
                    "SELECT ST_Covers(k.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)) "
                    "FROM kelurahan k, unnest(:lons, :lats) WITH ORDINALITY AS p(lon, lat, n) "
                    "WHERE k.id = :id ORDER BY p.n"
                ).bindparams(
                    bindparam("id", value=kelurahan.id),
                    bindparam("lons", value=[p[0] for p in points], type_=ARRAY(Float)),
                    bindparam("lats", value=[p[1] for p in points], type_=ARRAY(Float)),
                )
            )
        )
        .scalars()
        .all()
    )
    undecided = 0
    for (lon, lat), postgis in zip(points, covered, strict=True):
        answer = rules.covers_for_certain(area, LatLon(lat=lat, lon=lon))
        if answer is None:
            undecided += 1
        else:
            assert answer == postgis, (lat, lon)
    # Only the points on the outline are left to PostGIS.
    assert undecided <= len(points) - 3000
