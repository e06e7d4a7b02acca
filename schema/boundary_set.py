from __future__ import annotations

from datetime import datetime

import strawberry

from geo import boundaries
from models import BoundarySet as BoundarySetModel
from schema.context import Context


@strawberry.type(description="One imported version of the kecamatan and kelurahan boundaries.")
class BoundarySet:
    id: strawberry.ID
    source: str
    accuracy_note: str
    is_approximate: bool = strawberry.field(
        description="True for the built-in approximate boundaries; "
        "import official ones for real use."
    )
    is_active: bool
    created_at: datetime
    activated_at: datetime | None
    kecamatan_count: int
    kelurahan_count: int

    @classmethod
    def from_model(cls, model: BoundarySetModel) -> BoundarySet:
        return cls(
            id=strawberry.ID(str(model.id)),
            source=model.source,
            accuracy_note=model.accuracy_note,
            is_approximate=model.is_approximate,
            is_active=model.is_active,
            created_at=model.created_at,
            activated_at=model.activated_at,
            kecamatan_count=model.kecamatan_count,
            kelurahan_count=model.kelurahan_count,
        )


async def load_boundary_set(info: strawberry.Info[Context, None], set_id: int) -> BoundarySet:
    model = await info.context.loaders.boundary_set.load(set_id)
    if model is None:
        raise LookupError(f"boundary set {set_id} vanished")
    return BoundarySet.from_model(model)


@strawberry.type
class BoundarySetQuery:
    @strawberry.field(description="Every boundary set, newest first; one of them is active.")
    async def boundary_sets(self, info: strawberry.Info[Context, None]) -> list[BoundarySet]:
        async with info.context.db() as session:
            models = await boundaries.list_boundary_sets(session=session)
        return [BoundarySet.from_model(m) for m in models]
