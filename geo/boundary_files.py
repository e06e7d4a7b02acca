"""Reading the GeoJSON layers of a boundary import: each feature's code, name and
polygons, checked, reprojected to WGS 84 and repaired, with every problem reported
(by feature index and code) rather than the first."""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass, field
from typing import Any, Literal

import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError
from shapely import MultiPolygon, Polygon
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geo.boundary_checks import (
    MAX_CODE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_NESTING,
    deeper_than,
    parent_code_problem,
    text_problem,
)
from geo.quality import polygonal_parts

Layer = Literal["kelurahan", "kecamatan"]

_WGS84 = CRS.from_epsg(4326)
_POLYGONAL_TYPES = ("Polygon", "MultiPolygon")


def _where(layer: Layer, index: int | None, code: str | None) -> str:
    # Indexes count from 0, as in the file: `.features[3]` is feature #3.
    if index is not None:
        place = "feature" if layer == "kelurahan" else "kecamatan feature"
        return f"{place} #{index}" + (f" ({code})" if code else "")
    if code:
        return f"{layer} {code}"
    return f"{layer} file"


@dataclass(frozen=True)
class ImportProblem:
    index: int | None
    code: str | None
    message: str
    layer: Layer = "kelurahan"

    def __str__(self) -> str:
        return f"{_where(self.layer, self.index, self.code)}: {self.message}"


class ImportReport:
    def __init__(self) -> None:
        self.problems: list[ImportProblem] = []
        self.repairs: list[str] = []
        self.notes: list[str] = []

    def problem(self, layer: Layer, index: int | None, code: str | None, message: str) -> None:
        self.problems.append(ImportProblem(index=index, code=code, message=message, layer=layer))

    def repair(self, layer: Layer, index: int | None, code: str | None, message: str) -> None:
        self.repairs.append(f"{_where(layer, index, code)}: {message}")


@dataclass(frozen=True)
class BoundaryFeature:
    index: int
    code: str
    name: str
    geometry: MultiPolygon
    parent_code: str | None
    parent_name: str | None


@dataclass
class LayerContents:
    readable: bool
    features: list[BoundaryFeature] = field(default_factory=list)
    # Every code in the file, including those of features refused for another
    # reason, so that a broken kecamatan does not also orphan its kelurahan.
    codes: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _SourceCrs:
    label: str
    # None when the coordinates are already WGS84 lon/lat.
    transformer: Transformer | None


def read_layer(
    collection: object,
    *,
    layer: Layer,
    code_property: str,
    name_property: str,
    parent_code_property: str | None,
    parent_name_property: str | None,
    report: ImportReport,
    max_name_length: int = MAX_NAME_LENGTH,
) -> LayerContents:
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        found = (
            collection.get("type") if isinstance(collection, dict) else type(collection).__name__
        )
        report.problem(layer, None, None, f"not a GeoJSON FeatureCollection (found {found!r})")
        return LayerContents(readable=False)
    raw_features = collection.get("features")
    if not isinstance(raw_features, list):
        report.problem(layer, None, None, "the FeatureCollection has no 'features' list")
        return LayerContents(readable=False)
    if not raw_features:
        report.problem(layer, None, None, "the FeatureCollection has no features")
        return LayerContents(readable=False)
    # Features are measured one by one below, so that each too deep one is named.
    if deeper_than(
        {key: value for key, value in collection.items() if key != "features"}, MAX_NESTING
    ):
        report.problem(layer, None, None, _too_deep("the FeatureCollection", MAX_NESTING))
        return LayerContents(readable=False)
    crs = _source_crs(collection)
    if isinstance(crs, str):
        # Coordinates in an unknown system cannot be checked at all: one clear problem.
        report.problem(layer, None, None, crs)
        return LayerContents(readable=False)
    if crs.transformer is not None:
        report.repairs.append(f"{layer} file: reprojected from {crs.label} to EPSG:4326")
    report.notes.append(f"{layer} file: {len(raw_features)} features, coordinates in {crs.label}")

    first_index: dict[str, int] = {}
    features: list[BoundaryFeature] = []
    for index, raw in enumerate(raw_features):
        # Below the collection and its list of features.
        if deeper_than(raw, MAX_NESTING - 2):
            report.problem(layer, index, None, _too_deep("the feature", MAX_NESTING - 2))
            continue
        feature = _read_feature(
            index,
            raw,
            layer=layer,
            crs=crs,
            code_property=code_property,
            name_property=name_property,
            parent_code_property=parent_code_property,
            parent_name_property=parent_name_property,
            max_name_length=max_name_length,
            first_index=first_index,
            report=report,
        )
        if feature is not None:
            features.append(feature)
    return LayerContents(readable=True, features=features, codes=set(first_index))


