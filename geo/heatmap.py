"""Hexagon heatmaps of cases, on PostGIS's hexagon tiling in a metric projection.

The grid is `ST_HexagonGrid` in the UTM zone of the box's centre (EPSG:32748, zone 48
south, for Bekasi), so cells have the same size in metres anywhere in the country;
`cell_m` is the hexagon's edge length, which is also its circumradius (PostGIS's `size`).

Placing every case in its cell with `ST_Intersects(ST_Transform(location), hexagon)`
costs a projection per case (about 1.5 µs in PostGIS: 0.75 s for a year of a big
city). Instead each case's lon/lat is mapped into UTM with a cubic polynomial fitted to
PROJ over the box, checked to within a centimetre (a box too big for that is refused),
and its cell (i, j) is the hexagon whose centre is nearest, which is the hexagon that
contains it; PostGIS's tiling puts the centre of cell (i, j) at (1.5·s·i, √3·s·(j + ½·(i
mod 2))). Only the cells that hold cases are then joined to `ST_HexagonGrid`'s cells
for their outlines. A case exactly on a shared edge counts once, in one of the cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
from geoalchemy2.functions import ST_X, ST_Y, ST_AsGeoJSON, ST_Expand, ST_MakeEnvelope, ST_Transform
from pyproj import Transformer
from sqlalchemy import Float, Integer, Select, and_, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import FieldProblem, ValidationFailed
from geo.case_filters import BBox, checked_bbox, inside_bbox
from models import Case

MIN_CELL_M = 50.0
MAX_CELL_M = 5_000.0
MAX_CELLS = 50_000
MAX_SIDE_M = 500_000.0
# Largest error allowed between the fitted polynomial and PROJ, in metres.
MAX_FIT_ERROR_M = 0.01
GEOJSON_DECIMALS = 6  # about 10 cm

_SQRT3 = math.sqrt(3.0)
# Exponents (of Δlon, Δlat) of the cubic's terms.
_TERMS = ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2), (3, 0), (2, 1), (1, 2), (0, 3))


def utm_srid(lon: float, lat: float) -> int:
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32700 if lat < 0 else 32600) + zone


@lru_cache(maxsize=8)
def _to_utm(srid: int) -> Transformer:
    return Transformer.from_crs(4326, srid, always_xy=True)


@dataclass(frozen=True)
class Projection:
    """lon/lat → UTM metres as two cubic polynomials of (lon - lon0, lat - lat0)."""

    srid: int
    lon0: float
    lat0: float
    x_coefficients: tuple[float, ...]
    y_coefficients: tuple[float, ...]

    @classmethod
    def fit(cls, bbox: BBox, srid: int) -> tuple[Projection, float]:
        """The fitted projection and its largest error over the box, in metres."""
        lon0, lat0 = (bbox.west + bbox.east) / 2, (bbox.south + bbox.north) / 2
        transformer = _to_utm(srid)

        def sample(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            lons, lats = np.meshgrid(
                np.linspace(bbox.west, bbox.east, n), np.linspace(bbox.south, bbox.north, n)
            )
            xs, ys = transformer.transform(lons.ravel(), lats.ravel())
            design = _design(lons.ravel() - lon0, lats.ravel() - lat0)
            return design, np.asarray(xs), np.asarray(ys)

        design, xs, ys = sample(9)
        x_coefficients = np.linalg.lstsq(design, xs, rcond=None)[0]
        y_coefficients = np.linalg.lstsq(design, ys, rcond=None)[0]
        check, check_xs, check_ys = sample(14)  # other points than those fitted
        error = float(
            np.max(np.hypot(check @ x_coefficients - check_xs, check @ y_coefficients - check_ys))
        )
        projection = cls(
            srid=srid,
            lon0=lon0,
            lat0=lat0,
            x_coefficients=tuple(float(c) for c in x_coefficients),
            y_coefficients=tuple(float(c) for c in y_coefficients),
        )
        return projection, error

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        row = _design(np.array([lon - self.lon0]), np.array([lat - self.lat0]))[0]
        return float(row @ self.x_coefficients), float(row @ self.y_coefficients)

    def sql_xy(self, lon: Any, lat: Any) -> tuple[Any, Any]:
        u, v = lon - self.lon0, lat - self.lat0
        powers: list[Any] = [u**a * v**b if a or b else None for a, b in _TERMS]

        def polynomial(coefficients: tuple[float, ...]) -> Any:
            expression: Any = coefficients[0]
            for coefficient, power in zip(coefficients[1:], powers[1:], strict=True):
                expression = expression + coefficient * power
            return expression

        return polynomial(self.x_coefficients), polynomial(self.y_coefficients)


def _design(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.column_stack([u**a * v**b for a, b in _TERMS])


@dataclass(frozen=True)
class HexGrid:
    bbox: BBox
    cell_m: float
    projection: Projection

    @classmethod
    def for_bbox(cls, bbox: BBox, cell_m: float) -> HexGrid:
        if not math.isfinite(cell_m) or not MIN_CELL_M <= cell_m <= MAX_CELL_M:
            raise ValidationFailed(
                [FieldProblem("cellM", f"must be between {MIN_CELL_M:g} and {MAX_CELL_M:g} metres")]
            )
        checked_bbox(bbox, field="bbox")
        srid = utm_srid((bbox.west + bbox.east) / 2, (bbox.south + bbox.north) / 2)
        transformer = _to_utm(srid)
        corners = [
            transformer.transform(lon, lat)
            for lon, lat in (
                (bbox.west, bbox.south),
                (bbox.east, bbox.south),
                (bbox.east, bbox.north),
                (bbox.west, bbox.north),
            )
        ]
        width = max(x for x, _ in corners) - min(x for x, _ in corners)
        height = max(y for _, y in corners) - min(y for _, y in corners)
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
        projection, error = Projection.fit(bbox, srid)
        if error > MAX_FIT_ERROR_M:
            raise ValidationFailed(
                [FieldProblem("bbox", "too large to place cases in cells exactly: zoom in")]
            )
        return cls(bbox=bbox, cell_m=cell_m, projection=projection)

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """The (i, j) of PostGIS's hexagon containing the UTM point (pure Python twin of SQL)."""
        column = 1.5 * self.cell_m
        row = _SQRT3 * self.cell_m
        i0 = math.floor(x / column)
        best: tuple[float, int, int] | None = None
        for i in (i0, i0 + 1):
            offset = y / row - 0.5 * (i % 2)
            j = math.floor(offset + 0.5)
            distance = (x - column * i) ** 2 + (row * (offset - j)) ** 2
            if best is None or distance < best[0]:
                best = (distance, i, j)
        assert best is not None
        return best[1], best[2]


