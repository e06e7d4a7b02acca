"""Assembles the root types from one module per domain type."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig

from schema.boundary_set import BoundarySetQuery
from schema.case import CaseQuery
from schema.category import CategoryQuery
from schema.dinas import DinasQuery
from schema.holiday import HolidayQuery
from schema.kecamatan import KecamatanQuery
from schema.kelurahan import KelurahanQuery
from schema.location import LocationQuery
from schema.routing_rule import ReferenceMutation, RoutingRuleQuery
from schema.scalars import SCALARS
from schema.submit_report import SubmitReportMutation


@strawberry.type
class Query(
    CaseQuery,
    KecamatanQuery,
    KelurahanQuery,
    LocationQuery,
    BoundarySetQuery,
    DinasQuery,
    CategoryQuery,
    RoutingRuleQuery,
    HolidayQuery,
):
    pass


@strawberry.type
class Mutation(SubmitReportMutation, ReferenceMutation):
    pass


def build_schema(
    *, extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = ()
) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=list(extensions),
        config=StrawberryConfig(scalar_map=SCALARS),
    )
