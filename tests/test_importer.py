from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from pyproj import Transformer
from shapely import MultiPolygon, get_coordinates
from sqlalchemy import func, make_url, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from core.errors import ImportRefused, PatriotError
from geo.__main__ import main
from geo.boundary_files import ImportProblem
from geo.importer import ImportOptions, import_boundaries, plan_import
from geo.store import active_boundary_set_id
from models import BoundarySet, Kecamatan, Kelurahan, KelurahanPiece
from tests.conftest import ROOT, alembic_config

OPTIONS = ImportOptions(source="test")

# About 110 m squares in Bekasi Timur, side by side along a parallel.
_LON, _LAT, _SIZE = 107.0, -6.25, 0.001


def _ring(column: int = 0) -> list[list[float]]:
    west = _LON + column * _SIZE
    east = west + _SIZE
    return [[west, _LAT], [east, _LAT], [east, _LAT + _SIZE], [west, _LAT + _SIZE], [west, _LAT]]


def _polygon(column: int = 0) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [_ring(column)]}


def _feature(
    code: str | None,
    *,
    column: int = 0,
    geometry: dict[str, Any] | None = None,
    name: str | None = "Bekasijaya",
    kecamatan_code: str | None = "32.75.01",
    kecamatan: str | None = "Bekasi Timur",
) -> dict[str, Any]:
    properties = {
        "code": code,
        "name": name,
        "kecamatan_code": kecamatan_code,
        "kecamatan": kecamatan,
    }
    return {
        "type": "Feature",
        "properties": {key: value for key, value in properties.items() if value is not None},
        "geometry": _polygon(column) if geometry is None else geometry,
    }


def _collection(*features: dict[str, Any], crs: str | None = None) -> dict[str, Any]:
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": list(features)}
    if crs is not None:
        collection["crs"] = {"type": "name", "properties": {"name": crs}}
    return collection


def _two_kelurahan() -> dict[str, Any]:
    return _collection(_feature("32.75.01.1001"), _feature("32.75.01.1002", column=1))


def _only_problem(problems: list[ImportProblem]) -> ImportProblem:
    assert len(problems) == 1, [str(problem) for problem in problems]
    return problems[0]


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# --- the real Bekasi boundaries ---------------------------------------------


def test_real_kelurahan_plan_derives_twelve_kecamatan(shared_data_dir: Path) -> None:
    plan = plan_import(
        kelurahan=_load(shared_data_dir / "kelurahan.geojson"), kecamatan=None, options=OPTIONS
    )

    assert plan.ok, plan.summary()
    assert plan.boundary_set is not None
    assert len(plan.boundary_set.kelurahan) == 56
    assert len(plan.boundary_set.kecamatan) == 12
    assert plan.repairs == []
    areas = [*plan.boundary_set.kelurahan, *plan.boundary_set.kecamatan]
    assert all(isinstance(area.geometry, MultiPolygon) for area in areas)
    assert all(area.geometry.is_valid for area in areas)
    kecamatan = {area.code: area.name for area in plan.boundary_set.kecamatan}
    assert kecamatan["32.75.01"] == "Bekasi Timur"
    assert kecamatan["32.75.07"] == "Bantargebang"
    assert plan.boundary_set.quality["overlaps"]["pairs"] == 81
    json.dumps(plan.boundary_set.quality)


def test_real_kelurahan_plan_with_the_kecamatan_file(shared_data_dir: Path) -> None:
    plan = plan_import(
        kelurahan=_load(shared_data_dir / "kelurahan.geojson"),
        kecamatan=_load(shared_data_dir / "kecamatan.geojson"),
        options=OPTIONS,
    )

    assert plan.ok, plan.summary()
    assert plan.boundary_set is not None
    assert len(plan.boundary_set.kelurahan) == 56
    assert len(plan.boundary_set.kecamatan) == 12
    assert {area.parent_code for area in plan.boundary_set.kelurahan} == {
        area.code for area in plan.boundary_set.kecamatan
    }


