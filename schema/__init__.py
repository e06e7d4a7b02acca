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
from core.log_redaction import describe_database_error
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
from schema.subscriptions import LiveQuery, Subscription

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
    LiveQuery,
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


logger = logging.getLogger("patriot.errors")


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry logs every error with its traceback: a caller's typo or an
        # expected refusal would flood the log. Only unexpected failures are incidents.
        # An outage fails every operation alike: one line each, not a trace each.
        # Nor is Strawberry's line used: it prints the document around the failing
        # field, whose inline arguments may hold a reporter's details. The field's
        # path says where; a database error is described by its statement's shape.
        outage_logged = False
        for error in errors:
            original = error.original_error
            if original is None or isinstance(original, GraphQLError | PatriotError):
                continue
            if database_unavailable(original):
                if not outage_logged:
                    logger.warning("database unavailable: %s", type(original).__name__)
                    outage_logged = True
                continue
            where = ".".join(str(key) for key in error.path or ()) or "the operation"
            what = describe_database_error(original) or error.message
            logger.error("unexpected error in %s: %s", where, what, exc_info=original)


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
