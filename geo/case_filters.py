"""Spatial conditions for filtering cases (bounding box, radius around a point)."""

from __future__ import annotations

from dataclasses import dataclass

from geoalchemy2 import Geography
from geoalchemy2.functions import (
    ST_DWithin,
    ST_Intersects,
    ST_MakeEnvelope,
    ST_MakePoint,
    ST_SetSRID,
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


def inside_bbox(bbox: BBox) -> ColumnElement[bool]:
    envelope = ST_MakeEnvelope(bbox.west, bbox.south, bbox.east, bbox.north, 4326)
    return ST_Intersects(Case.location, envelope)


def within_radius(center: LatLon, radius_m: float) -> ColumnElement[bool]:
    point = ST_SetSRID(ST_MakePoint(center.lon, center.lat), 4326)
    return ST_DWithin(cast(Case.location, Geography), cast(point, Geography), radius_m)
