"""The public view of cases: what anyone may know about non-confidential reports.

Never the reporter, the title or the description (citizens write personal
details into them); the location is rounded to about 100 m.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from domain import case_queries
from domain.access import public_scope
from domain.case_queries import CaseFilter
from geo.case_filters import public_coordinate
from geo.shapes import point_lat_lon
from models import Case as CaseModel
from schema.case import GeoPoint, page_info
from schema.case_filter import BBoxInput, NearInput
from schema.case_status import STATUS_LABELS, CaseStatus
from schema.category import Category, ReportKind
from schema.context import Context
from schema.kecamatan import Kecamatan
from schema.kelurahan import Kelurahan, load_kelurahan


@strawberry.type(description="A case as the public may see it.")
class PublicCase:
    model: strawberry.Private[CaseModel]

    @strawberry.field
    def ticket(self) -> str:
        return self.model.ticket

    @strawberry.field
    def kind(self) -> ReportKind:
        return ReportKind(self.model.kind)

    @strawberry.field
    def status(self) -> CaseStatus:
        return CaseStatus(self.model.status)

    @strawberry.field
    def status_label(self) -> str:
        return STATUS_LABELS[self.model.status]

    @strawberry.field(
        description="Rounded to 0.001 degree (about 110 m); the `near` and `bbox` filters "
        "of `publicCases` compare this rounded location too."
    )
    def location(self) -> GeoPoint | None:
        if self.model.location is None:
            return None
        point = point_lat_lon(self.model.location)
        return GeoPoint(lat=public_coordinate(point.lat), lon=public_coordinate(point.lon))

    @strawberry.field
    async def category(self, info: strawberry.Info[Context, None]) -> Category:
        model = await info.context.loaders.category.load(self.model.category_id)
        if model is None:
            raise LookupError(f"category {self.model.category_id} vanished")
        return Category.from_model(model)

    @strawberry.field
    async def kelurahan(self, info: strawberry.Info[Context, None]) -> Kelurahan | None:
        if self.model.kelurahan_id is None:
            return None
        return await load_kelurahan(info, self.model.kelurahan_id)

    @strawberry.field
    async def kecamatan(self, info: strawberry.Info[Context, None]) -> Kecamatan | None:
        if self.model.kecamatan_id is None:
            return None
        model = await info.context.loaders.kecamatan.load(self.model.kecamatan_id)
        return Kecamatan.from_model(model) if model else None

    @strawberry.field
    def created_at(self) -> datetime:
        return self.model.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.model.updated_at

    @strawberry.field
    def due_at(self) -> datetime:
        return self.model.due_at

    @strawberry.field
    def resolved_at(self) -> datetime | None:
        return self.model.resolved_at

    @strawberry.field
    def closed_at(self) -> datetime | None:
        return self.model.closed_at

    @strawberry.field
    def support_count(self) -> int:
        return self.model.support_count


@strawberry.input(description="Public filters; text search needs sign-in.")
class PublicCaseFilterInput:
    statuses: list[CaseStatus] | None = None
    kinds: list[ReportKind] | None = None
    category_codes: list[str] | None = None
    kelurahan_codes: list[str] | None = None
    kecamatan_codes: list[str] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    bbox: BBoxInput | None = None
    near: NearInput | None = None

    def to_domain(self) -> CaseFilter:
        return CaseFilter(
            statuses=[s.value for s in self.statuses or []],
            kinds=[k.value for k in self.kinds or []],
            category_codes=self.category_codes or [],
            kelurahan_codes=self.kelurahan_codes or [],
            kecamatan_codes=self.kecamatan_codes or [],
            created_from=self.created_from,
            created_to=self.created_to,
            bbox=self.bbox.to_domain() if self.bbox else None,
            near=self.near.to_domain() if self.near else None,
        )


@strawberry.type(description="A page of public cases, newest first (Relay cursor connection).")
# The Relay connection spec asks nothing of a node; Strawberry types the
# generic as bound to relay.Node, which a case (known by its ticket) is not.
class PublicCaseConnection(relay.Connection[PublicCase]):  # type: ignore[type-var]
    pass


@strawberry.type
class PublicCaseQuery:
    @strawberry.field(description="The public view of a non-confidential case; null otherwise.")
    async def public_case(
        self, info: strawberry.Info[Context, None], ticket: str
    ) -> PublicCase | None:
        async with info.context.db() as session:
            model = await case_queries.case_by_ticket(
                session=session, ticket=ticket, scope=public_scope()
            )
        return PublicCase(model=model) if model else None

    @strawberry.field(description="Non-confidential cases, newest first, at most 100 a page.")
    async def public_cases(
        self,
        info: strawberry.Info[Context, None],
        filter: PublicCaseFilterInput | None = None,
        first: Annotated[int, strawberry.argument(description="Page size, 1 to 100.")] = 20,
        after: str | None = None,
    ) -> PublicCaseConnection:
        async with info.context.db() as session:
            page = await case_queries.list_public_cases(
                session=session,
                case_filter=filter.to_domain() if filter else CaseFilter(),
                first=first,
                after=after,
            )
        edges = [
            relay.Edge(  # type: ignore[type-var]
                cursor=case_queries.encode_cursor(c.id), node=PublicCase(model=c)
            )
            for c in page.cases
        ]
        return PublicCaseConnection(
            edges=edges, page_info=page_info(page, [e.cursor for e in edges])
        )
