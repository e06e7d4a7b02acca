"""Statistics on the map: cases counted in hexagons, and a measure per kelurahan."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.case_queries import CaseFilter, filtered
from domain.stats.flows import case_stats
from domain.stats.grouping import StatsGroup
from domain.stats.scanning import tune_for_scans
from geo import boundaries, heatmap
from geo.case_filters import BBox
from geo.lookup import active_set_id
from models import Case, Kecamatan, Kelurahan


class ChoroplethMetric(StrEnum):
    OPEN = "OPEN"
    OVERDUE = "OVERDUE"
    RECEIVED = "RECEIVED"
    RESOLVED_ON_TIME_SHARE = "RESOLVED_ON_TIME_SHARE"


async def case_heatmap(
    *,
    session: AsyncSession,
    bbox: BBox,
    cell_m: float,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
) -> dict[str, Any]:
    """Cases with a location inside `bbox`, counted in hexagons: a GeoJSON FeatureCollection."""
    grid = heatmap.HexGrid.for_bbox(bbox, cell_m)
    await tune_for_scans(session=session)
    statement: Select[Any] = filtered(
        select(Case.location).where(Case.location.is_not(None), scope),
        case_filter,
    )
    return await heatmap.hexagon_counts(session=session, located_cases=statement, grid=grid)


async def kelurahan_choropleth(
    *,
    session: AsyncSession,
    metric: ChoroplethMetric,
    case_filter: CaseFilter,
    scope: ColumnElement[bool],
    start: datetime,
    end: datetime,
    now: datetime,
    simplify_m: float | None,
) -> dict[str, Any]:
    """Every kelurahan of the active set with the metric's value: a FeatureCollection."""
    stats = await case_stats(
        session=session,
        group_by=StatsGroup.KELURAHAN,
        case_filter=case_filter,
        scope=scope,
        start=start,
        end=end,
        now=now,
        with_durations=False,
        flows=frozenset(
            {"resolved" if metric is ChoroplethMetric.RESOLVED_ON_TIME_SHARE else "received"}
        ),
    )
    by_code = {g.key: g for g in stats.groups}

    def value(code: str) -> float | int | None:
        group = by_code.get(code)
        match metric:
            case ChoroplethMetric.OPEN:
                return group.open if group else 0
            case ChoroplethMetric.OVERDUE:
                return group.overdue if group else 0
            case ChoroplethMetric.RECEIVED:
                return group.received if group else 0
            case ChoroplethMetric.RESOLVED_ON_TIME_SHARE:
                return group.on_time_share if group else None

    set_id = await active_set_id(session=session)
    kelurahan = await boundaries.list_areas(
        session=session, model=Kelurahan, boundary_set_id=set_id
    )
    kecamatan = await boundaries.list_areas(
        session=session, model=Kecamatan, boundary_set_id=set_id
    )
    kecamatan_names = {k.id: k.name for k in kecamatan}
    geometries = await boundaries.geometries_as_geojson(
        session=session, model=Kelurahan, ids=[k.id for k in kelurahan], simplify_m=simplify_m
    )
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": area.code,
                "geometry": geometries[area.id],
                "properties": {
                    "code": area.code,
                    "name": area.name,
                    "kecamatan": kecamatan_names[area.kecamatan_id],
                    "value": value(area.code),
                },
            }
            for area in kelurahan
        ],
    }
