"""The inputs that select cases: places, areas and the case filter."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.case_queries import CaseFilter, Near
from geo.case_filters import BBox
from geo.coordinates import LatLon
from schema.case_status import ESCALATION_LEVELS, CaseStatus, EscalationLevel
from schema.category import ReportKind


@strawberry.input
class LatLonInput:
    lat: float
    lon: float


@strawberry.input(description="A bounding box in WGS 84 degrees.")
class BBoxInput:
    west: float
    south: float
    east: float
    north: float

    def to_domain(self) -> BBox:
        return BBox(self.west, self.south, self.east, self.north)


@strawberry.input
class NearInput:
    lat: float
    lon: float
    radius_m: float

    def to_domain(self) -> Near:
        return Near(LatLon(self.lat, self.lon), self.radius_m)


@strawberry.input(description="All given conditions must hold; lists match any of their values.")
class CaseFilterInput:
    statuses: list[CaseStatus] | None = None
    kinds: list[ReportKind] | None = None
    sources: list[str] | None = None
    category_codes: list[str] | None = strawberry.field(
        default=None, description="Category codes; a group code selects its categories."
    )
    dinas_codes: list[str] | None = None
    kelurahan_codes: list[str] | None = None
    kecamatan_codes: list[str] | None = None
    escalation_levels: list[EscalationLevel] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    bbox: BBoxInput | None = None
    near: NearInput | None = None
    text: str | None = strawberry.field(
        default=None, description="Words to find in the title or description."
    )

    def to_domain(self) -> CaseFilter:
        return CaseFilter(
            statuses=[s.value for s in self.statuses or []],
            kinds=[k.value for k in self.kinds or []],
            sources=self.sources or [],
            category_codes=self.category_codes or [],
            dinas_codes=self.dinas_codes or [],
            kelurahan_codes=self.kelurahan_codes or [],
            kecamatan_codes=self.kecamatan_codes or [],
            escalation_levels=[ESCALATION_LEVELS.index(e) for e in self.escalation_levels or []],
            created_from=self.created_from,
            created_to=self.created_to,
            bbox=self.bbox.to_domain() if self.bbox else None,
            near=self.near.to_domain() if self.near else None,
            text=self.text,
        )
