"""Possible duplicates: open cases of the same category near a case.

Distances are geodesic metres (geography on the WGS 84 spheroid). The GiST index
on `case.location` is a geometry index, which a geography `ST_DWithin` cannot use,
so a bounding box in degrees that surely holds the radius selects candidates
through the index first, and the exact geodesic test runs on those only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from geoalchemy2 import Geography
from geoalchemy2.functions import ST_Distance, ST_DWithin, ST_Expand, ST_MakePoint, ST_SetSRID
from sqlalchemy import cast, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from geo.shapes import point_lat_lon
from models import OPEN_STATUSES, Case

# Shortest metres in a degree of latitude (at the equator) and of longitude at the
# equator; the margin absorbs the spheroid's small corrections.
_M_PER_DEGREE_LAT_MIN = 110_574.0
_M_PER_DEGREE_LON_EQUATOR = 111_319.0
_BOX_MARGIN = 1.1


@dataclass(frozen=True)
class Nearby:
    case: Case
    distance_m: float


def _box_half_sides(lat: float, radius_m: float) -> tuple[float, float]:
    """Half-width and half-height, in degrees, of a box holding every point within
    `radius_m` of a point at `lat`. No wrap at the antimeridian: no city is there."""
    cos_lat = max(math.cos(math.radians(lat)), 0.01)
    d_lon = radius_m / (_M_PER_DEGREE_LON_EQUATOR * cos_lat) * _BOX_MARGIN
    d_lat = radius_m / _M_PER_DEGREE_LAT_MIN * _BOX_MARGIN
    return d_lon, d_lat


async def open_cases_near(
    *, session: AsyncSession, case: Case, radius_m: float, created_since: datetime, limit: int
) -> list[Nearby]:
    """Open cases of `case`'s category created since `created_since` within `radius_m`
    of it, nearest first (ties by id), never `case` itself; none without a location."""
    if case.location is None:
        return []
    origin = point_lat_lon(case.location)
    point = ST_SetSRID(ST_MakePoint(literal(origin.lon), literal(origin.lat)), 4326)
    d_lon, d_lat = _box_half_sides(origin.lat, radius_m)
    distance = ST_Distance(cast(Case.location, Geography), cast(point, Geography))
    rows = await session.execute(
        select(Case, distance)
        .where(
            Case.category_id == case.category_id,
            Case.id != case.id,
            Case.status.in_(OPEN_STATUSES),
            Case.created_at >= created_since,
            Case.location.op("&&")(ST_Expand(point, d_lon, d_lat)),
            ST_DWithin(cast(Case.location, Geography), cast(point, Geography), radius_m),
        )
        .order_by(distance, Case.id)
        .limit(limit)
    )
    return [Nearby(case=row[0], distance_m=float(row[1])) for row in rows]
