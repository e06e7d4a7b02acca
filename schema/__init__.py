"""Assembles the root types from one module per domain type."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig

from schema.boundary_set import BoundarySetQuery
from schema.kecamatan import KecamatanQuery
from schema.kelurahan import KelurahanQuery
from schema.location import LocationQuery
from schema.scalars import SCALARS


@strawberry.type
class Query(KecamatanQuery, KelurahanQuery, LocationQuery, BoundarySetQuery):
    pass


def build_schema(
    *, extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = ()
) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        extensions=list(extensions),
        config=StrawberryConfig(scalar_map=SCALARS),
    )
