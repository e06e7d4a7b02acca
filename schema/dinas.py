from __future__ import annotations

from typing import Annotated, TypeVar

import strawberry

from core.errors import ValidationFailed
from domain.access import Action
from domain.reference.dinas import create_dinas, dinas_by_code, list_dinas, update_dinas
from domain.reference.fields import KEEP, Keep
from models import Dinas as DinasModel
from schema.context import Context
from schema.errors import ValidationError

T = TypeVar("T")


def keep(value: T | None) -> T | Keep:
    """An update input's field that was left out, or given as null, keeps its value.
    (Only fields that cannot be null use this; a nullable one says what null means.)"""
    if value is strawberry.UNSET or value is None:
        return KEEP
    return value


@strawberry.type(
    description="A department (dinas or badan) of the city, or the kelurahan offices, "
    "that handles cases."
)
class Dinas:
    id: strawberry.Private[int]
    code: str = strawberry.field(description="Stable code, e.g. `DBMSDA`; never changes.")
    name: str = strawberry.field(description="Full name, e.g. `Dinas Bina Marga dan ...`.")
    short_name: str = strawberry.field(description="Common abbreviation, e.g. `Satpol PP`.")
    is_kelurahan_office: bool = strawberry.field(
        description="True for the kelurahan offices: the case's own kelurahan handles it."
    )
    is_active: bool = strawberry.field(description="An inactive dinas receives no new cases.")

    @classmethod
    def from_model(cls, model: DinasModel) -> Dinas:
        return cls(
            id=model.id,
            code=model.code,
            name=model.name,
            short_name=model.short_name,
            is_kelurahan_office=model.is_kelurahan_office,
            is_active=model.is_active,
        )


async def load_dinas(info: strawberry.Info[Context, None], dinas_id: int) -> Dinas:
    model = await info.context.loaders.dinas.load(dinas_id)
    if model is None:
        raise LookupError(f"dinas {dinas_id} vanished")
    return Dinas.from_model(model)


@strawberry.type
class DinasQuery:
    @strawberry.field(description="The dinas by code; only active ones unless asked.")
    async def dinas_list(
        self, info: strawberry.Info[Context, None], include_inactive: bool = False
    ) -> list[Dinas]:
        async with info.context.db() as session:
            models = await list_dinas(session=session, include_inactive=include_inactive)
        return [Dinas.from_model(m) for m in models]

    @strawberry.field(description="One dinas by code, active or not; null when none has it.")
    async def dinas(self, info: strawberry.Info[Context, None], code: str) -> Dinas | None:
        async with info.context.db() as session:
            model = await dinas_by_code(session=session, code=code)
        return Dinas.from_model(model) if model else None


@strawberry.input
class CreateDinasInput:
    code: str = strawberry.field(
        description="Capital letters, digits and underscores, e.g. `DISPERKIMTAN`."
    )
    name: str
    short_name: str
    is_kelurahan_office: bool = False


@strawberry.input(description="Fields left out stay as they are.")
class UpdateDinasInput:
    code: str = strawberry.field(description="Which dinas; codes never change.")
    name: str | None = strawberry.UNSET
    short_name: str | None = strawberry.UNSET
    is_kelurahan_office: bool | None = strawberry.UNSET
    is_active: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refused while active categories or routing rules still route to it.",
    )


CreateDinasResult = Annotated[Dinas | ValidationError, strawberry.union("CreateDinasResult")]
UpdateDinasResult = Annotated[Dinas | ValidationError, strawberry.union("UpdateDinasResult")]


@strawberry.type
class DinasMutation:
    @strawberry.mutation
    async def create_dinas(
        self, info: strawberry.Info[Context, None], input: CreateDinasInput
    ) -> CreateDinasResult:
        info.context.require(Action.ADMINISTER)
        try:
            async with info.context.db() as session:
                model = await create_dinas(
                    session=session,
                    code=input.code,
                    name=input.name,
                    short_name=input.short_name,
                    is_kelurahan_office=input.is_kelurahan_office,
                )
        except ValidationFailed as error:
            return ValidationError.from_exception(error)
        return Dinas.from_model(model)

    @strawberry.mutation
    async def update_dinas(
        self, info: strawberry.Info[Context, None], input: UpdateDinasInput
    ) -> UpdateDinasResult:
        info.context.require(Action.ADMINISTER)
        try:
            async with info.context.db() as session:
                model = await update_dinas(
                    session=session,
                    code=input.code,
                    name=keep(input.name),
                    short_name=keep(input.short_name),
                    is_kelurahan_office=keep(input.is_kelurahan_office),
                    is_active=keep(input.is_active),
                )
        except ValidationFailed as error:
            return ValidationError.from_exception(error)
        return Dinas.from_model(model)
