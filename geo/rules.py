"""The spatial side of routing rules: checking a GeoJSON area, storing it, and
the predicate that tells whether a rule's area covers a point."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import shapely
from geoalchemy2 import WKBElement
from geoalchemy2.functions import ST_Covers, ST_MakePoint, ST_SetSRID
from geoalchemy2.shape import from_shape, to_shape
from shapely import MultiPolygon, Polygon
from shapely.errors import GEOSException
from shapely.geometry import shape
from shapely.validation import explain_validity
from sqlalchemy import ColumnElement, literal

from core.errors import FieldProblem, ValidationFailed
from geo.coordinates import LatLon
from models import RoutingRule

AREA_TYPES = ("Polygon", "MultiPolygon")

# Half the side of the square around a point, in degrees (about 0.1 mm). Two
# robust point-in-polygon tests can disagree only within rounding error of an
# edge, so a square this size that touches no edge leaves no doubt.
EDGE_MARGIN_DEG = 1e-9


def _refused(message: str, field: str) -> ValidationFailed:
    return ValidationFailed([FieldProblem(field, message)])


def _positions(geometry: MultiPolygon) -> Iterator[tuple[float, ...]]:
    for polygon in geometry.geoms:
        for ring in (polygon.exterior, *polygon.interiors):
            yield from ring.coords


# A MultiPolygon's coordinates are lists of polygons of rings of positions.
# Shapely reads nesting recursively: a deeper value would exhaust Python's stack.
MAX_COORDINATE_NESTING = 4


def _nests_deeper(value: object, limit: int) -> bool:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, list):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in item)
    return False


def parse_area(geojson: Mapping[str, Any], *, field: str = "area") -> MultiPolygon:
    """A GeoJSON Polygon or MultiPolygon (WGS 84, longitude first) as a valid
    MultiPolygon, or ValidationFailed naming `field`.

    Invalid shapes are refused, not repaired: a repaired self-intersecting
    drawing can cover something other than what the administrator meant.
    """
    if not isinstance(geojson, Mapping) or geojson.get("type") not in AREA_TYPES:
        raise _refused("must be a GeoJSON Polygon or MultiPolygon geometry object", field)
    if "coordinates" not in geojson:
        raise _refused("has no `coordinates`", field)
    if _nests_deeper(geojson["coordinates"], MAX_COORDINATE_NESTING):
        raise _refused("has coordinates nested deeper than a MultiPolygon's", field)
    try:
        geometry = shape(geojson)
    except (GEOSException, TypeError, ValueError, IndexError) as error:
        raise _refused(f"is not readable GeoJSON: {error}", field) from error
    if isinstance(geometry, Polygon):
        geometry = MultiPolygon([geometry])
    if not isinstance(geometry, MultiPolygon) or geometry.is_empty:
        raise _refused("must contain at least one polygon", field)
    if shapely.has_z(geometry):
        geometry = shapely.force_2d(geometry)

    for lon, lat in (position[:2] for position in _positions(geometry)):
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise _refused("coordinates must be finite numbers", field)
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            hint = (
                "; longitude and latitude look swapped (GeoJSON puts longitude first)"
                if -90.0 <= lon <= 90.0 and -180.0 <= lat <= 180.0
                else ""
            )
            raise _refused(
                f"position [{lon}, {lat}] is outside longitude -180..180, latitude -90..90{hint}",
                field,
            )
    if not geometry.is_valid:
        raise _refused(f"is not a valid polygon: {explain_validity(geometry)}", field)
    if geometry.area == 0:
        raise _refused("encloses no area", field)
    return geometry


def area_to_db(area: MultiPolygon) -> WKBElement:
    return from_shape(area, srid=4326)


def area_as_geojson(area: WKBElement) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(shapely.to_geojson(to_shape(area)))
    return result


def area_in_memory(area: WKBElement) -> shapely.Geometry:
    """A rule's area ready for `covers_for_certain` (prepared: repeated tests are fast)."""
    geometry = to_shape(area)
    shapely.prepare(geometry)
    return geometry


def covers_for_certain(area: shapely.Geometry, point: LatLon) -> bool | None:
    """Whether `area` covers the point, answered in memory only when no rounding
    can change the answer; None near an edge, where `area_covers` (PostGIS)
    decides, so that both always agree."""
    square = shapely.box(
        point.lon - EDGE_MARGIN_DEG,
        point.lat - EDGE_MARGIN_DEG,
        point.lon + EDGE_MARGIN_DEG,
        point.lat + EDGE_MARGIN_DEG,
    )
    if shapely.contains_properly(area, square):
        return True
    if not shapely.intersects(area, square):
        return False
    return None


def area_covers(point: LatLon) -> ColumnElement[bool]:
    """The rule's area covers the point; a point on the area's edge counts."""
    geom = ST_SetSRID(ST_MakePoint(literal(point.lon), literal(point.lat)), 4326)
    return ST_Covers(RoutingRule.area, geom)
