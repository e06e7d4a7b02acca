"""Point to kelurahan against the active boundary set.

The rules, in order (they are the API's contract, see README "Spatial lookup"):
1. The point is covered by exactly one kelurahan (ST_Covers, so a point on the
   edge counts): that kelurahan.
2. Covered by several (a shared edge, or an overlap sliver left by simplified
   boundaries): the one the point lies deepest inside, i.e. farthest from that
   kelurahan's own boundary; on a tie (a shared edge) the lowest code.
3. Covered by none, but within the snap tolerance of a kelurahan (a gap sliver,
   or a GPS fix just outside the city): the nearest kelurahan, ties to the
   lowest code, marked snapped with the distance in metres.
4. Farther away: outside the jurisdiction, with the distance to the city and the
   nearest kelurahan.
Distances are geodesic metres (PostGIS geography on the WGS 84 spheroid).

A process's in-memory index of the active set (geo.boundary_index) answers rule 1
when the answer is certain; every other case is PostGIS's.
"""

from __future__ import annotations

from dataclasses import dataclass

from geoalchemy2 import Geography
from geoalchemy2.functions import (
    ST_Boundary,
    ST_Covers,
    ST_Distance,
    ST_MakePoint,
    ST_SetSRID,
)
from sqlalchemy import cast, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import FieldProblem, NoActiveBoundarySet, ValidationFailed
from geo.boundary_index import BoundaryIndex
from geo.coordinates import LatLon, validate_lat_lon
from models import BoundarySet, Kelurahan, KelurahanPiece

# KNN ranks pieces by planar distance in degrees; near the equator that order is
# almost the geodesic one, and re-measuring a handful of candidates removes the rest.
NEAREST_CANDIDATES = 8


@dataclass(frozen=True)
class Located:
    boundary_set_id: int
    kelurahan_id: int
    kelurahan_code: str
    kecamatan_id: int
    snapped: bool
    distance_m: float


@dataclass(frozen=True)
class Outside:
    boundary_set_id: int
    distance_m: float
    nearest_kelurahan_id: int


def _point(point: LatLon):  # type: ignore[no-untyped-def]
    return ST_SetSRID(ST_MakePoint(literal(point.lon), literal(point.lat)), 4326)


async def active_set_id(*, session: AsyncSession) -> int:
    set_id = await session.scalar(select(BoundarySet.id).where(BoundarySet.is_active))
    if set_id is None:
        raise NoActiveBoundarySet()
    return set_id


async def locate_point(
    *,
    session: AsyncSession,
    point: LatLon,
    snap_tolerance_m: float,
    boundary_set_id: int | None = None,
) -> Located | Outside:
    set_id = boundary_set_id or await active_set_id(session=session)
    geom = _point(point)

    covering = (
        await session.execute(
            select(Kelurahan.id, Kelurahan.code, Kelurahan.kecamatan_id)
            .join(KelurahanPiece, KelurahanPiece.kelurahan_id == Kelurahan.id)
            .where(KelurahanPiece.boundary_set_id == set_id, ST_Covers(KelurahanPiece.geom, geom))
            .distinct()
        )
    ).all()

    if len(covering) == 1:
        kel_id, code, kec_id = covering[0]
        return Located(set_id, kel_id, code, kec_id, snapped=False, distance_m=0.0)
    if covering:
        depth = ST_Distance(cast(ST_Boundary(Kelurahan.geom), Geography), cast(geom, Geography))
        deepest = (
            await session.execute(
                select(Kelurahan.id, Kelurahan.code, Kelurahan.kecamatan_id)
                .where(Kelurahan.id.in_([row[0] for row in covering]))
                .order_by(depth.desc(), Kelurahan.code)
                .limit(1)
            )
        ).one()
        return Located(set_id, deepest[0], deepest[1], deepest[2], snapped=False, distance_m=0.0)

    candidates = (
        select(
            KelurahanPiece.kelurahan_id,
            ST_Distance(cast(KelurahanPiece.geom, Geography), cast(geom, Geography)).label("d"),
        )
        .where(KelurahanPiece.boundary_set_id == set_id)
        .order_by(KelurahanPiece.geom.op("<->")(geom))
        .limit(NEAREST_CANDIDATES)
        .subquery()
    )
    nearest = (
        await session.execute(
            select(Kelurahan.id, Kelurahan.code, Kelurahan.kecamatan_id, candidates.c.d)
            .join(candidates, candidates.c.kelurahan_id == Kelurahan.id)
            .order_by(candidates.c.d, Kelurahan.code)
            .limit(1)
        )
    ).one_or_none()
    if nearest is None:
        raise NoActiveBoundarySet()
    kel_id, code, kec_id, distance = nearest
    if distance <= snap_tolerance_m:
        return Located(set_id, kel_id, code, kec_id, snapped=True, distance_m=float(distance))
    return Outside(set_id, distance_m=float(distance), nearest_kelurahan_id=kel_id)


def located_by_index(index: BoundaryIndex | None, point: LatLon) -> Located | None:
    """Rule 1 from memory, when the index is certain of it; otherwise None."""
    if index is None:
        return None
    row = index.covering(point)
    if row is None:
        return None
    return Located(
        index.boundary_set_id, row.id, row.code, row.kecamatan_id, snapped=False, distance_m=0.0
    )


def locate_in_memory(
    *, index: BoundaryIndex | None, lat: float, lon: float, field_prefix: str = ""
) -> Located | None:
    """Validate the pair (ValidationFailed) and answer from the index alone, or None:
    then `locate` must ask PostGIS."""
    point = validate_lat_lon(lat, lon, prefix=field_prefix)
    return located_by_index(index, point)


async def locate(
    *,
    session: AsyncSession,
    lat: float,
    lon: float,
    snap_tolerance_m: float,
    field_prefix: str = "",
    index: BoundaryIndex | None = None,
) -> Located | Outside:
    """Validate a coordinate pair from a caller and locate it.

    A pair that is outside but would land inside with latitude and longitude
    swapped is refused as swapped: far more likely a client bug than a report
    from the other side of the globe.
    """
    point = validate_lat_lon(lat, lon, prefix=field_prefix)
    known = located_by_index(index, point)
    if known is not None:
        return known
    result = await locate_point(session=session, point=point, snap_tolerance_m=snap_tolerance_m)
    if isinstance(result, Outside) and -90.0 <= lon <= 90.0:
        swapped = await locate_point(
            session=session,
            point=LatLon(lat=lon, lon=lat),
            snap_tolerance_m=snap_tolerance_m,
            boundary_set_id=result.boundary_set_id,
        )
        if isinstance(swapped, Located):
            raise ValidationFailed(
                [
                    FieldProblem(
                        f"{field_prefix}lat",
                        f"the point is outside the jurisdiction, but lat={lon}, lon={lat} is "
                        "inside: latitude and longitude look swapped",
                    )
                ]
            )
    return result