async def test_importing_the_real_boundaries_writes_an_active_set(
    session: AsyncSession, shared_data_dir: Path
) -> None:
    plan = plan_import(
        kelurahan=_load(shared_data_dir / "kelurahan.geojson"), kecamatan=None, options=OPTIONS
    )

    boundary_set_id = await import_boundaries(session=session, plan=plan, activate=True)

    async def count(model: type[Kelurahan | Kecamatan | KelurahanPiece]) -> int | None:
        return await session.scalar(
            select(func.count()).select_from(model).where(model.boundary_set_id == boundary_set_id)
        )

    assert await count(Kelurahan) == 56
    assert await count(Kecamatan) == 12
    pieces = await count(KelurahanPiece)
    assert pieces is not None and pieces > 56
    assert await active_boundary_set_id(session=session) == boundary_set_id
    record = await session.get(BoundarySet, boundary_set_id)
    assert record is not None
    assert record.quality["gaps"]["count"] > 0
    assert record.source == "test"


# --- refusals -----------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    kelurahan = _collection(
        _feature(None),
        _feature("32.75.01.1002", column=1, geometry={"type": "Point", "coordinates": [107, -6]}),
        _feature("32.75.01.1003", column=2, name=None),
    )

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    assert not plan.ok
    assert plan.boundary_set is None
    assert [problem.index for problem in plan.problems] == [0, 1, 2]
    summary = plan.summary()
    assert all(str(problem) in summary for problem in plan.problems)
    assert "refused: 3 problem(s)" in summary


def test_refuses_a_feature_without_code() -> None:
    plan = plan_import(
        kelurahan=_collection(_feature("32.75.01.1001"), _feature(None, column=1)),
        kecamatan=None,
        options=OPTIONS,
    )

    problem = _only_problem(plan.problems)
    assert (problem.index, problem.code) == (1, None)
    assert str(problem) == "feature #1: no 'code' property (its code)"


def test_refuses_an_empty_code() -> None:
    plan = plan_import(kelurahan=_collection(_feature("  ")), kecamatan=None, options=OPTIONS)

    assert (
        str(_only_problem(plan.problems)) == "feature #0: the 'code' property is empty (its code)"
    )


def test_refuses_a_missing_name() -> None:
    plan = plan_import(
        kelurahan=_collection(_feature("32.75.01.1001", name=None)), kecamatan=None, options=OPTIONS
    )

    assert str(_only_problem(plan.problems)).startswith("feature #0 (32.75.01.1001): no 'name'")


def test_refuses_duplicate_codes_naming_both_features() -> None:
    kelurahan = _collection(
        _feature("32.75.01.1001"),
        _feature("32.75.01.1002", column=1),
        _feature("32.75.01.1001", column=2),
    )

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    problem = _only_problem(plan.problems)
    assert str(problem) == "feature #2 (32.75.01.1001): duplicate code, also used by feature #0"


def test_duplicates_are_found_even_among_broken_features() -> None:
    kelurahan = _collection(
        _feature("32.75.01.1001", name=None), _feature("32.75.01.1001", column=1)
    )

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    assert [str(problem) for problem in plan.problems] == [
        "feature #0 (32.75.01.1001): no 'name' property (its name)",
        "feature #1 (32.75.01.1001): duplicate code, also used by feature #0",
    ]


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Polygon", "coordinates": []}, "geometry is empty"),
        ({"type": "MultiPolygon", "coordinates": []}, "geometry is empty"),
        ({"type": "Point", "coordinates": [107.0, -6.25]}, "geometry is a Point, expected"),
        (
            {"type": "LineString", "coordinates": [[107.0, -6.25], [107.1, -6.2]]},
            "geometry is a LineString, expected",
        ),
        ({"type": "Polygon", "coordinates": [[[107, -6], [107.1, -6]]]}, "geometry cannot be read"),
    ],
)
def test_refuses_geometry_that_is_not_an_area(geometry: dict[str, Any], message: str) -> None:
    plan = plan_import(
        kelurahan=_collection(_feature("32.75.01.1001", geometry=geometry)),
        kecamatan=None,
        options=OPTIONS,
    )

    assert str(_only_problem(plan.problems)).startswith(f"feature #0 (32.75.01.1001): {message}")


def test_refuses_a_missing_geometry() -> None:
    feature = _feature("32.75.01.1001")
    feature["geometry"] = None

    plan = plan_import(kelurahan=_collection(feature), kecamatan=None, options=OPTIONS)

    assert str(_only_problem(plan.problems)) == "feature #0 (32.75.01.1001): geometry is missing"


