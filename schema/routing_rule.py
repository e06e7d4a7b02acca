from __future__ import annotations

from typing import Annotated, Any

import strawberry

from core.errors import FieldProblem, ValidationFailed
from domain.access import Action
from domain.reference.fields import KEEP, Keep
from domain.reference.routing_rules import (
    create_routing_rule,
    deactivate_routing_rule,
    list_routing_rules,
    update_routing_rule,
)
from geo.rules import area_as_geojson
from models import RoutingRule as RoutingRuleModel
from schema.category import Category, CategoryMutation, load_category
from schema.context import Context
from schema.dinas import Dinas, DinasMutation, keep, load_dinas
from schema.errors import ValidationError
from schema.holiday import HolidayMutation
from schema.scalars import GeoJSON


@strawberry.type(
    description="Sends one category's reports from an area to another dinas than the "
    "category's default (a national road, a river of a national authority...). The area "
    "is the union of the listed kecamatan, the listed kelurahan and the drawn polygon."
)
class RoutingRule:
    category_id: strawberry.Private[int]
    dinas_id: strawberry.Private[int]
    id: strawberry.ID
    priority: int = strawberry.field(
        description="Where several active rules apply, the highest priority wins; "
        "on equal priority the oldest rule (lowest id)."
    )
    description: str
    kecamatan_codes: list[str]
    kelurahan_codes: list[str]
    area: GeoJSON | None = strawberry.field(
        description="A GeoJSON MultiPolygon; a point on its edge counts as inside."
    )
    is_active: bool

    @classmethod
    def from_model(cls, model: RoutingRuleModel) -> RoutingRule:
        return cls(
            category_id=model.category_id,
            dinas_id=model.dinas_id,
            id=strawberry.ID(str(model.id)),
            priority=model.priority,
            description=model.description,
            kecamatan_codes=list(model.kecamatan_codes),
            kelurahan_codes=list(model.kelurahan_codes),
            area=GeoJSON(area_as_geojson(model.area)) if model.area is not None else None,
            is_active=model.is_active,
        )

    @strawberry.field
    async def category(self, info: strawberry.Info[Context, None]) -> Category:
        return await load_category(info, self.category_id)

    @strawberry.field
    async def dinas(self, info: strawberry.Info[Context, None]) -> Dinas:
        return await load_dinas(info, self.dinas_id)


@strawberry.type
class RoutingRuleQuery:
    @strawberry.field(description="The rules of one category, in the order they are tried.")
    async def routing_rules(
        self,
        info: strawberry.Info[Context, None],
        category_code: str,
        include_inactive: bool = False,
    ) -> list[RoutingRule]:
        async with info.context.db() as session:
            models = await list_routing_rules(
                session=session, category_code=category_code, include_inactive=include_inactive
            )
        return [RoutingRule.from_model(m) for m in models]


@strawberry.input(
    description="Give at least one of `kecamatanCodes`, `kelurahanCodes` (codes of the "
    "active boundary set) and `area`."
)
class CreateRoutingRuleInput:
    category_code: str = strawberry.field(description="A category, not a group.")
    dinas_code: str
    priority: int = strawberry.field(description="0 to 1000; higher wins.")
    description: str = strawberry.field(description="Why the rule exists, for the next admin.")
    kecamatan_codes: list[str] = strawberry.field(default_factory=list)
    kelurahan_codes: list[str] = strawberry.field(default_factory=list)
    area: GeoJSON | None = strawberry.field(
        default=None, description="A GeoJSON Polygon or MultiPolygon, longitude first."
    )


@strawberry.input(description="Fields left out stay as they are.")
class UpdateRoutingRuleInput:
    id: strawberry.ID
    dinas_code: str | None = strawberry.UNSET
    priority: int | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    kecamatan_codes: list[str] | None = strawberry.UNSET
    kelurahan_codes: list[str] | None = strawberry.UNSET
    area: GeoJSON | None = strawberry.field(
        default=strawberry.UNSET, description="null removes the drawn area."
    )
    is_active: bool | None = strawberry.UNSET


CreateRoutingRuleResult = Annotated[
    RoutingRule | ValidationError, strawberry.union("CreateRoutingRuleResult")
]
UpdateRoutingRuleResult = Annotated[
    RoutingRule | ValidationError, strawberry.union("UpdateRoutingRuleResult")
]
DeactivateRoutingRuleResult = Annotated[
    RoutingRule | ValidationError, strawberry.union("DeactivateRoutingRuleResult")
]


def _rule_id(value: strawberry.ID) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed([FieldProblem("id", f"{value!r} is not a rule id")]) from None


def _area(value: GeoJSON | None) -> dict[str, Any] | Keep | None:
    return KEEP if value is strawberry.UNSET else value


@strawberry.type
class RoutingRuleMutation:
    @strawberry.mutation
    async def create_routing_rule(
        self, info: strawberry.Info[Context, None], input: CreateRoutingRuleInput
    ) -> CreateRoutingRuleResult:
        info.context.require(Action.ADMINISTER)
        try:
            async with info.context.db() as session:
                model = await create_routing_rule(
                    session=session,
                    category_code=input.category_code,
                    dinas_code=input.dinas_code,
                    priority=input.priority,
                    description=input.description,
                    kecamatan_codes=input.kecamatan_codes,
                    kelurahan_codes=input.kelurahan_codes,
                    area=input.area,
                )
        except ValidationFailed as error:
            return ValidationError.from_exception(error)
        return RoutingRule.from_model(model)

    @strawberry.mutation
    async def update_routing_rule(
        self, info: strawberry.Info[Context, None], input: UpdateRoutingRuleInput
    ) -> UpdateRoutingRuleResult:
        info.context.require(Action.ADMINISTER)
        try:
            rule_id = _rule_id(input.id)
            async with info.context.db() as session:
                model = await update_routing_rule(
                    session=session,
                    rule_id=rule_id,
                    dinas_code=keep(input.dinas_code),
                    priority=keep(input.priority),
                    description=keep(input.description),
                    kecamatan_codes=keep(input.kecamatan_codes),
                    kelurahan_codes=keep(input.kelurahan_codes),
                    area=_area(input.area),
                    is_active=keep(input.is_active),
                )
        except ValidationFailed as error:
            return ValidationError.from_exception(error)
        return RoutingRule.from_model(model)

    @strawberry.mutation(
        description="Rules are never deleted: cases keep the rule that routed them."
    )
    async def deactivate_routing_rule(
        self, info: strawberry.Info[Context, None], id: strawberry.ID
    ) -> DeactivateRoutingRuleResult:
        info.context.require(Action.ADMINISTER)
        try:
            rule_id = _rule_id(id)
            async with info.context.db() as session:
                model = await deactivate_routing_rule(session=session, rule_id=rule_id)
        except ValidationFailed as error:
            return ValidationError.from_exception(error)
        return RoutingRule.from_model(model)


@strawberry.type
class ReferenceMutation(DinasMutation, CategoryMutation, RoutingRuleMutation, HolidayMutation):
    """Administration of the reference data; assembled here because routing rules
    depend on all the other types.

    Admin-only once roles exist (authorization is a later issue).
    """
