from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from core.errors import InvalidArguments
from geo import boundaries
from geo.boundary_index import KecamatanRow
from geo.lookup import active_set_id
from models import Kecamatan as KecamatanModel
from schema.boundary_set import BoundarySet, load_boundary_set
from schema.context import Context
from schema.scalars import GeoJSON

if TYPE_CHECKING:
    from schema.kelurahan import Kelurahan

SIMPLIFY_DESCRIPTION = (
    "Simplify the outline with this tolerance in metres (for small-scale maps); "
    "omit for the full geometry."
)


@strawberry.type(description="A kecamatan (district) of the city, in one boundary set.")
class Kecamatan:
    id: strawberry.Private[int]
    boundary_set_id: strawberry.Private[int]
    code: str = strawberry.field(description="Kemendagri code, e.g. `32.75.08`.")
    name: str = strawberry.field(description="Official Kemendagri spelling, e.g. `Pondokgede`.")
    area_km2: float

    @classmethod
    def from_model(cls, model: KecamatanModel) -> Kecamatan:
        return cls(
            id=model.id,
            boundary_set_id=model.boundary_set_id,
            code=model.code,
            name=model.name,
            area_km2=model.area_km2,
        )

    @classmethod
    def from_row(cls, row: KecamatanRow) -> Kecamatan:
        return cls(
            id=row.id,
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
        geometry: GeoJSON = await info.context.loaders.kecamatan_geometry.load((self.id, tolerance))
        return geometry

    @strawberry.field
    async def kelurahan(
        self, info: strawberry.Info[Context, None]
    ) -> list[Annotated[Kelurahan, strawberry.lazy("schema.kelurahan")]]:
        from schema.kelurahan import Kelurahan

        models = await info.context.loaders.kelurahan_of_kecamatan.load(self.id)
        return [Kelurahan.from_model(m) for m in models]

    @strawberry.field
    async def boundary_set(self, info: strawberry.Info[Context, None]) -> BoundarySet:
        return await load_boundary_set(info, self.boundary_set_id)


async def load_kecamatan(info: strawberry.Info[Context, None], kecamatan_id: int) -> Kecamatan:
    model = await info.context.loaders.kecamatan.load(kecamatan_id)
    if model is None:
        raise LookupError(f"kecamatan {kecamatan_id} vanished")
    return Kecamatan.from_model(model)


def checked_tolerance(simplify_m: float | None) -> float | None:
    if simplify_m is None or simplify_m == 0:
        return None
    if not 0 < simplify_m <= 10_000:
        raise InvalidArguments("simplifyM must be between 0 and 10000 metres")
    return simplify_m


def exactly_one(code: str | None, name: str | None) -> None:
    if (code is None) == (name is None):
        raise InvalidArguments("give exactly one of `code` or `name`")


@strawberry.type
class KecamatanQuery:
    @strawberry.field(description="All kecamatan of the active boundary set, by code.")
    async def kecamatan_list(self, info: strawberry.Info[Context, None]) -> list[Kecamatan]:
        async with info.context.db() as session:
            set_id = await active_set_id(session=session)
            models = await boundaries.list_areas(
                session=session, model=KecamatanModel, boundary_set_id=set_id
            )
        return [Kecamatan.from_model(m) for m in models]

    @strawberry.field(
        description="One kecamatan of the active set by Kemendagri code or by name "
        "(case and spaces ignored: `Pondok Gede` finds Pondokgede); null when none matches."
    )
    async def kecamatan(
        self,
        info: strawberry.Info[Context, None],
        code: str | None = None,
        name: str | None = None,
    ) -> Kecamatan | None:
        exactly_one(code, name)
        async with info.context.db() as session:
            set_id = await active_set_id(session=session)
            if code is not None:
                model = await boundaries.area_by_code(
                    session=session, model=KecamatanModel, boundary_set_id=set_id, code=code
                )
                return Kecamatan.from_model(model) if model else None
            assert name is not None
            matches = await boundaries.areas_by_name(
                session=session, model=KecamatanModel, boundary_set_id=set_id, name=name
            )
        if len(matches) > 1:
            raise InvalidArguments(f"the name {name!r} matches several kecamatan: use `code`")
        return Kecamatan.from_model(matches[0]) if matches else None