@pytest.mark.parametrize("bad", [[200.0, -6.25], [107.0, -91.0], [-180.5, -6.25]])
def test_refuses_coordinates_outside_lon_lat(bad: list[float]) -> None:
    ring = _ring()
    ring[1] = bad
    geometry = {"type": "Polygon", "coordinates": [ring]}

    plan = plan_import(
        kelurahan=_collection(_feature("32.75.01.1001", geometry=geometry)),
        kecamatan=None,
        options=OPTIONS,
    )

    problem = str(_only_problem(plan.problems))
    assert problem.startswith("feature #0 (32.75.01.1001): 1 coordinate(s) outside lon -180..180")
    assert repr(bad[0]) in problem


@pytest.mark.parametrize("crs", [None, "EPSG:32748"])
def test_refuses_coordinates_that_are_not_numbers(crs: str | None) -> None:
    ring = _ring()
    ring[2] = [float("nan"), float("inf")]
    geometry = {"type": "Polygon", "coordinates": [ring]}

    plan = plan_import(
        kelurahan=_collection(_feature("32.75.01.1001", geometry=geometry), crs=crs),
        kecamatan=None,
        options=OPTIONS,
    )

    assert str(_only_problem(plan.problems)) == (
        "feature #0 (32.75.01.1001): 2 coordinate value(s) are not finite numbers (NaN or Infinity)"
    )


def test_projected_coordinates_without_crs_member_are_refused() -> None:
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32748", always_xy=True)
    ring = [list(to_utm.transform(lon, lat)) for lon, lat in _ring()]

    plan = plan_import(
        kelurahan=_collection(
            _feature("32.75.01.1001", geometry={"type": "Polygon", "coordinates": [ring]})
        ),
        kecamatan=None,
        options=OPTIONS,
    )

    problem = str(_only_problem(plan.problems))
    assert "5 coordinate(s) outside" in problem
    assert "needs a 'crs' member" in problem


def test_refuses_a_parent_code_missing_from_the_kecamatan_file() -> None:
    kelurahan = _collection(
        _feature("32.75.01.1001"), _feature("32.75.99.1001", column=1, kecamatan_code="32.75.99")
    )
    kecamatan = _collection(
        {
            "type": "Feature",
            "properties": {"code": "32.75.01", "name": "Bekasi Timur"},
            "geometry": {"type": "Polygon", "coordinates": [_ring(0)]},
        }
    )

    plan = plan_import(kelurahan=kelurahan, kecamatan=kecamatan, options=OPTIONS)

    problem = _only_problem(plan.problems)
    assert str(problem) == (
        "feature #1 (32.75.99.1001): kecamatan code '32.75.99' is not in the kecamatan file"
    )


def test_problems_in_the_kecamatan_file_say_so() -> None:
    kecamatan = _collection(
        {"type": "Feature", "properties": {"code": "32.75.01"}, "geometry": _polygon()}
    )

    plan = plan_import(kelurahan=_two_kelurahan(), kecamatan=kecamatan, options=OPTIONS)

    assert str(_only_problem(plan.problems)) == (
        "kecamatan feature #0 (32.75.01): no 'name' property (its name)"
    )


def test_an_unreadable_kecamatan_file_is_one_problem() -> None:
    kecamatan = _collection(
        {"type": "Feature", "properties": {"code": "32.75.01", "name": "Bekasi Timur"}},
        crs="EPSG:999999",
    )

    plan = plan_import(kelurahan=_two_kelurahan(), kecamatan=kecamatan, options=OPTIONS)

    assert str(_only_problem(plan.problems)).startswith(
        "kecamatan file: unknown coordinate reference system 'EPSG:999999'"
    )


def test_refuses_a_kelurahan_without_kecamatan_name_when_deriving() -> None:
    kelurahan = _collection(_feature("32.75.01.1001"), _feature("32.75.01.1002", kecamatan=None))

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    assert str(_only_problem(plan.problems)).startswith(
        "feature #1 (32.75.01.1002): no 'kecamatan' property"
    )


def test_refuses_kelurahan_that_disagree_on_their_kecamatan_name() -> None:
    kelurahan = _collection(
        _feature("32.75.01.1001"), _feature("32.75.01.1002", column=1, kecamatan="Bekasi Barat")
    )

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    problem = str(_only_problem(plan.problems))
    assert problem.startswith("kecamatan 32.75.01: its kelurahan disagree on the 'kecamatan'")
    assert "'Bekasi Barat' in features #1" in problem
    assert "'Bekasi Timur' in features #0" in problem


