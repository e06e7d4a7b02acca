"""Hexagon heatmaps of cases, on PostGIS's hexagon tiling in a metric projection.

The grid is PostGIS's hexagon tiling (`ST_HexagonGrid`, `ST_Hexagon`) in the UTM zone of
the box's centre (EPSG:32748, zone 48 south, for Bekasi), so cells have the same size in
metres anywhere in the country; `cell_m` is the hexagon's edge length, which is also its
circumradius (PostGIS's `size`).

Placing every case with `ST_Intersects(ST_Transform(location), hexagon)` costs a
projection and a polygon test per case inside PostgreSQL, seconds for a year of a big
city. Instead every case keeps its location in zone 48 south (generated columns
`location_utm_x`, `location_utm_y`, in a narrow index with the creation time), PostgreSQL
returns the matching cases' coordinates packed in one value, and numpy gives each case
the cell (i, j) whose centre is nearest, which is the hexagon that contains it: PostGIS's
tiling puts the centre of cell (i, j) at (1.5·s·i, √3·s·(j + (i mod 2)/2)). A box in
another zone projects its cases in the query instead. Only the cells holding cases get
an outline (`ST_Hexagon`). A case exactly on a shared edge counts once, in one of the
two cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from geoalchemy2.functions import (
    ST_X,
    ST_Y,
    ST_MakeEnvelope,
    ST_Transform,
)
from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Select,
    func,
    literal,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import FieldProblem, ValidationFailed
from geo.case_filters import BBox, checked_bbox
from models import Case

if TYPE_CHECKING:
    from pyproj import Transformer

MIN_CELL_M = 50.0
MAX_CELL_M = 5_000.0
MAX_CELLS = 50_000
MAX_SIDE_M = 500_000.0
GEOJSON_DECIMALS = 6  # about 10 cm
# The zone of the stored projected locations (Case.location_utm_x, location_utm_y).
CITY_SRID = 32748

_SQRT3 = math.sqrt(3.0)


def utm_srid(lon: float, lat: float) -> int:
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32700 if lat < 0 else 32600) + zone


@lru_cache(maxsize=8)
def _to_utm(srid: int) -> Transformer:
    # Imported on the first heatmap: pyproj holds about 22 MB that an idle
    # server process does not need.
    from pyproj import Transformer

    return Transformer.from_crs(4326, srid, always_xy=True)


@lru_cache(maxsize=8)
def _from_utm(srid: int) -> Transformer:
    from pyproj import Transformer

    return Transformer.from_crs(srid, 4326, always_xy=True)


def estimated_cells(bbox: tuple[float, float, float, float], cell_m: float) -> int:
    """About how many hexagons `HexGrid.for_bbox` lays over the box (west, south,
    east, north), at most MAX_CELLS, beyond which it refuses: for pricing a
    request before it runs, without projecting (degrees as metres at the box's
    latitude)."""
    # Smaller cells and boxes beyond the map are refused when the heatmap runs.
    if not all(math.isfinite(v) for v in (*bbox, cell_m)) or cell_m < MIN_CELL_M:
        return MAX_CELLS
    cell_m = min(cell_m, MAX_CELL_M)
    west, south, east, north = (max(-180.0, min(180.0, v)) for v in bbox)
    middle = math.radians(max(-90.0, min(90.0, (south + north) / 2)))
    width = abs(east - west) * 111_320.0 * math.cos(middle)
    height = abs(north - south) * 110_574.0
    cells = (width + 2 * cell_m) * (height + 2 * cell_m) / (1.5 * _SQRT3 * cell_m**2)
    return min(MAX_CELLS, math.ceil(cells))


# PostGIS's hexagon ring (ST_Hexagon), from the centre, in units of the edge (x) and of
# the height (y), in its order.
_RING_X = np.array([-1.0, -0.5, 0.5, 1.0, 0.5, -0.5, -1.0])
_RING_Y = np.array([0.0, -0.5, -0.5, 0.0, 0.5, 0.5, 0.0])


@dataclass(frozen=True)
class HexGrid:
    bbox: BBox
    cell_m: float
    srid: int

    @classmethod
    def for_bbox(cls, bbox: BBox, cell_m: float) -> HexGrid:
        if not math.isfinite(cell_m) or not MIN_CELL_M <= cell_m <= MAX_CELL_M:
            raise ValidationFailed(
                [FieldProblem("cellM", f"must be between {MIN_CELL_M:g} and {MAX_CELL_M:g} metres")]
            )
        checked_bbox(bbox, field="bbox")
        srid = utm_srid((bbox.west + bbox.east) / 2, (bbox.south + bbox.north) / 2)
        xs, ys = _to_utm(srid).transform(
            [bbox.west, bbox.east, bbox.east, bbox.west],
            [bbox.south, bbox.south, bbox.north, bbox.north],
        )
        width, height = max(xs) - min(xs), max(ys) - min(ys)
        if not (math.isfinite(width) and math.isfinite(height)) or max(width, height) > MAX_SIDE_M:
            raise ValidationFailed(
                [FieldProblem("bbox", f"must be at most {MAX_SIDE_M / 1000:g} km on each side")]
            )
        cells = (width + 2 * cell_m) * (height + 2 * cell_m) / (1.5 * _SQRT3 * cell_m**2)
        if cells > MAX_CELLS:
            raise ValidationFailed(
                [
                    FieldProblem(
                        "bbox",
                        f"too large for {cell_m:g} m cells (about {cells:,.0f} cells, at most "
                        f"{MAX_CELLS:,}): zoom in or use larger cells",
                    )
                ]
            )
        return cls(bbox=bbox, cell_m=cell_m, srid=srid)

    def project(self, lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = _to_utm(self.srid).transform(lons, lats)
        return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)

    def cells_of(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(i, j) of PostGIS's hexagon containing each projected point."""
        column = 1.5 * self.cell_m
        row = _SQRT3 * self.cell_m
        # The nearest centre is in one of the two columns whose centres bracket x.
        i_a = np.floor(xs / column).astype(np.int64)
        i_b = i_a + 1
        offset_a = ys / row - 0.5 * (i_a % 2)
        offset_b = ys / row - 0.5 * (i_b % 2)
        j_a = np.floor(offset_a + 0.5).astype(np.int64)
        j_b = np.floor(offset_b + 0.5).astype(np.int64)
        distance_a = (xs - column * i_a) ** 2 + (row * (offset_a - j_a)) ** 2
        distance_b = (xs - column * i_b) ** 2 + (row * (offset_b - j_b)) ** 2
        take_b = distance_b < distance_a
        return np.where(take_b, i_b, i_a), np.where(take_b, j_b, j_a)

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        i, j = self.cells_of(np.array([x]), np.array([y]))
        return int(i[0]), int(j[0])

    def outlines(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """The rings of cells (i, j) as `ST_Hexagon` draws them, in longitude and
        latitude: an array of shape (cells, 7, 2)."""
        height = _SQRT3 * self.cell_m
        centre_x = 1.5 * self.cell_m * i
        centre_y = height * (j + 0.5 * (i % 2))
        xs = centre_x[:, None] + self.cell_m * _RING_X
        ys = centre_y[:, None] + height * _RING_Y
        lons, lats = _from_utm(self.srid).transform(xs.ravel(), ys.ravel())
        return np.stack([lons, lats], axis=1).reshape(len(i), len(_RING_X), 2)


def _projected(grid: HexGrid) -> tuple[ColumnElement[float], ColumnElement[float]]:
    if grid.srid == CITY_SRID:
        return Case.location_utm_x, Case.location_utm_y  # type: ignore[return-value]
    projected = ST_Transform(Case.location, grid.srid)
    return ST_X(projected), ST_Y(projected)


async def hexagon_counts(
    *, session: AsyncSession, located_cases: Select[Any], grid: HexGrid
) -> dict[str, Any]:
    """Counts of the statement's cases per hexagon: a GeoJSON FeatureCollection."""
    bbox = grid.bbox
    # For points the bounding-box operator is exactly "inside the box, edges included",
    # without ST_Intersects' second, exact test.
    envelope = ST_MakeEnvelope(bbox.west, bbox.south, bbox.east, bbox.north, 4326)
    x, y = _projected(grid)
    # x and y of each case as two big-endian float8 values, all in one bytea: cheaper
    # to build and to read than arrays of a million floats.
    points = located_cases.where(Case.location.op("&&")(envelope)).with_only_columns(
        func.string_agg(func.float8send(x).concat(func.float8send(y)), literal(b"", LargeBinary))
    )
    packed = await session.scalar(points)
    if not packed:
        return {"type": "FeatureCollection", "features": []}
    xy = np.frombuffer(packed, dtype=">f8").reshape(-1, 2).astype(np.float64)
    i, j = grid.cells_of(xy[:, 0], xy[:, 1])
    # Count per cell through one integer key per cell (np.unique on pairs is slow).
    i0, j0 = int(i.min()), int(j.min())
    width = int(j.max()) - j0 + 1
    keys, counts = np.unique((i - i0) * width + (j - j0), return_counts=True)
    cells = np.stack([keys // width + i0, keys % width + j0], axis=1)

    # Outlines computed here, not by ST_Hexagon and ST_AsGeoJSON in the database: the
    # same vertices through the same PROJ, without a round trip and a JSON parse per cell.
    rings = np.round(grid.outlines(cells[:, 0], cells[:, 1]), GEOJSON_DECIMALS).tolist()
    features = [
        {
            "type": "Feature",
            "id": f"{ci}:{cj}",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"count": count},
        }
        for (ci, cj), count, ring in zip(cells.tolist(), counts.tolist(), rings, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}
