"""Import kelurahan (and kecamatan) boundaries from GeoJSON as a new boundary set.

`plan_import` is pure: it parses, checks, repairs and measures, and reports
every problem at once so that a bad file is fixed in one round. Only an ok
plan can be written, by `import_boundaries`, inside the caller's transaction.
Its command line is `python -m geo`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely import MultiPolygon
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ImportRefused
from geo.areas import AreaInput, BoundarySetInput
from geo.boundary_checks import MAX_NAME_LENGTH
from geo.boundary_files import BoundaryFeature, ImportProblem, ImportReport, read_layer
from geo.quality import QualityReport, measure_quality, polygonal_parts
from geo.store import activate_boundary_set, write_boundary_set

DEFAULT_ACCURACY_NOTE = "official boundaries as imported"


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
    max_name_length: int = MAX_NAME_LENGTH


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


def plan_import(
    *, kelurahan: dict[str, Any], kecamatan: dict[str, Any] | None, options: ImportOptions
) -> ImportPlan:
    report = ImportReport()
    derive = kecamatan is None
    kelurahan_layer = read_layer(
        kelurahan,
        layer="kelurahan",
        code_property=options.code_property,
        name_property=options.name_property,
        parent_code_property=options.parent_code_property,
        parent_name_property=options.parent_name_property if derive else None,
        report=report,
        max_name_length=options.max_name_length,
    )

    if kecamatan is None:
        kecamatan_areas = _dissolve(kelurahan_layer.features, options=options, report=report)
    else:
        kecamatan_layer = read_layer(
            kecamatan,
            layer="kecamatan",
            code_property=options.kecamatan_code_property,
            name_property=options.kecamatan_name_property,
            parent_code_property=None,
            parent_name_property=None,
            report=report,
            max_name_length=options.max_name_length,
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


def _dissolve(
    kelurahan: Sequence[BoundaryFeature], *, options: ImportOptions, report: ImportReport
) -> list[AreaInput]:
    groups: dict[str, list[BoundaryFeature]] = {}
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


def _check_parents(
    kelurahan: Sequence[BoundaryFeature], known: set[str], *, report: ImportReport
) -> None:
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