@pytest.mark.parametrize("crs", ["urn:ogc:def:crs:EPSG::999999", "not a crs"])
def test_refuses_an_unknown_crs_with_one_problem(crs: str) -> None:
    plan = plan_import(
        kelurahan=_collection(_feature("32.75.01.1001"), crs=crs), kecamatan=None, options=OPTIONS
    )

    problem = _only_problem(plan.problems)
    assert problem.index is None
    assert str(problem).startswith(f"kelurahan file: unknown coordinate reference system {crs!r}")


def test_refuses_a_crs_member_that_names_nothing() -> None:
    kelurahan = _collection(_feature("32.75.01.1001"))
    kelurahan["crs"] = {"type": "link", "properties": {"href": "http://example.com/crs"}}

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    assert "unsupported 'crs' member" in str(_only_problem(plan.problems))


@pytest.mark.parametrize(
    "document",
    [
        _feature("32.75.01.1001"),
        {"type": "FeatureCollection"},
        {"type": "FeatureCollection", "features": []},
        [],
    ],
)
def test_refuses_what_is_not_a_feature_collection(document: Any) -> None:
    plan = plan_import(kelurahan=document, kecamatan=None, options=OPTIONS)

    problem = _only_problem(plan.problems)
    assert problem.index is None
    assert str(problem).startswith("kelurahan file: ")
    assert "FeatureCollection" in problem.message


async def test_a_refused_plan_writes_nothing(session: AsyncSession) -> None:
    plan = plan_import(kelurahan=_collection(_feature(None)), kecamatan=None, options=OPTIONS)
    before = await session.scalar(select(func.count()).select_from(BoundarySet))

    with pytest.raises(ImportRefused) as refused:
        await import_boundaries(session=session, plan=plan, activate=True)

    assert isinstance(refused.value, PatriotError)
    assert refused.value.problems == tuple(plan.problems)
    assert "feature #0: no 'code' property" in str(refused.value)
    assert await session.scalar(select(func.count()).select_from(BoundarySet)) == before


@pytest.mark.parametrize(
    ("code", "kecamatan_code", "belongs_to"),
    [
        ("32.75.08.1001", "32.75.01", "32.75.08"),
        ("32.75.08.1001", "32.75.0", "32.75.08"),
        ("3275081001", "32.75.01", "32.75.08"),
        ("32.75.08.1001", "327501", "32.75.08"),
    ],
)
def test_refuses_a_kecamatan_code_that_disagrees_with_the_kelurahan_code(
    code: str, kecamatan_code: str, belongs_to: str
) -> None:
    kelurahan = _collection(
        _feature("32.75.01.1001"), _feature(code, column=1, kecamatan_code=kecamatan_code)
    )

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    assert str(_only_problem(plan.problems)) == (
        f"feature #1 ({code}): kecamatan code {kecamatan_code!r} disagrees with its own code,"
        f" which belongs to kecamatan {belongs_to}"
    )
    assert plan.boundary_set is None


def test_the_kecamatan_code_is_checked_with_a_kecamatan_file_too() -> None:
    kecamatan = _collection(
        *(
            {
                "type": "Feature",
                "properties": {"code": code, "name": name},
                "geometry": _polygon(column),
            }
            for column, (code, name) in enumerate(
                [("32.75.01", "Bekasi Timur"), ("32.75.02", "Bekasi Barat")]
            )
        )
    )
    kelurahan = _collection(
        _feature("32.75.01.1001"), _feature("32.75.01.1002", column=1, kecamatan_code="32.75.02")
    )

    plan = plan_import(kelurahan=kelurahan, kecamatan=kecamatan, options=OPTIONS)

    assert str(_only_problem(plan.problems)).startswith(
        "feature #1 (32.75.01.1002): kecamatan code '32.75.02' disagrees with its own code"
    )