def _fenced(statement: Select[Any], name: str) -> Any:
    # OFFSET 0 keeps PostgreSQL from inlining the subquery, which would repeat
    # its expressions in every place the outer query uses them.
    return statement.offset(0).subquery(name)


def _cells(located_cases: Select[Any], grid: HexGrid) -> Any:
    """(i, j, count) of the cells that hold at least one case of the statement."""
    points = _fenced(
        located_cases.where(inside_bbox(grid.bbox)).with_only_columns(
            ST_X(Case.location).label("lon"), ST_Y(Case.location).label("lat")
        ),
        "points",
    )
    x, y = grid.projection.sql_xy(points.c.lon, points.c.lat)
    metric = _fenced(select(x.label("x"), y.label("y")), "metric")
    column = 1.5 * grid.cell_m
    row = _SQRT3 * grid.cell_m
    i0 = cast(func.floor(metric.c.x / column), Integer)
    offset_a = metric.c.y / row - 0.5 * (i0 % 2)
    offset_b = metric.c.y / row - 0.5 * ((i0 + 1) % 2)
    candidates = _fenced(
        select(
            metric.c.x,
            i0.label("i0"),
            offset_a.label("offset_a"),
            offset_b.label("offset_b"),
            cast(func.floor(offset_a + 0.5), Integer).label("j_a"),
            cast(func.floor(offset_b + 0.5), Integer).label("j_b"),
        ),
        "candidates",
    )
    c = candidates.c
    distance_a = func.power(c.x - column * c.i0, 2) + func.power(row * (c.offset_a - c.j_a), 2)
    distance_b = func.power(c.x - column * (c.i0 + 1), 2) + func.power(
        row * (c.offset_b - c.j_b), 2
    )
    take_b = distance_b < distance_a
    i = case((take_b, c.i0 + 1), else_=c.i0).label("i")
    j = case((take_b, c.j_b), else_=c.j_a).label("j")
    return select(i, j, func.count().label("count")).group_by(i, j).subquery("cells")


async def hexagon_counts(
    *, session: AsyncSession, located_cases: Select[Any], grid: HexGrid
) -> dict[str, Any]:
    cells = _cells(located_cases, grid)
    bbox = grid.bbox
    bounds = ST_Expand(
        ST_Transform(
            ST_MakeEnvelope(bbox.west, bbox.south, bbox.east, bbox.north, 4326),
            grid.projection.srid,
        ),
        grid.cell_m,
    )
    hexagons = func.ST_HexagonGrid(cast(grid.cell_m, Float), bounds).table_valued(
        "geom", "i", "j", name="hexagons"
    )
    rows = await session.execute(
        select(
            hexagons.c.i,
            hexagons.c.j,
            cells.c.count,
            ST_AsGeoJSON(ST_Transform(hexagons.c.geom, 4326), GEOJSON_DECIMALS),
        )
        .join(cells, and_(cells.c.i == hexagons.c.i, cells.c.j == hexagons.c.j))
        .order_by(hexagons.c.i, hexagons.c.j)
    )
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": f"{i}:{j}",
                "geometry": orjson.loads(geometry),
                "properties": {"count": int(count)},
            }
            for i, j, count, geometry in rows
        ],
    }
