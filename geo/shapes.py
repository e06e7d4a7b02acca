"""Conversions between stored geometries and plain values, in one place."""

from __future__ import annotations

from geoalchemy2 import WKBElement
from geoalchemy2.shape import to_shape

from geo.coordinates import LatLon


def point_lat_lon(geometry: WKBElement) -> LatLon:
    point = to_shape(geometry)
    return LatLon(lat=point.y, lon=point.x)