def test_refuses_a_code_without_a_kecamatan_prefix() -> None:
    plan = plan_import(kelurahan=_collection(_feature("KEL-1001")), kecamatan=None, options=OPTIONS)

    assert str(_only_problem(plan.problems)).startswith(
        "feature #0 (KEL-1001): its code does not start with a kecamatan code"
    )


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"name": "x" * 100_000}, "the 'name' property is 100,000 characters long, more than 100"),
        ({"kecamatan": "K" * 101}, "the 'kecamatan' property is 101 characters long, more than"),
        (
            {"code": "32.75.01." + "1" * 30},
            "the 'code' property is 39 characters long, more than 32",
        ),
        ({"name": "Bekasi\njaya"}, "the 'name' property holds U+000A"),
        ({"name": "Bekasi\u202ejaya"}, "the 'name' property holds U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ({"name": "Bekasi\u200bjaya"}, "the 'name' property holds U+200B (ZERO WIDTH SPACE)"),
        ({"name": "Bekasi\ud800jaya"}, "the 'name' property holds U+D800"),
        ({"kecamatan_code": "32.75.01\x00"}, "the 'kecamatan_code' property holds U+0000"),
    ],
)
def test_refuses_absurd_text(properties: dict[str, str], message: str) -> None:
    feature = _feature("32.75.01.1002", column=1)
    feature["properties"].update(properties)

    plan = plan_import(
        kelurahan=_collection(_feature("32.75.01.1001"), feature), kecamatan=None, options=OPTIONS
    )

    [problem] = [str(problem) for problem in plan.problems]
    assert problem.startswith("feature #1"), problem
    assert message in problem
    # The message names the problem, it does not repeat a huge value.
    assert len(problem) < 300


def test_a_long_real_name_passes_and_the_limit_is_an_option() -> None:
    name = "Jatiwaringin Pondokgede Kranggan Jatisampurna Kelurahan"
    kelurahan = _collection(_feature("32.75.01.1001", name=name))

    assert plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS).ok
    plan = plan_import(
        kelurahan=kelurahan,
        kecamatan=None,
        options=ImportOptions(source="test", max_name_length=20),
    )
    assert "more than 20" in str(_only_problem(plan.problems))


def test_refuses_absurd_names_in_the_kecamatan_file() -> None:
    kecamatan = _collection(
        {
            "type": "Feature",
            "properties": {"code": "32.75.01", "name": "<b>Bekasi Timur</b>\r\n"},
            "geometry": _polygon(),
        },
    )
    kecamatan["features"][0]["properties"]["name"] = "Bekasi\x07Timur"

    plan = plan_import(kelurahan=_two_kelurahan(), kecamatan=kecamatan, options=OPTIONS)

    assert str(_only_problem(plan.problems)).startswith(
        "kecamatan feature #0 (32.75.01): the 'name' property holds U+0007"
    )


def _nested(levels: int) -> Any:
    value: Any = 107.0
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [40, 900, 5_000])
def test_refuses_deeply_nested_features_without_a_traceback(levels: int) -> None:
    deep_geometry = _feature(
        "32.75.01.1002", column=1, geometry={"type": "Polygon", "coordinates": _nested(levels)}
    )
    deep_properties = _feature("32.75.01.1003", column=2)
    deep_properties["properties"]["extra"] = _nested(levels)
    kelurahan = _collection(_feature("32.75.01.1001"), deep_geometry, deep_properties)

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    assert [str(problem) for problem in plan.problems] == [
        f"feature #{index}: the feature nests lists and objects more than 30 levels deep:"
        " not a boundary file"
        for index in (1, 2)
    ]


def test_refuses_a_deeply_nested_crs_member() -> None:
    kelurahan = _collection(_feature("32.75.01.1001"))
    kelurahan["crs"] = {"type": "name", "properties": {"name": _nested(2_000)}}

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    assert str(_only_problem(plan.problems)) == (
        "kelurahan file: the FeatureCollection nests lists and objects more than 32 levels"
        " deep: not a boundary file"
    )


# --- repairs and coordinate systems --------------------------------------------


def test_a_bow_tie_is_repaired_and_noted() -> None:
    west, east = _LON, _LON + _SIZE
    south, north = _LAT, _LAT + _SIZE
    bow_tie = [[west, south], [east, north], [east, south], [west, north], [west, south]]
    kelurahan = _collection(
        _feature("32.75.01.1001", geometry={"type": "Polygon", "coordinates": [bow_tie]}),
        _feature("32.75.01.1002", column=1),
    )

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    assert plan.ok, plan.summary()
    assert len(plan.repairs) == 1
    assert plan.repairs[0].startswith("feature #0 (32.75.01.1001): invalid geometry (Self-inter")
    assert "make_valid" in plan.repairs[0]
    assert plan.boundary_set is not None
    repaired = plan.boundary_set.kelurahan[0].geometry
    assert isinstance(repaired, MultiPolygon)
    assert repaired.is_valid
    assert len(repaired.geoms) == 2
    assert "repairs: 1" in plan.summary()


