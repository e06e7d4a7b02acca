"""Assembles the root types from one module per domain type."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from core.database import database_unavailable
from core.errors import PatriotError
from schema.boundary_set import BoundarySetMutation, BoundarySetQuery
from schema.case import CaseQuery
from schema.case_actions import CaseActionMutation
from schema.category import CategoryQuery
from schema.dinas import DinasQuery
from schema.holiday import HolidayQuery
from schema.kecamatan import KecamatanQuery
from schema.kelurahan import KelurahanQuery
from schema.location import LocationQuery
from schema.personal_data import PersonalDataMutation, PersonalDataQuery
from schema.public_case import PublicCaseQuery
from schema.routing_rule import ReferenceMutation, RoutingRuleQuery
from schema.scalars import SCALARS
from schema.stats import StatsQuery
from schema.submit_report import SubmitReportMutation
from schema.subscriptions import Subscription

logger = logging.getLogger("patriot.errors")


@strawberry.type
class Query(
    CaseQuery,
    PublicCaseQuery,
    KecamatanQuery,
    KelurahanQuery,
    LocationQuery,
    BoundarySetQuery,
    DinasQuery,
    CategoryQuery,
    RoutingRuleQuery,
    HolidayQuery,
    StatsQuery,
    PersonalDataQuery,
):
    pass


@strawberry.type
class Mutation(
    SubmitReportMutation,
    CaseActionMutation,
    ReferenceMutation,
    BoundarySetMutation,
    PersonalDataMutation,
):
    pass


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry logs every error with its traceback: a caller's typo or an
        # expected refusal would flood the log. Only unexpected failures are incidents.
        unexpected = [
            e
            for e in errors
            if e.original_error is not None
            and not isinstance(e.original_error, GraphQLError | PatriotError)
        ]
        # An outage fails every operation alike: one line each, not a trace each.
        outages = [e for e in unexpected if database_unavailable(e.original_error)]
        for error in outages[:1]:
            logger.warning("database unavailable: %s", type(error.original_error).__name__)
        unexpected = [e for e in unexpected if e not in outages]
        super().process_errors(unexpected, execution_context)


def build_schema(
    *,
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
    production: bool = False,
) -> strawberry.Schema:
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=list(extensions),
        config=StrawberryConfig(scalar_map=SCALARS, disable_field_suggestions=production),
    )
