from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated

import strawberry

from core.errors import ValidationFailed
from domain.access import Action
from domain.reference.holidays import add_holiday, list_holidays, remove_holiday
from models import Holiday as HolidayModel
from schema.context import Context
from schema.errors import ValidationError


@strawberry.type(
    description="A day that is not a working day for the service levels: a national "
    "holiday or a cuti bersama day. Weekends are never working days and are not listed."
)
class Holiday:
    date: date
    name: str
    source: HolidaySource

    @classmethod
    def from_model(cls, model: HolidayModel) -> Holiday:
        return cls(date=model.day, name=model.name, source=HolidaySource(model.source))


@strawberry.enum(description="Where a holiday came from.")
class HolidaySource(Enum):
    NATIONAL = strawberry.enum_value(
        "national", description="Indonesia's national calendar, for a year that had none."
    )
    CITY = strawberry.enum_value(
        "city", description="Added by the city's administrators (cuti bersama, local days)."
    )


@strawberry.type
class HolidayQuery:
    @strawberry.field(description="The holidays of one year, or of every year, by date.")
    async def holidays(
        self, info: strawberry.Info[Context, None], year: int | None = None
    ) -> list[Holiday]:
        async with info.context.db() as session:
            models = await list_holidays(session=session, year=year)
        return [Holiday.from_model(m) for m in models]


@strawberry.input
class AddHolidayInput:
    date: date
    name: str = strawberry.field(description="e.g. `Cuti Bersama Idul Fitri 1447 Hijriah`.")


AddHolidayResult = Annotated[Holiday | ValidationError, strawberry.union("AddHolidayResult")]
RemoveHolidayResult = Annotated[Holiday | ValidationError, strawberry.union("RemoveHolidayResult")]


@strawberry.type
class HolidayMutation:
    @strawberry.mutation
    async def add_holiday(
        self, info: strawberry.Info[Context, None], input: AddHolidayInput
    ) -> AddHolidayResult:
        info.context.require(Action.ADMINISTER)
        try:
            async with info.context.db() as session:
                model = await add_holiday(session=session, day=input.date, name=input.name)
        except ValidationFailed as error:
            return ValidationError.from_exception(error)
        return Holiday.from_model(model)

    @strawberry.mutation(description="Returns the holiday that was removed.")
    async def remove_holiday(
        self, info: strawberry.Info[Context, None], date: date
    ) -> RemoveHolidayResult:
        info.context.require(Action.ADMINISTER)
        try:
            async with info.context.db() as session:
                model = await remove_holiday(session=session, day=date)
        except ValidationFailed as error:
            return ValidationError.from_exception(error)
        return Holiday.from_model(model)