def test_z_coordinates_are_dropped() -> None:
    ring = [[lon, lat, 12.5] for lon, lat in _ring()]
    plan = plan_import(
        kelurahan=_collection(
            _feature("32.75.01.1001", geometry={"type": "Polygon", "coordinates": [ring]})
        ),
        kecamatan=None,
        options=OPTIONS,
    )

    assert plan.ok, plan.summary()
    assert plan.boundary_set is not None
    assert not plan.boundary_set.kelurahan[0].geometry.has_z


@pytest.mark.parametrize("crs", ["urn:ogc:def:crs:EPSG::32748", "EPSG:32748"])
def test_a_legacy_utm_file_is_reprojected_to_lon_lat(crs: str) -> None:
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32748", always_xy=True)
    lon_lat = _ring()
    utm = [list(to_utm.transform(lon, lat)) for lon, lat in lon_lat]
    kelurahan = _collection(
        _feature("32.75.01.1001", geometry={"type": "Polygon", "coordinates": [utm]}), crs=crs
    )

    plan = plan_import(kelurahan=kelurahan, kecamatan=None, options=OPTIONS)

    assert plan.ok, plan.summary()
    assert plan.repairs == [
        "kelurahan file: reprojected from EPSG:32748 (WGS 84 / UTM zone 48S) to EPSG:4326"
    ]
    assert plan.boundary_set is not None
    coordinates = get_coordinates(plan.boundary_set.kelurahan[0].geometry).tolist()
    assert coordinates == [pytest.approx(point, abs=1e-6) for point in lon_lat]


@pytest.mark.parametrize(
    "crs", ["urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326", "EPSG:4326"]
)
def test_a_lon_lat_crs_member_is_taken_as_is(crs: str) -> None:
    plan = plan_import(
        kelurahan=_collection(_feature("32.75.01.1001"), crs=crs), kecamatan=None, options=OPTIONS
    )

    assert plan.ok, plan.summary()
    assert plan.repairs == []
    assert plan.boundary_set is not None
    assert get_coordinates(plan.boundary_set.kelurahan[0].geometry).tolist() == _ring()


def test_property_names_follow_the_options() -> None:
    feature = {
        "type": "Feature",
        "properties": {"kode": 3275011001, "nama": "Bekasijaya", "kec": "32.75.01", "nkec": "BT"},
        "geometry": _polygon(),
    }
    options = ImportOptions(
        source="test",
        code_property="kode",
        name_property="nama",
        parent_code_property="kec",
        parent_name_property="nkec",
        is_approximate=True,
    )

    plan = plan_import(kelurahan=_collection(feature), kecamatan=None, options=options)

    assert plan.ok, plan.summary()
    assert plan.boundary_set is not None
    assert plan.boundary_set.is_approximate
    [kelurahan] = plan.boundary_set.kelurahan
    assert (kelurahan.code, kelurahan.name, kelurahan.parent_code) == (
        "3275011001",
        "Bekasijaya",
        "32.75.01",
    )
    assert [(area.code, area.name) for area in plan.boundary_set.kecamatan] == [("32.75.01", "BT")]


# --- command line ---------------------------------------------------------------


def test_cli_dry_run_on_the_real_file(
    shared_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(shared_data_dir / "kelurahan.geojson")]) == 0

    out = capsys.readouterr().out
    assert "boundary set: 56 kelurahan in 12 kecamatan" in out
    assert "source: kelurahan.geojson" in out
    assert "overlaps: 81 pairs of kelurahan" in out
    assert "gaps: 145 holes" in out
    assert out.rstrip().endswith("dry run: nothing written (use --commit)")


def test_cli_with_a_kecamatan_file(
    shared_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        str(shared_data_dir / "kelurahan.geojson"),
        "--kecamatan",
        str(shared_data_dir / "kecamatan.geojson"),
        "--source",
        "BIG via cahyadsn",
    ]

    assert main(argv) == 0

    out = capsys.readouterr().out
    assert "kecamatan file: 12 features" in out
    assert "source: BIG via cahyadsn" in out


