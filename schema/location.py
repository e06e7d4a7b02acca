from __future__ import annotations

from typing import Annotated

import strawberry

from domain.errors import ValidationFailed
from geo.lookup import Located, Outside, locate
from schema.boundary_set import BoundarySet, load_boundary_set
from schema.context import Context
from schema.errors import ValidationError
from schema.kecamatan import Kecamatan
from schema.kelurahan import Kelurahan, load_kelurahan


@strawberry.type(description="The kelurahan and kecamatan a point belongs to.")
class Location:
    kelurahan_id: strawberry.Private[int]
    boundary_set_id: strawberry.Private[int]
    snapped: bool = strawberry.field(
        description="True when the point lies in no kelurahan (a gap between boundaries, or "
        "just outside the city) and was assigned to the nearest one within the snap tolerance."
    )
    distance_m: float = strawberry.field(
        description="Metres from the point to the kelurahan; 0 unless snapped."
    )

    @strawberry.field
    async def kelurahan(self, info: strawberry.Info[Context, None]) -> Kelurahan:
        return await load_kelurahan(info, self.kelurahan_id)

    @strawberry.field
    async def kecamatan(self, info: strawberry.Info[Context, None]) -> Kecamatan:
        kelurahan = await load_kelurahan(info, self.kelurahan_id)
        return await kelurahan.kecamatan(info)

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


def location_from(result: Located) -> Location:
    return Location(
        kelurahan_id=result.kelurahan_id,
        boundary_set_id=result.boundary_set_id,
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
        try:
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
        return location_from(result)