def _too_deep(what: str, levels: int) -> str:
    return f"{what} nests lists and objects more than {levels} levels deep: not a boundary file"


def _read_feature(
    index: int,
    raw: object,
    *,
    layer: Layer,
    crs: _SourceCrs,
    code_property: str,
    name_property: str,
    parent_code_property: str | None,
    parent_name_property: str | None,
    max_name_length: int,
    first_index: dict[str, int],
    report: ImportReport,
) -> BoundaryFeature | None:
    if not isinstance(raw, dict) or raw.get("type") != "Feature":
        report.problem(layer, index, None, "not a GeoJSON Feature")
        return None
    properties = raw.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        report.problem(layer, index, None, "its 'properties' member is not an object")
        return None

    problems_before = len(report.problems)

    def text(prop: str, purpose: str, code: str | None, max_length: int) -> str | None:
        return _text_property(properties, prop, purpose, layer, index, code, max_length, report)

    code = text(code_property, "its code", None, MAX_CODE_LENGTH)
    if code is not None:
        if code in first_index:
            report.problem(
                layer, index, code, f"duplicate code, also used by feature #{first_index[code]}"
            )
        else:
            first_index[code] = index
    name = text(name_property, "its name", code, max_name_length)
    parent_code = parent_name = None
    if parent_code_property is not None:
        parent_code = text(parent_code_property, "its kecamatan", code, MAX_CODE_LENGTH)
        if code is not None and parent_code is not None:
            mismatch = parent_code_problem(code, parent_code)
            if mismatch is not None:
                report.problem(layer, index, code, mismatch)
    if parent_name_property is not None:
        parent_name = text(
            parent_name_property, "the kecamatan derived from it", code, max_name_length
        )
    geometry = _read_geometry(index, code, raw.get("geometry"), layer=layer, crs=crs, report=report)
    if len(report.problems) > problems_before:
        return None
    assert code is not None and name is not None and geometry is not None
    return BoundaryFeature(
        index=index,
        code=code,
        name=name,
        geometry=geometry,
        parent_code=parent_code,
        parent_name=parent_name,
    )


def _text_property(
    properties: dict[str, Any],
    prop: str,
    purpose: str,
    layer: Layer,
    index: int,
    code: str | None,
    max_length: int,
    report: ImportReport,
) -> str | None:
    """The stripped text of a required property, or None after reporting why not."""
    value = properties.get(prop)
    if value is None:
        report.problem(layer, index, code, f"no {prop!r} property ({purpose})")
        return None
    # Codes exported from spreadsheets or shapefiles sometimes arrive as integers.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        report.problem(
            layer, index, code, f"the {prop!r} property is not text: {reprlib.repr(value)}"
        )
        return None
    value = value.strip()
    if not value:
        report.problem(layer, index, code, f"the {prop!r} property is empty ({purpose})")
        return None
    problem = text_problem(value, max_length=max_length)
    if problem is not None:
        report.problem(layer, index, code, f"the {prop!r} property {problem} ({purpose})")
        return None
    return value