def test_cli_refuses_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "points.geojson"
    point = {"type": "Point", "coordinates": [107.0, -6.25]}
    path.write_text(json.dumps(_collection(_feature("32.75.01.1001", geometry=point))))

    assert main([str(path), "--commit"]) == 1

    out = capsys.readouterr().out
    assert "feature #0 (32.75.01.1001): geometry is a Point" in out
    assert "refused: 1 problem(s)" in out


@pytest.mark.parametrize(
    ("content", "message"), [(None, "cannot read"), ("{not json", "is not valid JSON")]
)
def test_cli_reports_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "kelurahan.geojson"
    if content is not None:
        path.write_text(content)

    assert main([str(path)]) == 1

    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 5_000 + "]" * 5_000, "nests lists and objects too deeply for Python's JSON reader"),
        ('{"type": "FeatureCollection", "features": [' + "7" * 5_000 + "]}", "holds a number"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
    ],
)
def test_cli_refuses_unreadable_json_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, message: str
) -> None:
    path = tmp_path / "kelurahan.geojson"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)

    assert main([str(path)]) == 1

    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_cli_refuses_a_huge_file_before_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kelurahan.geojson"
    with path.open("wb") as file:
        file.truncate(3 * 1024 * 1024)  # sparse: nothing to write, nothing to read

    assert main([str(path), "--max-file-mb", "2"]) == 1

    assert "has 3 MB, more than 2 MB (--max-file-mb)" in capsys.readouterr().err


def test_cli_refuses_absurd_names_and_lists_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kelurahan.geojson"
    kelurahan = _collection(
        _feature("32.75.01.1001", name="x" * 100_000),
        _feature("32.75.02.1002", column=1),
        _feature("32.75.01.1003", column=2, name="Bekasi\x1bjaya"),
    )
    path.write_text(json.dumps(kelurahan))

    assert main([str(path), "--commit", "--activate"]) == 1

    out = capsys.readouterr().out
    assert "refused: 3 problem(s), nothing can be written" in out
    assert "feature #0 (32.75.01.1001): the 'name' property is 100,000 characters long" in out
    assert "feature #1 (32.75.02.1002): kecamatan code '32.75.01' disagrees" in out
    assert "feature #2 (32.75.01.1003): the 'name' property holds U+001B" in out
    assert "x" * 1_000 not in out


def test_cli_refuses_an_absurd_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kelurahan.geojson"
    path.write_text(json.dumps(_two_kelurahan()))

    with pytest.raises(SystemExit) as exit_:
        main([str(path), "--note", "ok\x00"])

    assert exit_.value.code == 2
    assert "the note holds U+0000" in capsys.readouterr().err


def test_cli_activate_needs_commit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["kelurahan.geojson", "--activate"])

    assert exit_.value.code == 2
    assert "--activate needs --commit" in capsys.readouterr().err


async def test_cli_commit_writes_one_active_set(test_database_url: str, tmp_path: Path) -> None:
    # The command line commits for real, so it gets a scratch database of its own.
    url = make_url(test_database_url)
    scratch = url.set(database=f"{url.database}_importer_cli")
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    plain_scratch = scratch.set(drivername="postgresql").render_as_string(False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{scratch.database}"')
    finally:
        await conn.close()
    try:
        engine = create_async_engine(scratch.render_as_string(False))
        try:
            async with engine.begin() as c:
                await c.run_sync(_upgrade_head, scratch.render_as_string(False))
        finally:
            await engine.dispose()
        path = tmp_path / "kelurahan.geojson"
        path.write_text(json.dumps(_two_kelurahan()))

        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "geo",
            str(path),
            "--commit",
            "--activate",
            cwd=ROOT,
            env={**os.environ, "PATRIOT_DATABASE_URL": scratch.render_as_string(False)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()

        assert process.returncode == 0, err.decode()
        written = await asyncpg.connect(plain_scratch)
        try:
            rows = await written.fetch("select id, is_active, kelurahan_count from boundary_set")
        finally:
            await written.close()
        assert [(row["is_active"], row["kelurahan_count"]) for row in rows] == [(True, 2)]
        assert f"committed boundary set {rows[0]['id']} (active)" in out.decode()
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)')
        finally:
            await conn.close()


def _upgrade_head(sync_conn: object, url: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = sync_conn
    command.upgrade(config, "head")
