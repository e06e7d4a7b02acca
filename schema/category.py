from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

import models.reference
from core.errors import ValidationFailed
from domain.access import Action
from domain.reference.categories import (
    DEFAULT_DUPLICATE_RADIUS_M,
    category_by_code,
    child_categories,
    create_category,
    list_categories,
    update_category,
)
from models import Category as CategoryModel
from schema.context import Context
from schema.dinas import Dinas, keep, load_dinas
from schema.errors import ValidationError

if TYPE_CHECKING:
    # strawberry.enum returns the enum it registers; to a type checker it is a variable.
    from models.reference import ReportKind as ReportKind
else:
    ReportKind = strawberry.enum(
        models.reference.ReportKind,
        description="The kinds of report of SP4N-LAPOR!: LAPORAN, a complaint about a "
        "problem at a place (needs a location); ASPIRASI, an opinion or suggestion; "
        "INFORMASI, a request for information.",
    )


@strawberry.type(
    description="What a report is about. Two levels: groups, which only group, and the "
    "categories under them, which route reports to a dinas with a service level."
)
class Category:
    id: strawberry.Private[int]
    parent_id: strawberry.Private[int | None]
    default_dinas_id: strawberry.Private[int | None]
    code: str = strawberry.field(description="Stable code, e.g. `JALAN_RUSAK`; never changes.")
    name: str = strawberry.field(description="Indonesian name shown to reporters.")
    accepted_kinds: list[ReportKind] = strawberry.field(
        description="The kinds of report that may take this category."
    )
    service_level_days: int | None = strawberry.field(
        description="Working days to handle a report (weekends and holidays excluded); "
        "null for a group."
    )
    duplicate_radius_m: int = strawberry.field(
        description="Open reports of this category within this many metres are offered "
        "as possible duplicates."
    )
    is_active: bool

    @classmethod
    def from_model(cls, model: CategoryModel) -> Category:
        return cls(
            id=model.id,
            parent_id=model.parent_id,
            default_dinas_id=model.default_dinas_id,
            code=model.code,
            name=model.name,
            accepted_kinds=[ReportKind(kind) for kind in model.accepted_kinds],
            service_level_days=model.service_level_days,
            duplicate_radius_m=model.duplicate_radius_m,
            is_active=model.is_active,
        )

    @strawberry.field(description="True for a group: it only groups other categories.")
    def is_group(self) -> bool:
        return self.parent_id is None

    @strawberry.field(description="The group this category belongs to; null for a group.")
    async def parent(self, info: strawberry.Info[Context, None]) -> Category | None:
        if self.parent_id is None:
            return None
        return await load_category(info, self.parent_id)

    @strawberry.field(description="The categories of a group, by code; empty for a category.")
    async def children(
        self, info: strawberry.Info[Context, None], include_inactive: bool = False
    ) -> list[Category]:
        if self.parent_id is not None:
            return []
        async with info.context.db() as session:
            models = await child_categories(
                session=session, parent_id=self.id, include_inactive=include_inactive
            )
        return [Category.from_model(m) for m in models]

    @strawberry.field(
        description="Who handles reports of this category unless a routing rule for the "
        "place says otherwise; null for a group."
    )
    async def default_dinas(self, info: strawberry.Info[Context, None]) -> Dinas | None:
        if self.default_dinas_id is None:
            return None
        return await load_dinas(info, self.default_dinas_id)


async def load_category(info: strawberry.Info[Context, None], category_id: int) -> Category:
    model = await info.context.loaders.category.load(category_id)
    if model is None:
        raise LookupError(f"category {category_id} vanished")
    return Category.from_model(model)


@strawberry.type
class CategoryQuery:
    @strawberry.field(
        description="Active categories by code: those a report can take, or with "
        "`includeGroups` the groups too."
    )
    async def categories(
        self,
        info: strawberry.Info[Context, None],
        kind: Annotated[
            ReportKind | None,
            strawberry.argument(description="Only those that accept this kind of report."),
        ] = None,
        include_groups: bool = False,
        include_inactive: bool = False,
    ) -> list[Category]:
        async with info.context.db() as session:
            models = await list_categories(
                session=session,
                kind=kind,
                include_groups=include_groups,
                include_inactive=include_inactive,
            )
        return [Category.from_model(m) for m in models]

    @strawberry.field(description="One category or group by code; null when none has it.")
    async def category(self, info: strawberry.Info[Context, None], code: str) -> Category | None:
        async with info.context.db() as session:
            model = await category_by_code(session=session, code=code)
        return Category.from_model(model) if model else None


@strawberry.input(
    description="A group when `parentCode` is null; otherwise a category under that group, "
    "which needs `defaultDinasCode` and `serviceLevelDays`."
)
class CreateCategoryInput:
    code: str = strawberry.field(
        description="Capital letters, digits and underscores, e.g. `JALAN_RUSAK`."
    )
    name: str
    accepted_kinds: list[ReportKind]
    parent_code: str | None = None
    default_dinas_code: str | None = None
    service_level_days: int | None = None
    duplicate_radius_m: int = strawberry.field(
        default=DEFAULT_DUPLICATE_RADIUS_M, description="1 to 5000 metres."
    )


@strawberry.input(
    description="Fields left out stay as they are. A category may move to another group; "
    "a group stays a group."
)
class UpdateCategoryInput:
    code: str = strawberry.field(description="Which category; codes never change.")
    name: str | None = strawberry.UNSET
    parent_code: str | None = strawberry.UNSET
    accepted_kinds: list[ReportKind] | None = strawberry.UNSET
    default_dinas_code: str | None = strawberry.UNSET
    service_level_days: int | None = strawberry.UNSET
    duplicate_radius_m: int | None = strawberry.UNSET
    is_active: bool | None = strawberry.UNSET


CreateCategoryResult = Annotated[
    Category | ValidationError, strawberry.union("CreateCategoryResult")
]
UpdateCategoryResult = Annotated[
    Category | ValidationError, strawberry.union("UpdateCategoryResult")
]


@strawberry.type
class CategoryMutation:
    @strawberry.mutation
    async def create_category(
        self, info: strawberry.Info[Context, None], input: CreateCategoryInput
    ) -> CreateCategoryResult:
        info.context.require(Action.ADMINISTER)
        try:
            async with info.context.db() as session:
                model = await create_category(
                    session=session,
                    code=input.code,
                    name=input.name,
                    accepted_kinds=input.accepted_kinds,
                    parent_code=input.parent_code,
                    default_dinas_code=input.default_dinas_code,
                    service_level_days=input.service_level_days,
                    duplicate_radius_m=input.duplicate_radius_m,
                )
        except ValidationFailed as error:
            return ValidationError.from_exception(error)
        return Category.from_model(model)

    @strawberry.mutation
    async def update_category(
        self, info: strawberry.Info[Context, None], input: UpdateCategoryInput
    ) -> UpdateCategoryResult:
        info.context.require(Action.ADMINISTER)
        try:
            async with info.context.db() as session:
                model = await update_category(
                    session=session,
                    code=input.code,
                    name=keep(input.name),
                    parent_code=keep(input.parent_code),
                    accepted_kinds=keep(input.accepted_kinds),
                    default_dinas_code=keep(input.default_dinas_code),
                    service_level_days=keep(input.service_level_days),
                    duplicate_radius_m=keep(input.duplicate_radius_m),
                    is_active=keep(input.is_active),
                )
        except ValidationFailed as error:
            return ValidationError.from_exception(error)
        return Category.from_model(model)
