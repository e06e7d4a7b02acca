"""Import kelurahan (and kecamatan) boundaries from GeoJSON as a new boundary set.

`plan_import` is pure: it parses, checks, repairs and measures, and reports
every problem at once so that a bad file is fixed in one round. Only an ok
plan can be written, by `import_boundaries`, inside the caller's transaction.
The command line is a dry run until `--commit`:

    python -m geo.importer kelurahan.geojson [--kecamatan kecamatan.geojson] [--commit [--activate]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import shapely
from pydantic import ValidationError
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError
from shapely import MultiPolygon, Polygon
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from core.database import create_engine, create_session_factory
from core.errors import ImportRefused
from core.settings import Settings
from geo.areas import AreaInput, BoundarySetInput
from geo.quality import QualityReport, measure_quality, polygonal_parts
from geo.store import activate_boundary_set, write_boundary_set

Layer = Literal["kelurahan", "kecamatan"]

DEFAULT_ACCURACY_NOTE = "official boundaries as imported"

_WGS84 = CRS.from_epsg(4326)
_POLYGONAL_TYPES = ("Polygon", "MultiPolygon")


@dataclass(frozen=True, kw_only=True)
class ImportOptions:
    source: str
    code_property: str = "code"
    name_property: str = "name"
    parent_code_property: str = "kecamatan_code"
    # Only read when the kecamatan are derived by dissolving the kelurahan.
    parent_name_property: str = "kecamatan"
    kecamatan_code_property: str = "code"
    kecamatan_name_property: str = "name"
    accuracy_note: str = DEFAULT_ACCURACY_NOTE
    is_approximate: bool = False


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


@dataclass
class ImportPlan:
    problems: list[ImportProblem]
    repairs: list[str]
    boundary_set: BoundarySetInput | None
    quality: QualityReport | None
    # What was read and how (CRS, where the kecamatan came from), for the summary.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        lines = list(self.notes)
        if self.boundary_set is not None:
            boundary_set = self.boundary_set
            lines.append(
                f"boundary set: {len(boundary_set.kelurahan)} kelurahan"
                f" in {len(boundary_set.kecamatan)} kecamatan"
            )
            lines.append(f"source: {boundary_set.source}")
            approximate = " (approximate)" if boundary_set.is_approximate else ""
            lines.append(f"accuracy note: {boundary_set.accuracy_note}{approximate}")
        lines.append(f"repairs: {len(self.repairs)}")
        lines.extend(f"  - {repair}" for repair in self.repairs)
        lines.append(f"problems: {len(self.problems)}")
        lines.extend(f"  - {problem}" for problem in self.problems)
        if self.quality is not None:
            lines.extend(self.quality.summary_lines())
        if not self.ok:
            lines.append(f"refused: {len(self.problems)} problem(s), nothing can be written")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Feature:
    index: int
    code: str
    name: str
    geometry: MultiPolygon
    parent_code: str | None
    parent_name: str | None


@dataclass
class _Layer:
    readable: bool
    features: list[_Feature] = field(default_factory=list)
    # Every code in the file, including those of features refused for another
    # reason, so that a broken kecamatan does not also orphan its kelurahan.
    codes: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _SourceCrs:
    label: str
    # None when the coordinates are already WGS84 lon/lat.
    transformer: Transformer | None


class _Report:
    def __init__(self) -> None:
        self.problems: list[ImportProblem] = []
        self.repairs: list[str] = []
        self.notes: list[str] = []

    def problem(self, layer: Layer, index: int | None, code: str | None, message: str) -> None:
        self.problems.append(ImportProblem(index=index, code=code, message=message, layer=layer))

    def repair(self, layer: Layer, index: int | None, code: str | None, message: str) -> None:
        self.repairs.append(f"{_where(layer, index, code)}: {message}")


def plan_import(
    *, kelurahan: dict[str, Any], kecamatan: dict[str, Any] | None, options: ImportOptions
) -> ImportPlan:
    report = _Report()
    derive = kecamatan is None
    kelurahan_layer = _read_layer(
        kelurahan,
        layer="kelurahan",
        code_property=options.code_property,
        name_property=options.name_property,
        parent_code_property=options.parent_code_property,
        parent_name_property=options.parent_name_property if derive else None,
        report=report,
    )

    if kecamatan is None:
        kecamatan_areas = _dissolve(kelurahan_layer.features, options=options, report=report)
    else:
        kecamatan_layer = _read_layer(
            kecamatan,
            layer="kecamatan",
            code_property=options.kecamatan_code_property,
            name_property=options.kecamatan_name_property,
            parent_code_property=None,
            parent_name_property=None,
            report=report,
        )
        kecamatan_areas = [
            AreaInput(code=feature.code, name=feature.name, geometry=feature.geometry)
            for feature in kecamatan_layer.features
        ]
        # An unreadable kecamatan file is one problem, not one per kelurahan.
        if kecamatan_layer.readable:
            _check_parents(kelurahan_layer.features, kecamatan_layer.codes, report=report)

    if report.problems:
        return ImportPlan(
            problems=report.problems,
            repairs=report.repairs,
            boundary_set=None,
            quality=None,
            notes=report.notes,
        )

    kelurahan_areas = sorted(
        (
            AreaInput(
                code=feature.code,
                name=feature.name,
                geometry=feature.geometry,
                parent_code=feature.parent_code,
            )
            for feature in kelurahan_layer.features
        ),
        key=lambda area: area.code,
    )
    quality = measure_quality(kelurahan_areas)
    boundary_set = BoundarySetInput(
        source=options.source,
        accuracy_note=options.accuracy_note,
        is_approximate=options.is_approximate,
        kecamatan=sorted(kecamatan_areas, key=lambda area: area.code),
        kelurahan=kelurahan_areas,
        quality=quality.to_dict(),
    )
    return ImportPlan(
        problems=[],
        repairs=report.repairs,
        boundary_set=boundary_set,
        quality=quality,
        notes=report.notes,
    )


def _read_layer(
    collection: object,
    *,
    layer: Layer,
    code_property: str,
    name_property: str,
    parent_code_property: str | None,
    parent_name_property: str | None,
    report: _Report,
) -> _Layer:
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        found = (
            collection.get("type") if isinstance(collection, dict) else type(collection).__name__
        )
        report.problem(layer, None, None, f"not a GeoJSON FeatureCollection (found {found!r})")
        return _Layer(readable=False)
    raw_features = collection.get("features")
    if not isinstance(raw_features, list):
        report.problem(layer, None, None, "the FeatureCollection has no 'features' list")
        return _Layer(readable=False)
    if not raw_features:
        report.problem(layer, None, None, "the FeatureCollection has no features")
        return _Layer(readable=False)
    crs = _source_crs(collection)
    if isinstance(crs, str):
        # Coordinates in an unknown system cannot be checked at all: one clear problem.
        report.problem(layer, None, None, crs)
        return _Layer(readable=False)
    if crs.transformer is not None:
        report.repairs.append(f"{layer} file: reprojected from {crs.label} to EPSG:4326")
    report.notes.append(f"{layer} file: {len(raw_features)} features, coordinates in {crs.label}")

    first_index: dict[str, int] = {}
    features: list[_Feature] = []
    for index, raw in enumerate(raw_features):
        feature = _read_feature(
            index,
            raw,
            layer=layer,
            crs=crs,
            code_property=code_property,
            name_property=name_property,
            parent_code_property=parent_code_property,
            parent_name_property=parent_name_property,
            first_index=first_index,
            report=report,
        )
        if feature is not None:
            features.append(feature)
    return _Layer(readable=True, features=features, codes=set(first_index))


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
    first_index: dict[str, int],
    report: _Report,
) -> _Feature | None:
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
    code = _text_property(properties, code_property, "its code", layer, index, None, report)
    if code is not None:
        if code in first_index:
            report.problem(
                layer, index, code, f"duplicate code, also used by feature #{first_index[code]}"
            )
        else:
            first_index[code] = index
    name = _text_property(properties, name_property, "its name", layer, index, code, report)
    parent_code = parent_name = None
    if parent_code_property is not None:
        parent_code = _text_property(
            properties, parent_code_property, "its kecamatan", layer, index, code, report
        )
    if parent_name_property is not None:
        parent_name = _text_property(
            properties,
            parent_name_property,
            "the kecamatan derived from it",
            layer,
            index,
            code,
            report,
        )
    geometry = _read_geometry(index, code, raw.get("geometry"), layer=layer, crs=crs, report=report)
    if len(report.problems) > problems_before:
        return None
    assert code is not None and name is not None and geometry is not None
    return _Feature(
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
    report: _Report,
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
        report.problem(layer, index, code, f"the {prop!r} property is not text: {value!r}")
        return None
    value = value.strip()
    if not value:
        report.problem(layer, index, code, f"the {prop!r} property is empty ({purpose})")
        return None
    return value


def _read_geometry(
    index: int,
    code: str | None,
    raw: object,
    *,
    layer: Layer,
    crs: _SourceCrs,
    report: _Report,
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
        return f"unsupported 'crs' member {json.dumps(member)[:200]}; expected a named CRS"
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


def _dissolve(
    kelurahan: Sequence[_Feature], *, options: ImportOptions, report: _Report
) -> list[AreaInput]:
    groups: dict[str, list[_Feature]] = {}
    for feature in kelurahan:
        assert feature.parent_code is not None
        groups.setdefault(feature.parent_code, []).append(feature)

    areas: list[AreaInput] = []
    for code, members in sorted(groups.items()):
        names: dict[str, list[int]] = {}
        for member in members:
            assert member.parent_name is not None
            names.setdefault(member.parent_name, []).append(member.index)
        if len(names) > 1:
            listed = "; ".join(
                f"{name!r} in features {', '.join(f'#{i}' for i in indexes)}"
                for name, indexes in sorted(names.items())
            )
            report.problem(
                "kecamatan",
                None,
                code,
                f"its kelurahan disagree on the {options.parent_name_property!r} property:"
                f" {listed}",
            )
            continue
        dissolved = shapely.union_all([member.geometry for member in members])
        geometry = MultiPolygon(polygonal_parts(dissolved))
        if not geometry.is_valid:
            report.problem(
                "kecamatan",
                None,
                code,
                f"dissolving its kelurahan gave an invalid geometry"
                f" ({shapely.is_valid_reason(geometry)})",
            )
            continue
        areas.append(AreaInput(code=code, name=next(iter(names)), geometry=geometry))
    if areas:
        report.notes.append(
            f"kecamatan: {len(areas)} derived by dissolving the kelurahan"
            f" on {options.parent_code_property!r}"
        )
    return areas


def _check_parents(kelurahan: Sequence[_Feature], known: set[str], *, report: _Report) -> None:
    used: set[str] = set()
    for feature in kelurahan:
        assert feature.parent_code is not None
        used.add(feature.parent_code)
        if feature.parent_code not in known:
            report.problem(
                "kelurahan",
                feature.index,
                feature.code,
                f"kecamatan code {feature.parent_code!r} is not in the kecamatan file",
            )
    empty = sorted(known - used)
    if empty and not report.problems:
        report.notes.append(f"kecamatan without any kelurahan: {', '.join(empty)}")


async def import_boundaries(*, session: AsyncSession, plan: ImportPlan, activate: bool) -> int:
    """Write an ok plan as a new boundary set, optionally activating it. Never commits."""
    if not plan.ok:
        raise ImportRefused(plan.problems)
    if plan.boundary_set is None:
        raise ImportRefused([ImportProblem(None, None, "the plan holds no boundary set")])
    boundary_set_id = await write_boundary_set(session=session, boundary_set=plan.boundary_set)
    if activate:
        await activate_boundary_set(session=session, boundary_set_id=boundary_set_id)
    return boundary_set_id


class _InputFileError(Exception):
    pass


def _load_json(path: Path) -> Any:
    try:
        # utf-8-sig: files saved by some Windows tools start with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise _InputFileError(f"cannot read {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise _InputFileError(f"{path} is not UTF-8 text: {error}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _InputFileError(f"{path} is not valid JSON: {error}") from error


def _parser() -> argparse.ArgumentParser:
    defaults = ImportOptions(source="")
    parser = argparse.ArgumentParser(
        prog="python -m geo.importer",
        description="Import kelurahan boundaries (GeoJSON) as a new boundary set."
        " Dry run unless --commit.",
    )
    parser.add_argument("kelurahan", type=Path, help="kelurahan GeoJSON FeatureCollection")
    parser.add_argument(
        "--kecamatan",
        type=Path,
        help="kecamatan GeoJSON FeatureCollection; without it the kecamatan are"
        " derived by dissolving the kelurahan on their kecamatan code",
    )
    properties: list[tuple[str, str, str]] = [
        ("--code-property", "code_property", "kelurahan code"),
        ("--name-property", "name_property", "kelurahan name"),
        ("--parent-code-property", "parent_code_property", "kelurahan's kecamatan code"),
        ("--parent-name-property", "parent_name_property", "kelurahan's kecamatan name"),
        ("--kecamatan-code-property", "kecamatan_code_property", "code in the kecamatan file"),
        ("--kecamatan-name-property", "kecamatan_name_property", "name in the kecamatan file"),
    ]
    for flag, attribute, what in properties:
        default = getattr(defaults, attribute)
        parser.add_argument(
            flag, dest=attribute, default=default, help=f"property holding the {what} ({default})"
        )
    parser.add_argument("--source", help="where the boundaries come from (the file name)")
    parser.add_argument("--note", default=defaults.accuracy_note, help="accuracy note")
    parser.add_argument(
        "--approximate", action="store_true", help="mark the boundaries as approximate"
    )
    parser.add_argument("--commit", action="store_true", help="write the boundary set")
    parser.add_argument(
        "--activate", action="store_true", help="make the new set the active one (needs --commit)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.activate and not args.commit:
        parser.error("--activate needs --commit")

    try:
        kelurahan = _load_json(args.kelurahan)
        kecamatan = _load_json(args.kecamatan) if args.kecamatan is not None else None
    except _InputFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    options = ImportOptions(
        source=args.source or args.kelurahan.name,
        code_property=args.code_property,
        name_property=args.name_property,
        parent_code_property=args.parent_code_property,
        parent_name_property=args.parent_name_property,
        kecamatan_code_property=args.kecamatan_code_property,
        kecamatan_name_property=args.kecamatan_name_property,
        accuracy_note=args.note,
        is_approximate=args.approximate,
    )
    plan = plan_import(kelurahan=kelurahan, kecamatan=kecamatan, options=options)
    print(plan.summary())
    if not plan.ok:
        return 1
    if not args.commit:
        print("dry run: nothing written (use --commit)")
        return 0
    return _commit(plan, activate=args.activate)


def _commit(plan: ImportPlan, *, activate: bool) -> int:
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: database settings: {error}", file=sys.stderr)
        return 2
    try:
        boundary_set_id = asyncio.run(_write(settings=settings, plan=plan, activate=activate))
    except (OSError, SQLAlchemyError) as error:
        print(f"error: nothing committed, the database write failed: {error}", file=sys.stderr)
        return 1
    state = "active" if activate else "inactive"
    print(f"committed boundary set {boundary_set_id} ({state})")
    return 0


async def _write(*, settings: Settings, plan: ImportPlan, activate: bool) -> int:
    engine = create_engine(settings)
    try:
        session_factory = create_session_factory(engine)
        async with session_factory() as session, session.begin():
            return await import_boundaries(session=session, plan=plan, activate=activate)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
