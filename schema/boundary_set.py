from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from domain.access import Action
from geo import boundaries, store
from models import BoundarySet as BoundarySetModel
from schema.context import Context


@strawberry.type(description="One imported version of the kecamatan and kelurahan boundaries.")
class BoundarySet:
    id: strawberry.ID
    source: str
    accuracy_note: str
    is_approximate: bool = strawberry.field(
        description="True when whoever imported the set marked it as only an approximation"
        " of the real boundaries; accuracyNote says how close any set is."
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


@strawberry.type(description="No boundary set has this id.")
class BoundarySetNotFound:
    message: str


ActivateBoundarySetResult = Annotated[
    BoundarySet | BoundarySetNotFound, strawberry.union("ActivateBoundarySetResult")
]


@strawberry.type
class BoundarySetMutation:
    @strawberry.mutation(
        description="Make an imported boundary set the one lookups use, in one step "
        "(administrators only). Cases keep the kelurahan they were routed to."
    )
    async def activate_boundary_set(
        self, info: strawberry.Info[Context, None], id: strawberry.ID
    ) -> ActivateBoundarySetResult:
        info.context.require(Action.ADMINISTER)
        if not str(id).isdigit():
            return BoundarySetNotFound(message=f"no boundary set has the id {id!r}")
        async with info.context.db() as session:
            try:
                await store.activate_boundary_set(session=session, boundary_set_id=int(id))
            except store.BoundarySetNotFound as error:
                return BoundarySetNotFound(message=str(error))
            models = await boundaries.boundary_sets_by_ids(session=session, ids=[int(id)])
        return BoundarySet.from_model(models[int(id)])
