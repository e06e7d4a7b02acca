"""Reading kecamatan, kelurahan and boundary sets, and their GeoJSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from geoalchemy2.functions import ST_AsGeoJSON, ST_Multi, ST_SimplifyPreserveTopology
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from models import BoundarySet, Kecamatan, Kelurahan

Area = TypeVar("Area", Kecamatan, Kelurahan)

# Metres per degree of latitude; good enough to turn a tolerance given in metres
# into degrees for simplification, which is a display concern only.
METRES_PER_DEGREE = 111_320.0
GEOJSON_DECIMALS = 7  # about 1 cm, more than the boundary data carries


def normalise_name(name: str) -> str:
    """Names match ignoring case and spaces: "Pondok Gede" finds Pondokgede."""
    return "".join(name.split()).casefold()


def _areas(model: type[Area]):  # type: ignore[no-untyped-def]
    return select(model).options(defer(model.geom, raiseload=True))


async def list_areas(
    *, session: AsyncSession, model: type[Area], boundary_set_id: int
) -> Sequence[Area]:
    result = await session.scalars(
        _areas(model).where(model.boundary_set_id == boundary_set_id).order_by(model.code)
    )
    return result.all()


async def areas_by_ids(
    *, session: AsyncSession, model: type[Area], ids: Sequence[int]
) -> dict[int, Area]:
    result = await session.scalars(_areas(model).where(model.id.in_(ids)))
    return {area.id: area for area in result}


async def area_by_code(
    *, session: AsyncSession, model: type[Area], boundary_set_id: int, code: str
) -> Area | None:
    result = await session.scalars(
        _areas(model).where(model.boundary_set_id == boundary_set_id, model.code == code.strip())
    )
    return result.one_or_none()


async def areas_by_name(
    *, session: AsyncSession, model: type[Area], boundary_set_id: int, name: str
) -> Sequence[Area]:
    normalised = func.lower(func.regexp_replace(model.name, r"\s+", "", "g"))
    result = await session.scalars(
        _areas(model)
        .where(model.boundary_set_id == boundary_set_id, normalised == normalise_name(name))
        .order_by(model.code)
    )
    return result.all()


async def kelurahan_by_kecamatan_ids(
    *, session: AsyncSession, kecamatan_ids: Sequence[int]
) -> dict[int, list[Kelurahan]]:
    grouped: dict[int, list[Kelurahan]] = {kec_id: [] for kec_id in kecamatan_ids}
    result = await session.scalars(
        _areas(Kelurahan).where(Kelurahan.kecamatan_id.in_(kecamatan_ids)).order_by(Kelurahan.code)
    )
    for kelurahan in result:
        grouped[kelurahan.kecamatan_id].append(kelurahan)
    return grouped


async def geometries_as_geojson(
    *, session: AsyncSession, model: type[Area], ids: Sequence[int], simplify_m: float | None
) -> dict[int, dict[str, Any]]:
    geom: Any = model.geom
    if simplify_m:
        # Simplifying may leave one ring of a MultiPolygon: the schema promises
        # a MultiPolygon whatever the tolerance.
        geom = ST_Multi(ST_SimplifyPreserveTopology(geom, simplify_m / METRES_PER_DEGREE))
    rows = await session.execute(
        select(model.id, ST_AsGeoJSON(geom, GEOJSON_DECIMALS)).where(model.id.in_(ids))
    )
    return {area_id: orjson.loads(text) for area_id, text in rows}


async def list_boundary_sets(*, session: AsyncSession) -> Sequence[BoundarySet]:
    result = await session.scalars(select(BoundarySet).order_by(BoundarySet.id.desc()))
    return result.all()


async def boundary_sets_by_ids(
    *, session: AsyncSession, ids: Sequence[int]
) -> dict[int, BoundarySet]:
    result = await session.scalars(select(BoundarySet).where(BoundarySet.id.in_(ids)))
    return {item.id: item for item in result}
