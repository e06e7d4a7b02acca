from __future__ import annotations

from typing import Annotated

import strawberry

from core.errors import InvalidArguments
from geo import boundaries
from geo.boundary_index import KelurahanRow
from geo.lookup import active_set_id
from models import Kecamatan as KecamatanModel
from models import Kelurahan as KelurahanModel
from schema.boundary_set import BoundarySet, load_boundary_set
from schema.context import Context
from schema.kecamatan import (
    SIMPLIFY_DESCRIPTION,
    Kecamatan,
    checked_tolerance,
    exactly_one,
    load_kecamatan,
)
from schema.scalars import GeoJSON


@strawberry.type(description="A kelurahan (urban village), in one boundary set.")
class Kelurahan:
    id: strawberry.Private[int]
    kecamatan_id: strawberry.Private[int]
    boundary_set_id: strawberry.Private[int]
    code: str = strawberry.field(description="Kemendagri code, e.g. `32.75.08.1001`.")
    name: str = strawberry.field(description="Official Kemendagri spelling.")
    area_km2: float

    @classmethod
    def from_model(cls, model: KelurahanModel) -> Kelurahan:
        return cls(
            id=model.id,
            kecamatan_id=model.kecamatan_id,
            boundary_set_id=model.boundary_set_id,
            code=model.code,
            name=model.name,
            area_km2=model.area_km2,
        )

    @classmethod
    def from_row(cls, row: KelurahanRow) -> Kelurahan:
        return cls(
            id=row.id,
            kecamatan_id=row.kecamatan_id,
            boundary_set_id=row.boundary_set_id,
            code=row.code,
            name=row.name,
            area_km2=row.area_km2,
        )

    @strawberry.field(description="The outline as a GeoJSON MultiPolygon.")
    async def geometry(
        self,
        info: strawberry.Info[Context, None],
        simplify_m: Annotated[
            float | None, strawberry.argument(description=SIMPLIFY_DESCRIPTION)
        ] = None,
    ) -> GeoJSON:
        tolerance = checked_tolerance(simplify_m)
        geometry: GeoJSON = await info.context.loaders.kelurahan_geometry.load((self.id, tolerance))
        return geometry

    @strawberry.field
    async def kecamatan(self, info: strawberry.Info[Context, None]) -> Kecamatan:
        return await load_kecamatan(info, self.kecamatan_id)

    @strawberry.field
    async def boundary_set(self, info: strawberry.Info[Context, None]) -> BoundarySet:
        return await load_boundary_set(info, self.boundary_set_id)


async def load_kelurahan(info: strawberry.Info[Context, None], kelurahan_id: int) -> Kelurahan:
    model = await info.context.loaders.kelurahan.load(kelurahan_id)
    if model is None:
        raise LookupError(f"kelurahan {kelurahan_id} vanished")
    return Kelurahan.from_model(model)


@strawberry.type
class KelurahanQuery:
    @strawberry.field(
        description="Kelurahan of the active boundary set by code, optionally of one kecamatan."
    )
    async def kelurahan_list(
        self, info: strawberry.Info[Context, None], kecamatan_code: str | None = None
    ) -> list[Kelurahan]:
        async with info.context.db() as session:
            set_id = await active_set_id(session=session)
            if kecamatan_code is None:
                models = await boundaries.list_areas(
                    session=session, model=KelurahanModel, boundary_set_id=set_id
                )
                return [Kelurahan.from_model(m) for m in models]
            kecamatan = await boundaries.area_by_code(
                session=session, model=KecamatanModel, boundary_set_id=set_id, code=kecamatan_code
            )
            if kecamatan is None:
                return []
            grouped = await boundaries.kelurahan_by_kecamatan_ids(
                session=session, kecamatan_ids=[kecamatan.id]
            )
        return [Kelurahan.from_model(m) for m in grouped[kecamatan.id]]

    @strawberry.field(
        description="One kelurahan of the active set by Kemendagri code or by name "
        "(case and spaces ignored); null when none matches."
    )
    async def kelurahan(
        self,
        info: strawberry.Info[Context, None],
        code: str | None = None,
        name: str | None = None,
    ) -> Kelurahan | None:
        exactly_one(code, name)
        async with info.context.db() as session:
            set_id = await active_set_id(session=session)
            if code is not None:
                model = await boundaries.area_by_code(
                    session=session, model=KelurahanModel, boundary_set_id=set_id, code=code
                )
                return Kelurahan.from_model(model) if model else None
            assert name is not None
            matches = await boundaries.areas_by_name(
                session=session, model=KelurahanModel, boundary_set_id=set_id, name=name
            )
        if len(matches) > 1:
            raise InvalidArguments(f"the name {name!r} matches several kelurahan: use `code`")
        return Kelurahan.from_model(matches[0]) if matches else None
