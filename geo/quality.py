"""Topology quality of a kelurahan layer: where neighbours overlap and where
the city is not covered at all. Pure shapely and pyproj, no database.

Both matter for routing: a point in an overlap matches two kelurahan, a point
in a gap matches none. Boundaries simplified one polygon at a time (as the
official Bekasi data are) always leave thin slivers of both kinds, so the
report measures them instead of treating any sliver as an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from pyproj import Geod
from shapely import GeometryCollection, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry, BaseMultipartGeometry

from geo.areas import AreaInput

# Areas are geodesic, measured on the WGS84 ellipsoid: no projection to choose,
# and correct for a boundary set anywhere. Within Bekasi they differ from UTM 48S
# (the projection used in the data README) by about 0.04 %.
AREA_METHOD = "geodesic on the WGS84 ellipsoid (pyproj.Geod.geometry_area_perimeter)"
_GEOD = Geod(ellps="WGS84")

# Intersections and unions of polygons that share vertices leave pieces of a
# few square millimetres: floating-point noise, not boundary disagreements.
SPECK_M2 = 0.01


def area_m2(geometry: BaseGeometry) -> float:
    area, _perimeter = _GEOD.geometry_area_perimeter(geometry)
    return abs(area)


def polygonal_parts(geometry: BaseGeometry) -> list[Polygon]:
    """The non-empty polygons in any geometry, collections included."""
    if isinstance(geometry, Polygon):
        return [] if geometry.is_empty else [geometry]
    if isinstance(geometry, BaseMultipartGeometry):
        return [polygon for part in geometry.geoms for polygon in polygonal_parts(part)]
    return []


@dataclass(frozen=True)
class Overlap:
    first_code: str
    second_code: str
    area_m2: float


@dataclass(frozen=True)
class OverlapStats:
    pairs: int
    pieces: int
    total_area_m2: float
    largest: Overlap | None
    specks_ignored: int


@dataclass(frozen=True)
class Gap:
    area_m2: float
    # (lon, lat) of a point inside the gap, for finding it on a map.
    point: tuple[float, float]


@dataclass(frozen=True)
class GapStats:
    count: int
    total_area_m2: float
    largest: Gap | None
    specks_ignored: int


@dataclass(frozen=True)
class QualityReport:
    kelurahan_count: int
    overlaps: OverlapStats
    gaps: GapStats

    def to_dict(self) -> dict[str, Any]:
        largest_overlap = self.overlaps.largest
        largest_gap = self.gaps.largest
        return {
            "area_method": AREA_METHOD,
            "speck_threshold_m2": SPECK_M2,
            "kelurahan_count": self.kelurahan_count,
            "overlaps": {
                "pairs": self.overlaps.pairs,
                "pieces": self.overlaps.pieces,
                "total_area_m2": _round_m2(self.overlaps.total_area_m2),
                "largest": None
                if largest_overlap is None
                else {
                    "codes": [largest_overlap.first_code, largest_overlap.second_code],
                    "area_m2": _round_m2(largest_overlap.area_m2),
                },
                "specks_ignored": self.overlaps.specks_ignored,
            },
            "gaps": {
                "count": self.gaps.count,
                "total_area_m2": _round_m2(self.gaps.total_area_m2),
                "largest": None
                if largest_gap is None
                else {
                    "area_m2": _round_m2(largest_gap.area_m2),
                    "point": [round(largest_gap.point[0], 7), round(largest_gap.point[1], 7)],
                },
                "specks_ignored": self.gaps.specks_ignored,
            },
        }

    def summary_lines(self) -> list[str]:
        overlaps, gaps = self.overlaps, self.gaps
        overlap_line = (
            f"overlaps: {overlaps.pairs} pairs of kelurahan overlap in {overlaps.pieces} pieces,"
            f" {overlaps.total_area_m2:,.0f} m² in total"
        )
        if overlaps.largest is not None:
            overlap_line += (
                f"; largest {overlaps.largest.area_m2:,.0f} m²"
                f" between {overlaps.largest.first_code} and {overlaps.largest.second_code}"
            )
        gap_line = f"gaps: {gaps.count} holes in the union, {gaps.total_area_m2:,.0f} m² in total"
        if gaps.largest is not None:
            lon, lat = gaps.largest.point
            gap_line += f"; largest {gaps.largest.area_m2:,.0f} m² at ({lon:.6f}, {lat:.6f})"
        return [
            f"quality of {self.kelurahan_count} kelurahan (geodesic areas, WGS84 ellipsoid):",
            f"  {overlap_line}",
            f"  {gap_line}",
            f"  ignored as noise: {overlaps.specks_ignored + gaps.specks_ignored}"
            f" specks below {SPECK_M2} m²",
        ]


def _round_m2(value: float) -> float:
    return round(value, 2)


def measure_quality(kelurahan: Sequence[AreaInput]) -> QualityReport:
    geometries = [area.geometry for area in kelurahan]
    return QualityReport(
        kelurahan_count=len(kelurahan),
        overlaps=_measure_overlaps([area.code for area in kelurahan], geometries),
        gaps=_measure_gaps(geometries),
    )


def _measure_overlaps(codes: Sequence[str], geometries: Sequence[MultiPolygon]) -> OverlapStats:
    pairs = pieces = specks = 0
    total = 0.0
    largest: Overlap | None = None
    if len(geometries) < 2:
        return OverlapStats(pairs=0, pieces=0, total_area_m2=0.0, largest=None, specks_ignored=0)
    tree = shapely.STRtree(geometries)
    # Bounding boxes that meet only give candidates; the exact test is below.
    left, right = tree.query(geometries, predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        kept, ignored = _split_specks(
            polygonal_parts(shapely.intersection(geometries[i], geometries[j]))
        )
        specks += ignored
        if not kept:
            continue
        pairs += 1
        pieces += len(kept)
        pair_area = sum(kept)
        total += pair_area
        if largest is None or pair_area > largest.area_m2:
            first, second = sorted((codes[i], codes[j]))
            largest = Overlap(first_code=first, second_code=second, area_m2=pair_area)
    return OverlapStats(
        pairs=pairs, pieces=pieces, total_area_m2=total, largest=largest, specks_ignored=specks
    )


def _measure_gaps(geometries: Sequence[MultiPolygon]) -> GapStats:
    union = shapely.union_all(geometries) if geometries else GeometryCollection()
    holes = [Polygon(ring) for polygon in polygonal_parts(union) for ring in polygon.interiors]
    count = specks = 0
    total = 0.0
    largest: Gap | None = None
    for hole in holes:
        area = area_m2(hole)
        if area < SPECK_M2:
            specks += 1
            continue
        count += 1
        total += area
        if largest is None or area > largest.area_m2:
            point = hole.representative_point()
            largest = Gap(area_m2=area, point=(point.x, point.y))
    return GapStats(count=count, total_area_m2=total, largest=largest, specks_ignored=specks)


def _split_specks(polygons: Iterable[Polygon]) -> tuple[list[float], int]:
    kept: list[float] = []
    ignored = 0
    for polygon in polygons:
        area = area_m2(polygon)
        if area < SPECK_M2:
            ignored += 1
        else:
            kept.append(area)
    return kept, ignored
