"""Pure (database-free) descriptions of a boundary set before it is written."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from shapely import MultiPolygon, to_wkb


@dataclass(frozen=True)
class AreaInput:
    code: str
    name: str
    geometry: MultiPolygon
    parent_code: str | None = None


@dataclass(frozen=True)
class BoundarySetInput:
    source: str
    accuracy_note: str
    is_approximate: bool
    kecamatan: list[AreaInput]
    kelurahan: list[AreaInput]
    quality: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for level, areas in (("kecamatan", self.kecamatan), ("kelurahan", self.kelurahan)):
            for area in sorted(areas, key=lambda a: a.code):
                digest.update(f"{level}|{area.code}|{area.name}|{area.parent_code}|".encode())
                digest.update(to_wkb(area.geometry, hex=False, output_dimension=2))
        return digest.hexdigest()
