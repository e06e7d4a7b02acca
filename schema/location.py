from __future__ import annotations

from typing import Annotated

import strawberry

from core.errors import ValidationFailed
from geo.boundary_index import BoundaryIndex
from geo.lookup import Located, Outside, locate, locate_in_memory
from schema.boundary_set import BoundarySet, load_boundary_set
from schema.context import Context
from schema.errors import ValidationError
from schema.kecamatan import Kecamatan, load_kecamatan
from schema.kelurahan import Kelurahan, load_kelurahan


@strawberry.type(description="The kelurahan and kecamatan a point belongs to.")
class Location:
    boundary_set_id: strawberry.Private[int]
    snapped: bool = strawberry.field(
        description="True when the point lies in no kelurahan (a gap between boundaries, or "
        "just outside the city) and was assigned to the nearest one within the snap tolerance."
    )
    distance_m: float = strawberry.field(
        description="Metres from the point to the kelurahan; 0 unless snapped."
    )
    # Plain values, not resolvers: the boundary index usually has both rows, and
    # a field without a resolver is several times cheaper to execute.
    kelurahan: Kelurahan
    kecamatan: Kecamatan

    @strawberry.field(description="The boundary set the point was located in.")
    async def boundary_set(self, info: strawberry.Info[Context, None]) -> BoundarySet:
        return await load_boundary_set(info, self.boundary_set_id)


@strawberry.type(description="The point is outside Kota Bekasi, beyond the snap tolerance.")
class OutsideJurisdiction:
    nearest_kelurahan_id: strawberry.Private[int]
    distance_m: float = strawberry.field(description="Metres from the point to the city.")
    message: str

    @strawberry.field(description="The kelurahan closest to the point.")
    async def nearest_kelurahan(self, info: strawberry.Info[Context, None]) -> Kelurahan:
        return await load_kelurahan(info, self.nearest_kelurahan_id)

    @classmethod
    def from_result(cls, result: Outside) -> OutsideJurisdiction:
        return cls(
            nearest_kelurahan_id=result.nearest_kelurahan_id,
            distance_m=round(result.distance_m, 1),
            message=f"the point is {result.distance_m / 1000:.2f} km outside Kota Bekasi",
        )


LocateResult = Annotated[
    Location | OutsideJurisdiction | ValidationError,
    strawberry.union("LocateResult"),
]


async def location_from(
    info: strawberry.Info[Context, None], result: Located, index: BoundaryIndex | None
) -> Location:
    if index is not None and index.boundary_set_id == result.boundary_set_id:
        kelurahan_row = index.kelurahan[result.kelurahan_id]
        kelurahan = Kelurahan.from_row(kelurahan_row)
        kecamatan = Kecamatan.from_row(index.kecamatan[kelurahan_row.kecamatan_id])
    else:
        kelurahan = await load_kelurahan(info, result.kelurahan_id)
        kecamatan = await load_kecamatan(info, kelurahan.kecamatan_id)
    return Location(
        boundary_set_id=result.boundary_set_id,
        kelurahan=kelurahan,
        kecamatan=kecamatan,
        snapped=result.snapped,
        distance_m=round(result.distance_m, 1),
    )


@strawberry.type
class LocationQuery:
    @strawberry.field(
        description="Which kelurahan and kecamatan a WGS 84 point falls in, by the active "
        "boundary set, with the snapping rules described in the API guide."
    )
    async def locate(
        self, info: strawberry.Info[Context, None], lat: float, lon: float
    ) -> LocateResult:
        index = info.context.boundary_index
        result: Located | Outside | None
        try:
            result = locate_in_memory(index=index, lat=lat, lon=lon)
            if result is None:
                async with info.context.db() as session:
                    result = await locate(
                        session=session,
                        lat=lat,
                        lon=lon,
                        snap_tolerance_m=info.context.settings.snap_tolerance_m,
                    )
        except ValidationFailed as error:
            return ValidationError.from_exception(error)
        if isinstance(result, Outside):
            return OutsideJurisdiction.from_result(result)
        return await location_from(info, result, index)
