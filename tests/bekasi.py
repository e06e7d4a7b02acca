"""Test points derived from the official Bekasi boundary file, in pure shapely.

Distances are worked out in UTM zone 48S (EPSG:32748), which covers Bekasi
with negligible scale error.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import shapely
from pyproj import Transformer
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

_TO_UTM = Transformer.from_crs(4326, 32748, always_xy=True).transform


def _to_utm(x: object, y: object) -> object:
    return _TO_UTM(x, y)


_TO_LONLAT = Transformer.from_crs(32748, 4326, always_xy=True).transform


@dataclass(frozen=True)
class KelurahanShape:
    code: str
    name: str
    kecamatan_code: str
    utm: BaseGeometry


@cache
def kelurahan_shapes(path: Path) -> tuple[KelurahanShape, ...]:
    collection = json.loads((path / "kelurahan.geojson").read_text())
    return tuple(
        KelurahanShape(
            code=f["properties"]["code"],
            name=f["properties"]["name"],
            kecamatan_code=f["properties"]["kecamatan_code"],
            utm=shapely.transform(shape(f["geometry"]), _to_utm, interleaved=False),
        )
        for f in collection["features"]
    )


def to_lat_lon(point: Point) -> tuple[float, float]:
    lon, lat = _TO_LONLAT(point.x, point.y)
    return lat, lon


def points_inside(
    area: BaseGeometry, *, margin_m: float, count: int, rng: random.Random
) -> list[Point]:
    inner = area.buffer(-margin_m)
    minx, miny, maxx, maxy = inner.bounds
    points: list[Point] = []
    while len(points) < count:
        candidate = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if inner.contains(candidate):
            points.append(candidate)
    return points


def city(path: Path) -> BaseGeometry:
    return shapely.union_all([k.utm for k in kelurahan_shapes(path)])


def gap_points(path: Path) -> list[Point]:
    """A point inside each hole the simplified boundaries leave within the city."""
    union = city(path)
    holes = [
        shapely.Polygon(ring)
        for poly in getattr(union, "geoms", [union])
        for ring in poly.interiors
    ]
    return [hole.representative_point() for hole in holes if hole.area > 1.0]


def overlap_points(path: Path) -> list[tuple[Point, set[str]]]:
    """A point inside each overlap sliver, with the two codes that claim it."""
    shapes = kelurahan_shapes(path)
    tree = shapely.STRtree([k.utm for k in shapes])
    found: list[tuple[Point, set[str]]] = []
    for i, kel in enumerate(shapes):
        for j in tree.query(kel.utm, predicate="intersects"):
            if j <= i:
                continue
            overlap = kel.utm.intersection(shapes[j].utm)
            if overlap.area > 5.0:
                found.append((overlap.representative_point(), {kel.code, shapes[j].code}))
    return found


def points_outside(path: Path, *, distance_m: float, count: int) -> list[Point]:
    ring = city(path).buffer(distance_m).exterior
    return [ring.interpolate(i / count, normalized=True) for i in range(count)]


def interior_lat_lon(path: Path, code: str, *, margin_m: float = 50.0) -> tuple[float, float]:
    """A point at least `margin_m` inside kelurahan `code`."""
    kel = next(k for k in kelurahan_shapes(path) if k.code == code)
    return to_lat_lon(kel.utm.buffer(-margin_m).representative_point())
