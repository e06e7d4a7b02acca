from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyproj import Transformer
from shapely import MultiPolygon, Point, Polygon, box, transform
from shapely.geometry import shape

from geo.areas import AreaInput
from geo.quality import SPECK_M2, measure_quality

# An equal-area projection centred on Bekasi: areas drawn in its metres are
# true ellipsoidal areas, so expected values can be written down exactly.
_TO_LON_LAT = Transformer.from_crs(
    "+proj=laea +lat_0=-6.25 +lon_0=107.0 +ellps=WGS84", "EPSG:4326", always_xy=True
)


def _lon_lat(polygon: Polygon) -> Polygon:
    return transform(polygon, _TO_LON_LAT.transform, interleaved=False)


def _area(code: str, minx: float, miny: float, maxx: float, maxy: float) -> AreaInput:
    """A rectangle given in metres east and north of (107.0, -6.25)."""
    return _polygon_area(code, box(minx, miny, maxx, maxy))


def _polygon_area(code: str, polygon: Polygon) -> AreaInput:
    return AreaInput(code=code, name=code, geometry=MultiPolygon([_lon_lat(polygon)]))


def test_two_squares_overlapping_by_a_10_by_100_metre_strip() -> None:
    report = measure_quality(
        [_area("a", 0, 0, 100, 100), _area("b", 90, 0, 190, 100), _area("far", 500, 0, 600, 100)]
    )

    assert report.kelurahan_count == 3
    assert report.overlaps.pairs == 1
    assert report.overlaps.pieces == 1
    assert report.overlaps.total_area_m2 == pytest.approx(1_000, rel=1e-3)
    assert report.overlaps.largest is not None
    assert (report.overlaps.largest.first_code, report.overlaps.largest.second_code) == ("a", "b")
    assert report.overlaps.largest.area_m2 == pytest.approx(1_000, rel=1e-3)
    assert report.gaps.count == 0
    assert report.gaps.largest is None


def test_a_void_enclosed_by_four_neighbours_is_one_gap() -> None:
    # Four neighbours that only touch, around a 20 m x 30 m void. West and east
    # carry the corners of the others as vertices, so that shared edges stay
    # shared once projected.
    west = Polygon([(0, 0), (100, 0), (100, 50), (100, 80), (100, 130), (0, 130)])
    east = Polygon([(120, 0), (220, 0), (220, 130), (120, 130), (120, 80), (120, 50)])
    report = measure_quality(
        [
            _polygon_area("west", west),
            _polygon_area("east", east),
            _area("south", 100, 0, 120, 50),
            _area("north", 100, 80, 120, 130),
        ]
    )

    assert report.overlaps.pairs == 0
    assert report.overlaps.total_area_m2 == 0
    assert report.gaps.count == 1
    assert report.gaps.total_area_m2 == pytest.approx(600, rel=1e-3)
    assert report.gaps.largest is not None
    assert report.gaps.largest.area_m2 == pytest.approx(600, rel=1e-3)
    void = _lon_lat(box(100, 50, 120, 80))
    assert void.contains(Point(report.gaps.largest.point))


def test_overlaps_below_the_speck_threshold_are_ignored() -> None:
    # 1 mm x 100 m = 0.1 m² is kept; 0.1 mm x 1 mm is noise.
    report = measure_quality(
        [
            _area("a", 0, 0, 100, 100),
            _area("b", 99.999, 0, 200, 100),
            _area("c", 0, 99.9999, 0.001, 200),
        ]
    )

    assert report.overlaps.pairs == 1
    assert report.overlaps.total_area_m2 == pytest.approx(0.1, rel=1e-2)
    assert report.overlaps.specks_ignored == 1
    assert SPECK_M2 == 0.01


def test_report_is_json_serialisable() -> None:
    report = measure_quality([_area("a", 0, 0, 100, 100), _area("b", 90, 0, 190, 100)])

    data = json.loads(json.dumps(report.to_dict()))

    assert data["overlaps"]["pairs"] == 1
    assert data["overlaps"]["largest"]["codes"] == ["a", "b"]
    assert data["gaps"]["largest"] is None
    assert "geodesic" in data["area_method"]


def test_no_kelurahan_measures_nothing() -> None:
    report = measure_quality([])

    assert report.overlaps.pairs == 0
    assert report.gaps.count == 0


def test_real_bekasi_numbers_match_the_data_readme(shared_data_dir: Path) -> None:
    collection = json.loads((shared_data_dir / "kelurahan.geojson").read_text(encoding="utf-8"))
    kelurahan = [
        AreaInput(
            code=feature["properties"]["code"],
            name=feature["properties"]["name"],
            geometry=MultiPolygon([shape(feature["geometry"])]),
            parent_code=feature["properties"]["kecamatan_code"],
        )
        for feature in collection["features"]
    ]

    report = measure_quality(kelurahan)

    # README figures were measured in UTM 48S; ours are geodesic, hence "close".
    assert report.overlaps.pairs == 81
    assert report.overlaps.pieces == 176
    assert report.overlaps.total_area_m2 == pytest.approx(75_544, rel=0.02)
    assert report.overlaps.largest is not None
    assert report.overlaps.largest.first_code == "32.75.02.1005"
    assert report.overlaps.largest.second_code == "32.75.04.1004"
    assert report.overlaps.largest.area_m2 == pytest.approx(6_012, rel=0.02)
    # The README counts 150 holes; five of them are below a square millimetre
    # (floating-point noise of the union), which the report sets aside.
    assert report.gaps.count + report.gaps.specks_ignored == 150
    assert report.gaps.count == pytest.approx(150, rel=0.04)
    assert report.gaps.total_area_m2 == pytest.approx(55_680, rel=0.02)
    assert report.gaps.largest is not None
    assert report.gaps.largest.area_m2 == pytest.approx(4_025, rel=0.02)
