"""An approximate boundary set built from the shipped facts alone (no database).

The project may ship one interior point per kelurahan and a simplified city
outline, but not the kelurahan polygons. The Voronoi cells of those points,
clipped to the outline, tile the city with the right codes, names and tree, so
routing can be developed and demonstrated before the official boundaries are
imported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np
import shapely
from shapely import MultiPoint, MultiPolygon, Point, Polygon
from shapely.geometry import shape

from geo.areas import AreaInput, BoundarySetInput

DATA_DIR = Path(__file__).parent / "data"
POINTS_FILE = DATA_DIR / "kelurahan_points.csv"
OUTLINE_FILE = DATA_DIR / "city_outline.geojson"

SOURCE = "seed: approximate Voronoi cells of kelurahan interior points, clipped to the city outline"
ACCURACY_NOTE = (
    "Approximate, for development and demos only. Each kelurahan is the Voronoi cell of one "
    "point inside it, clipped to a city outline simplified to 150 m, so borders may be off by "
    "hundreds of metres and reports near a border may be routed to the wrong kelurahan. "
    "Codes, names and the kecamatan tree are official. Import the official boundaries with "
    "`python -m geo <kelurahan.geojson> --commit --activate`."
)

# About 1 cm. Rounding makes the content hash, and so the idempotence of the
# seed, independent of the last bits a particular GEOS version computes.
COORDINATE_DECIMALS = 7
# About 11 cm, well above the rounding. Clipping to the exact outline leaves
# each new vertex where a cell border crosses the outline a hair inside or
# outside it, so the union would miss slivers of the outline one ulp wide;
# clipping to a slightly grown outline makes the union cover it exactly.
CLIP_MARGIN_DEG = 1e-6
# The Voronoi diagram must reach beyond the outline on every side, or the
# outermost cells would be cut short before clipping.
VORONOI_EXTENT_MARGIN_DEG = 0.05


@dataclass(frozen=True)
class KelurahanFact:
    code: str
    name: str
    kecamatan_code: str
    kecamatan_name: str
    point: Point


def read_kelurahan_facts(path: Path = POINTS_FILE) -> list[KelurahanFact]:
    with path.open(newline="", encoding="utf-8") as handle:
        facts = [
            KelurahanFact(
                code=row["code"],
                name=row["name"],
                kecamatan_code=row["kecamatan_code"],
                kecamatan_name=row["kecamatan"],
                point=Point(float(row["lon"]), float(row["lat"])),
            )
            for row in csv.DictReader(handle)
        ]
    for fact in facts:
        # Kemendagri codes nest: 32.75.01.1001 lies in kecamatan 32.75.01.
        if fact.code[:8] != fact.kecamatan_code:
            raise ValueError(f"kelurahan {fact.code} lists kecamatan {fact.kecamatan_code}")
    if len({fact.code for fact in facts}) != len(facts):
        raise ValueError(f"{path.name} repeats a kelurahan code")
    return facts


def read_city_outline(path: Path = OUTLINE_FILE) -> Polygon:
    feature = json.loads(path.read_text(encoding="utf-8"))
    outline = shape(feature["geometry"])
    if not isinstance(outline, Polygon) or not outline.is_valid:
        raise ValueError(f"{path.name} must hold one valid Polygon")
    return outline


def build_approximate_boundaries() -> BoundarySetInput:
    facts = read_kelurahan_facts()
    outline = read_city_outline()
    cells = voronoi_cells([fact.point for fact in facts], outline)

    kelurahan = [
        AreaInput(
            code=fact.code,
            name=fact.name,
            geometry=cell,
            parent_code=fact.kecamatan_code,
        )
        for fact, cell in zip(facts, cells, strict=True)
    ]

    kecamatan = []
    by_kecamatan = sorted(zip(facts, cells, strict=True), key=lambda pair: pair[0].kecamatan_code)
    for code, group in groupby(by_kecamatan, key=lambda pair: pair[0].kecamatan_code):
        members = list(group)
        names = {fact.kecamatan_name for fact, _ in members}
        if len(names) != 1:
            raise ValueError(f"kecamatan {code} has several names: {sorted(names)}")
        kecamatan.append(
            AreaInput(
                code=code,
                name=names.pop(),
                geometry=_normalise(shapely.union_all([cell for _, cell in members])),
            )
        )

    return BoundarySetInput(
        source=SOURCE,
        accuracy_note=ACCURACY_NOTE,
        is_approximate=True,
        kecamatan=kecamatan,
        kelurahan=kelurahan,
        quality={
            "method": "voronoi cells of kelurahan interior points",
            "outline_simplified_m": 150,
            "coordinate_decimals": COORDINATE_DECIMALS,
        },
    )


def voronoi_cells(points: list[Point], outline: Polygon) -> list[MultiPolygon]:
    """One cell per point, in the order of `points`, clipped to `outline`."""
    extent = shapely.box(*outline.bounds).buffer(VORONOI_EXTENT_MARGIN_DEG, join_style="mitre")
    diagram = shapely.voronoi_polygons(MultiPoint(points), extend_to=extent)
    clip = outline.buffer(CLIP_MARGIN_DEG, join_style="mitre")

    # Match cells to points by containment rather than trusting output order,
    # which GEOS only promises from 3.12 on.
    raw = list(diagram.geoms)
    cells = []
    for point in points:
        owners = [cell for cell in raw if cell.contains(point)]
        if len(owners) != 1:
            raise ValueError(f"point {point.wkt} lies in {len(owners)} Voronoi cells")
        cells.append(_normalise(owners[0].intersection(clip)))
    return cells


def _normalise(geometry: shapely.Geometry) -> MultiPolygon:
    rounded = shapely.transform(geometry, lambda xy: np.round(xy, COORDINATE_DECIMALS))
    if not rounded.is_valid:
        rounded = shapely.make_valid(rounded)
    polygons = list(_polygons(rounded))
    if not polygons:
        raise ValueError("a cell vanished after clipping to the outline")
    return MultiPolygon(polygons)


def _polygons(geometry: shapely.Geometry) -> Iterable[Polygon]:
    if isinstance(geometry, Polygon):
        if not geometry.is_empty:
            yield geometry
    elif isinstance(geometry, MultiPolygon | shapely.GeometryCollection):
        for part in geometry.geoms:
            yield from _polygons(part)
