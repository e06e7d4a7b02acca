"""Spatial conditions for filtering cases (bounding box, radius around a point)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geoalchemy2 import Geography
from geoalchemy2.functions import (
    ST_DWithin,
    ST_Intersects,
    ST_MakeEnvelope,
    ST_MakePoint,
    ST_SetSRID,
    ST_SnapToGrid,
)
from sqlalchemy import ColumnElement, cast

from core.errors import FieldProblem, ValidationFailed
from geo.coordinates import LatLon, validate_lat_lon
from models import Case


@dataclass(frozen=True)
class BBox:
    west: float
    south: float
    east: float
    north: float


def checked_bbox(bbox: BBox, *, field: str) -> BBox:
    validate_lat_lon(bbox.south, bbox.west, prefix=f"{field}.south/west ")
    validate_lat_lon(bbox.north, bbox.east, prefix=f"{field}.north/east ")
    if bbox.south > bbox.north:
        raise ValidationFailed([FieldProblem(field, "south must not be greater than north")])
    if bbox.west > bbox.east:
        # Bekasi is nowhere near the antimeridian; a reversed box is a client bug.
        raise ValidationFailed([FieldProblem(field, "west must not be greater than east")])
    return bbox


# The public view of a case shows its location on a grid of this many decimals
# of a degree (about 110 m). Public filters compare that grid point, never the
# exact location: otherwise a small radius or box around a guess, moved step by
# step, would find the exact spot the rounding hides.
PUBLIC_LOCATION_DECIMALS = 3
PUBLIC_GRID_DEGREES = 10.0**-PUBLIC_LOCATION_DECIMALS


def public_coordinate(degrees: float) -> float:
    """A coordinate on the public grid, computed as ST_SnapToGrid does (the
    nearest multiple, ties to even) so that what the public reads is what its
    filters compare."""
    return round(
        round(degrees / PUBLIC_GRID_DEGREES) * PUBLIC_GRID_DEGREES, PUBLIC_LOCATION_DECIMALS
    )


def _location(*, public: bool) -> ColumnElement[Any]:
    if public:
        return ST_SnapToGrid(Case.location, PUBLIC_GRID_DEGREES)
    return Case.location.expression


def _envelope(bbox: BBox, margin: float = 0.0) -> ColumnElement[Any]:
    return ST_MakeEnvelope(
        bbox.west - margin, bbox.south - margin, bbox.east + margin, bbox.north + margin, 4326
    )


def inside_bbox(bbox: BBox, *, public: bool = False) -> ColumnElement[bool]:
    condition = ST_Intersects(_location(public=public), _envelope(bbox))
    if public:
        # The grid point is at most half a cell from the exact one, so the exact
        # location inside the box widened by a cell selects a superset of the
        # answer, with the spatial index.
        return ST_Intersects(Case.location, _envelope(bbox, PUBLIC_GRID_DEGREES)) & condition
    return condition


def within_radius(center: LatLon, radius_m: float, *, public: bool = False) -> ColumnElement[bool]:
    point = ST_SetSRID(ST_MakePoint(center.lon, center.lat), 4326)
    return ST_DWithin(cast(_location(public=public), Geography), cast(point, Geography), radius_m)