def _read_geometry(
    index: int,
    code: str | None,
    raw: object,
    *,
    layer: Layer,
    crs: _SourceCrs,
    report: ImportReport,
) -> MultiPolygon | None:
    def problem(message: str) -> None:
        report.problem(layer, index, code, message)

    if raw is None:
        problem("geometry is missing")
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        problem("geometry is not a GeoJSON geometry object")
        return None
    if raw["type"] not in _POLYGONAL_TYPES:
        problem(f"geometry is a {raw['type']}, expected Polygon or MultiPolygon")
        return None
    # Python's json module reads NaN and Infinity; refuse them before shapely sees them.
    non_finite = _count_non_finite(raw.get("coordinates"))
    if non_finite:
        problem(f"{non_finite} coordinate value(s) are not finite numbers (NaN or Infinity)")
        return None
    try:
        geometry = shape(raw)
    except (KeyError, TypeError, ValueError, ShapelyError) as error:
        problem(f"geometry cannot be read: {error}")
        return None
    if geometry.is_empty:
        problem("geometry is empty")
        return None
    geometry = shapely.force_2d(geometry)

    if crs.transformer is None:
        outside = _outside_lon_lat(geometry)
        if outside is not None:
            problem(
                f"{outside}; coordinates must be lon/lat degrees"
                " (a projected file needs a 'crs' member naming its EPSG code)"
            )
            return None
    else:
        geometry = shapely.transform(geometry, crs.transformer.transform, interleaved=False)
        outside = _outside_lon_lat(geometry)
        if outside is not None:
            problem(f"after reprojection from {crs.label}, {outside}")
            return None

    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        repaired = shapely.make_valid(geometry)
        polygons = polygonal_parts(repaired)
        if not polygons:
            problem(f"geometry is invalid ({reason}) and repairing it leaves nothing polygonal")
            return None
        geometry = MultiPolygon(polygons)
        if not geometry.is_valid:
            problem(
                f"geometry is invalid ({reason}) and still invalid after repair"
                f" ({shapely.is_valid_reason(geometry)})"
            )
            return None
        dropped = "" if repaired.geom_type in _POLYGONAL_TYPES else ", non-polygonal parts dropped"
        report.repair(
            layer, index, code, f"invalid geometry ({reason}) repaired with make_valid{dropped}"
        )

    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    assert isinstance(geometry, MultiPolygon)
    return geometry


def _count_non_finite(value: object) -> int:
    if isinstance(value, float):
        return 0 if math.isfinite(value) else 1
    if isinstance(value, list | tuple):
        return sum(_count_non_finite(item) for item in value)
    return 0


def _outside_lon_lat(geometry: BaseGeometry) -> str | None:
    outside = [
        (x, y)
        for x, y in shapely.get_coordinates(geometry).tolist()
        if not (math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90)
    ]
    if not outside:
        return None
    x, y = outside[0]
    return (
        f"{len(outside)} coordinate(s) outside lon -180..180, lat -90..90"
        f" or not finite, e.g. ({x!r}, {y!r})"
    )


def _source_crs(collection: dict[str, Any]) -> _SourceCrs | str:
    """The file's coordinate system, or a message saying why it cannot be used."""
    if "crs" not in collection:
        return _SourceCrs(label="EPSG:4326 (RFC 7946, no crs member)", transformer=None)
    member = collection["crs"]
    name = _legacy_crs_name(member)
    if name is None:
        return f"unsupported 'crs' member {reprlib.repr(member)}; expected a named CRS"
    try:
        crs = CRS.from_user_input(name)
    except CRSError as error:
        return f"unknown coordinate reference system {name!r}: {error}"
    # GeoJSON writers put longitude first even when they name EPSG:4326, whose
    # official axis order is lat/lon; so 4326 and CRS84 both mean lon/lat here.
    if crs.equals(_WGS84, ignore_axis_order=True):
        return _SourceCrs(label=crs.to_string(), transformer=None)
    label = f"{crs.to_string()} ({crs.name})"
    if not (crs.is_geographic or crs.is_projected):
        return f"coordinate reference system {label} is neither geographic nor projected"
    try:
        transformer = Transformer.from_crs(crs, _WGS84, always_xy=True)
    except ProjError as error:
        return f"cannot reproject from {label} to EPSG:4326: {error}"
    return _SourceCrs(label=label, transformer=transformer)


def _legacy_crs_name(member: object) -> str | None:
    # GeoJSON 2008 named CRS:
    # {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32748"}}
    if not isinstance(member, dict):
        return None
    properties = member.get("properties")
    if not isinstance(properties, dict):
        return None
    if member.get("type") == "name" and isinstance(properties.get("name"), str):
        return str(properties["name"])
    # Older drafts: {"type": "EPSG", "properties": {"code": 32748}}
    if member.get("type") == "EPSG" and isinstance(properties.get("code"), int | str):
        return f"EPSG:{properties['code']}"
    return None
